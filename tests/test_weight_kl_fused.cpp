// The fused weight-space KLs, the CPU loop (meta/weight_kl_cpu.h) and the CUDA kernels (cuda/weight_kl.cu), against
// their reference, the tiled ATen implementation, on odd sizes, both scale forms, with and without entries at the
// scale floor: value, floor hits and the gradients of all eight factors, and of one side's four alone. The CUDA case
// runs on a machine with a GPU; elsewhere it is reported as skipped.
#include <catch2/catch.hpp>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <torch/csrc/autograd/autograd.h>

#include "meta/weight_gaussian.h"
#include "meta/weight_kl_cpu.h"
#include "meta/weight_kl_cuda.h"
#include "meta/weight_kl_entry.h"
#include "meta/weight_kl_tile.h"

#include <cmath>
#include <vector>

using namespace abmll::meta;
using abmll::WeightScale;

namespace {

bool have_gpu() { return weight_kl_cuda_built() && at::hasCUDA(); }

// Entries of f's scale S whose S^2 is within 1e-4 (relative) of the floor's c^2.
int64_t entries_near_floor(const WeightGaussianFactors& f, const WeightScaleForm& form) {
  const at::Tensor z = form.scaling * at::matmul(f.b_sigma.to(at::kDouble), f.a_sigma.to(at::kDouble));
  const at::Tensor s = (form.kind == WeightScale::linear ? z : at::softplus(z)) + form.floor;
  const double c2 = form.floor * form.floor;
  return ((s * s - c2).abs() <= 1e-4 * c2).sum().item<int64_t>();
}

WeightGaussianFactors detached(const WeightGaussianFactors& f) {
  return {f.b_mu.detach(), f.a_mu.detach(), f.b_sigma.detach(), f.a_sigma.detach()};
}

// The automatic implementation (the fused one for float32 on `device`) against ATen's.
void check_fused_against_aten(const at::Device& device) {
  const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
  at::manual_seed(17);
  struct Size {
    int64_t out, in, rank;
  };
  for (const Size size : {Size{1, 1, 1}, Size{7, 5, 3}, Size{33, 257, 5}, Size{300, 129, 16}, Size{65, 1000, 7}}) {
    for (WeightScale kind : {WeightScale::linear, WeightScale::softplus}) {
      for (double floor : {1e-3, 0.2}) {  // with 0.2 many linear entries sit at the floor
        INFO("O " << size.out << ", I " << size.in << ", R " << size.rank << ", "
                  << (kind == WeightScale::linear ? "linear" : "softplus") << ", floor " << floor);
        auto factors = [&](double sigma_scale) {
          auto make = [&](std::vector<int64_t> shape, double scale) {
            return (at::randn(shape, options) * scale).requires_grad_(true);
          };
          return WeightGaussianFactors{make({size.out, size.rank}, 0.5), make({size.rank, size.in}, 0.5),
                                       make({size.out, size.rank}, sigma_scale),
                                       make({size.rank, size.in}, sigma_scale)};
        };
        const WeightGaussianFactors q = factors(0.6), p = factors(0.6);
        const WeightScaleForm form{kind, 1.3, floor};
        REQUIRE((device.is_cuda() ? weight_kl_cuda_applies(q) : weight_kl_cpu_applies(q)));
        at::Tensor hits_fused, hits_aten;
        const at::Tensor fused = weight_space_kl(q, p, form, 64, &hits_fused, WeightKlBackend::automatic);
        const at::Tensor aten = weight_space_kl(q, p, form, 64, &hits_aten, WeightKlBackend::aten);
        CHECK(fused.item<double>() == Approx(aten.item<double>()).epsilon(2e-5));
        CHECK(hits_fused.device() == device);  // counted where the KL runs, not read back
        // On a GPU the kernels' sums of products and cuBLAS's differ in the last places: an entry whose S^2 lies
        // within rounding of c^2 may fall on either side of the floor (its hit, and its scale gradient, flip).
        const int64_t near = device.is_cuda() ? entries_near_floor(q, form) + entries_near_floor(p, form) : 0;
        CHECK(std::abs(hits_fused.item<int64_t>() - hits_aten.item<int64_t>()) <= near);
        const std::vector<at::Tensor> inputs = {q.b_mu, q.a_mu, q.b_sigma, q.a_sigma,
                                                p.b_mu, p.a_mu, p.b_sigma, p.a_sigma};
        const auto g_fused = torch::autograd::grad({fused}, inputs);
        const auto g_aten = torch::autograd::grad({aten}, inputs);
        for (size_t i = 0; i < inputs.size(); ++i) {
          if (near > 0 && (i % 4 == 2 || i % 4 == 3)) continue;  // the sigma factors' gradients (see above)
          const double scale = g_aten[i].abs().max().item<double>();
          const double diff = (g_fused[i] - g_aten[i]).abs().max().item<double>();
          INFO("factor " << i << ": max abs diff " << diff << " (gradients up to " << scale << ")");
          CHECK(diff <= 1e-4 * std::max(1.0, scale));
        }
        // One side differentiated (a first-order inner step: q; the outer step's regulariser: p), the other
        // side's GEMMs skipped: the same gradients to the bit.
        for (const bool q_side : {true, false}) {
          const WeightGaussianFactors qd = q_side ? q : detached(q), pd = q_side ? detached(p) : p;
          const size_t first = q_side ? 0 : 4;
          const std::vector<at::Tensor> side(inputs.begin() + first, inputs.begin() + first + 4);
          for (const WeightKlBackend backend : {WeightKlBackend::automatic, WeightKlBackend::aten}) {
            const auto g = torch::autograd::grad({weight_space_kl(qd, pd, form, 64, nullptr, backend)}, side);
            const auto& both = backend == WeightKlBackend::aten ? g_aten : g_fused;
            for (size_t i = 0; i < side.size(); ++i) {
              INFO((q_side ? "q" : "p") << " only, factor " << i << (backend == WeightKlBackend::aten ? ", ATen" : ""));
              CHECK(at::equal(g[i], both[first + i]));
            }
          }
        }
      }
    }
  }
}

}  // namespace

