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

using namespace abmll::meta;
using abmll::WeightScale;

namespace {

bool have_gpu() { return weight_kl_cuda_built() && at::hasCUDA(); }

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
        CHECK(hits_fused.item<int64_t>() == hits_aten.item<int64_t>());
        const std::vector<at::Tensor> inputs = {q.b_mu, q.a_mu, q.b_sigma, q.a_sigma,
                                                p.b_mu, p.a_mu, p.b_sigma, p.a_sigma};
        const auto g_fused = torch::autograd::grad({fused}, inputs);
        const auto g_aten = torch::autograd::grad({aten}, inputs);
        for (size_t i = 0; i < inputs.size(); ++i) {
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