TEST_CASE("weight KL: the fused CPU loop equals the ATen reference", "[meta][weight]") {
  check_fused_against_aten(at::kCPU);
}

TEST_CASE("weight KL: the fused CUDA kernels equal the ATen reference", "[meta][weight][cuda]") {
  if (!have_gpu()) {
    WARN("skipped: " << (weight_kl_cuda_built() ? "no CUDA device" : "abmll built without CUDA"));
    return;
  }
  check_fused_against_aten(at::kCUDA);
}

TEST_CASE("weight KL: the CUDA kernels' tiling, run on the CPU block by block, forms every entry", "[meta][weight]") {
  // The kernels' grid (blocks of kTileRows rows x 256 columns, B rows staged by the block's 256 threads, one column
  // per thread) emulated with weight_kl_tile.h's functions: each entry's M and Z of q and p must equal the sum of
  // products in order of r (what one thread per entry computed), over odd sizes that leave partial row tiles,
  // partial column blocks and ranks that are no multiple of 4; and the KL summed from them equal the reference's.
  constexpr int kThreads = 256, kRows = abmll::weight_kl::kTileRows;
  at::manual_seed(23);
  struct Size {
    int64_t out, in, rank;
  };
  for (const Size size : {Size{1, 1, 1}, Size{9, 300, 3}, Size{17, 257, 4}, Size{8, 513, 17}}) {
    INFO("O " << size.out << ", I " << size.in << ", R " << size.rank);
    auto matrix = [](int64_t rows, int64_t cols) { return at::randn({rows, cols}) * 0.5; };
    const WeightGaussianFactors q{matrix(size.out, size.rank), matrix(size.rank, size.in),
                                  matrix(size.out, size.rank), matrix(size.rank, size.in)};
    const WeightGaussianFactors p{matrix(size.out, size.rank), matrix(size.rank, size.in),
                                  matrix(size.out, size.rank), matrix(size.rank, size.in)};
    abmll::weight_kl::TileOperands f;
    const at::Tensor* b[4] = {&q.b_mu, &q.b_sigma, &p.b_mu, &p.b_sigma};
    const at::Tensor* a[4] = {&q.a_mu, &q.a_sigma, &p.a_mu, &p.a_sigma};
    for (int k = 0; k < 4; ++k) {
      f.b[k] = b[k]->const_data_ptr<float>();
      f.a[k] = a[k]->const_data_ptr<float>();
    }
    f.out = size.out;
    f.in = size.in;
    f.rank = size.rank;
    const WeightScaleForm form{WeightScale::linear, 1.3, 1e-3};
    const abmll::weight_kl::EntryForm entry{1e-3f, static_cast<float>(1e-3 * 1e-3), false};
    double kl = 0;
    int64_t visited = 0, mismatched = 0;
    std::vector<float> staged(static_cast<size_t>(4 * kRows * size.rank));
    for (int64_t o0 = 0; o0 < size.out; o0 += kRows) {
      for (int64_t i0 = 0; i0 < size.in; i0 += kThreads) {
        for (int thread = 0; thread < kThreads; ++thread)
          abmll::weight_kl::stage_rows(f, o0, staged.data(), thread, kThreads);
        for (int thread = 0; thread < kThreads; ++thread) {
          const int64_t i = i0 + thread;
          if (i >= size.in) continue;
          float acc[4][kRows];
          abmll::weight_kl::tile_column(f, staged.data(), i, acc);
          for (int row = 0; row < kRows && o0 + row < size.out; ++row) {
            const int64_t o = o0 + row;
            for (int k = 0; k < 4; ++k) {
              float want = 0;
              for (int64_t r = 0; r < size.rank; ++r)
                want = std::fmaf(f.b[k][o * size.rank + r], f.a[k][r * size.in + i], want);
              mismatched += acc[k][row] != want;
            }
            const float s = static_cast<float>(form.scaling);
            const float mq = s * acc[0][row], zq = s * acc[1][row], mp = s * acc[2][row], zp = s * acc[3][row];
            int floored = 0, floored_too = 0;
            const float value = abmll::weight_kl::entry_kl(mq, zq, mp, zp, entry, &floored);
            kl += value;
            ++visited;
            // The value-and-gradient pass gives the value-only pass's numbers.
            float value_too = 0;
            (void)abmll::weight_kl::entry_kl_and_gradients(mq, zq, mp, zp, 0.7f, entry, &value_too, &floored_too);
            mismatched += value_too != value || floored_too != floored;
          }
        }
      }
    }
    CHECK(visited == size.out * size.in);  // every entry once
    CHECK(mismatched == 0);
    const double reference = weight_space_kl(q, p, form, 64, nullptr, WeightKlBackend::aten).item<double>();
    CHECK(kl == Approx(reference).epsilon(2e-5));
  }
}
