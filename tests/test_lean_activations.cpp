// The decoder's memory-lean autograd functions (model/swiglu.h, model/geglu.h, model/xielu.h, model/rms_norm.h, in
// Llama's and Gemma's orders) against the chains of ATen ops they replace: values and gradients in float32 and bfloat16
// (rounded where the chain rounds), first and second derivatives in float64; on a GPU too (RMSNorm runs ATen's fused
// kernels there, SwiGLU and RoPE abmll's).
#include <catch2/catch.hpp>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>

#include <vector>

#include "model/geglu.h"
#include "model/rms_norm.h"
#include "model/rope.h"
#include "model/swiglu.h"
#include "model/xielu.h"

namespace {

using abmll::model::rms_norm;
using abmll::model::swiglu;

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// transformers' LlamaRMSNorm as ATen ops.
at::Tensor rms_norm_chain(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const at::Tensor h = x.to(at::promote_types(x.scalar_type(), at::kFloat));
  return weight * (h * at::rsqrt(h.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
}

// transformers' GemmaRMSNorm as ATen ops: the weight (its 1 + w, float32) applied before rounding.
at::Tensor gemma_rms_norm_chain(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const at::Tensor h = x.to(at::promote_types(x.scalar_type(), at::kFloat));
  return (h * at::rsqrt(h.pow(2).mean(-1, true) + eps) * weight).to(x.scalar_type());
}

at::Tensor swiglu_chain(const at::Tensor& gate, const at::Tensor& up) { return at::silu(gate) * up; }
at::Tensor geglu_chain(const at::Tensor& gate, const at::Tensor& up, bool tanh) {
  return at::gelu(gate, tanh ? "tanh" : "none") * up;
}

// The output, then the gradients of (out * w).sum() to `inputs`, then the gradients of (g . u) to `inputs` (second
// derivatives), all detached; second derivatives only in float64.
std::vector<at::Tensor> derivatives(const at::Tensor& out, const std::vector<at::Tensor>& inputs, bool second) {
  const at::Tensor w =
      at::randn(out.sizes(), at::TensorOptions().dtype(at::kDouble)).to(out.device(), out.scalar_type());
  const auto g = torch::autograd::grad({(out * w).sum()}, inputs, {}, true, second);
  std::vector<at::Tensor> all = {out.detach()};
  for (const auto& t : g) all.push_back(t.detach());
  if (second) {
    at::Tensor dot = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(out.device()));
    for (const auto& t : g) dot = dot + (t * at::randn(t.sizes(), at::kDouble).to(t.device())).sum();
    for (const auto& t : torch::autograd::grad({dot}, inputs)) all.push_back(t.detach());
  }
  return all;
}

// Both functions' derivatives under the same random weights.
void check_against_chain(const std::function<at::Tensor()>& lean, const std::function<at::Tensor()>& chain,
                         const std::vector<at::Tensor>& inputs, double tolerance) {
  const bool second = inputs.front().scalar_type() == at::kDouble;
  at::manual_seed(99);
  const auto got = derivatives(lean(), inputs, second);
  at::manual_seed(99);
  const auto want = derivatives(chain(), inputs, second);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("derivative " << i << " (0: value), dtype " << c10::toString(inputs.front().scalar_type()));
    CHECK(got[i].scalar_type() == want[i].scalar_type());
    const double scale = std::max(1.0, want[i].abs().max().item<double>());
    INFO("largest difference " << max_abs_diff(got[i], want[i]) << " at magnitude " << scale);
    CHECK(max_abs_diff(got[i], want[i]) <= tolerance * scale);
  }
}

at::Tensor leaf(at::IntArrayRef shape, at::ScalarType dtype, double scale = 1.0, double shift = 0.0) {
  return (at::randn(shape, at::kDouble) * scale + shift).to(dtype).requires_grad_(true);
}

}  // namespace

TEST_CASE("geglu equals gelu(gate) * up, exact and tanh-approximated, values and derivatives", "[model]") {
  at::manual_seed(3);
  for (const bool tanh : {true, false}) {
    for (const auto& [dtype, tolerance] : {std::pair{at::kDouble, 1e-12}, {at::kFloat, 1e-6}, {at::kBFloat16, 0.0}}) {
      INFO((tanh ? "tanh" : "exact") << ", " << c10::toString(dtype));
      const at::Tensor gate = leaf({3, 5, 7}, dtype, 2.0), up = leaf({3, 5, 7}, dtype);
      check_against_chain([&] { return abmll::model::geglu(gate, up, tanh); },
                          [&] { return geglu_chain(gate, up, tanh); }, {gate, up}, tolerance);
    }
  }
  // Only up's gradient, and none at all (inference).
  const at::Tensor gate = at::randn({4, 6}), up = leaf({4, 6}, at::kFloat);
  const auto g = torch::autograd::grad({abmll::model::geglu(gate, up, true).sum()}, {up});
  CHECK(at::allclose(g[0], at::gelu(gate, "tanh")));
  const at::NoGradGuard no_grad;
  CHECK(!abmll::model::geglu(gate, up, false).requires_grad());
}

// transformers' XIELUActivation (its Python path) as ATen ops.
at::Tensor xielu_chain(const at::Tensor& x, const abmll::model::XieluWeights& w) {
  const at::Tensor a_p = at::softplus(w.alpha_p), a_n = w.beta + at::softplus(w.alpha_n);
  return at::where(x > 0, a_p * x * x + w.beta * x, (at::expm1(at::min(x, w.eps)) - x) * a_n + w.beta * x);
}

TEST_CASE("xielu equals XIELUActivation's chain of ops, values and derivatives", "[model]") {
  at::manual_seed(5);
  for (const auto dtype : {at::kDouble, at::kFloat, at::kBFloat16}) {
    INFO(c10::toString(dtype));
    const auto options = at::TensorOptions().dtype(dtype);
    // Slopes and beta away from XIELUActivation's initial ones; eps its own.
    const abmll::model::XieluWeights w{at::full({1}, 0.3, options), at::full({1}, -0.7, options),
                                       at::scalar_tensor(0.45, options), at::scalar_tensor(-1e-6, options)};
    // Both branches, and entries at eps and at 0 exactly (where the derivative's pieces meet).
    const at::Tensor x = leaf({3, 5, 7}, dtype, 2.0);
    {
      const at::NoGradGuard no_grad;
      x.view(-1)[0].fill_(w.eps);
      x.view(-1)[1].fill_(0.0);
    }
    if (dtype != at::kBFloat16) {
      check_against_chain([&] { return abmll::model::xielu(x, w); }, [&] { return xielu_chain(x, w); }, {x},
                          dtype == at::kDouble ? 1e-12 : 1e-6);
      continue;
    }
    // bfloat16: the values as the chain rounds them; the gradient (one product with the derivative, where the
    // chain sums three rounded ones) within a few of its last places.
    CHECK(max_abs_diff(abmll::model::xielu(x, w), xielu_chain(x, w)) == 0.0);
    check_against_chain([&] { return abmll::model::xielu(x, w); }, [&] { return xielu_chain(x, w); }, {x}, 1.0 / 32);
  }
  const at::NoGradGuard no_grad;
  const abmll::model::XieluWeights w{at::zeros({1}), at::zeros({1}), at::scalar_tensor(0.5), at::scalar_tensor(-1e-6)};
  CHECK(!abmll::model::xielu(at::randn({2, 3}), w).requires_grad());
}

TEST_CASE("swiglu equals silu(gate) * up, values and derivatives", "[model]") {
  at::manual_seed(1);
  // Odd sizes; float64 to second derivatives, float32 and bfloat16 gradients rounded where the chain rounds.
  for (const auto& [dtype, tolerance] : {std::pair{at::kDouble, 1e-12}, {at::kFloat, 1e-6}, {at::kBFloat16, 0.0}}) {
    const at::Tensor gate = leaf({3, 5, 7}, dtype, 2.0), up = leaf({3, 5, 7}, dtype);
    check_against_chain([&] { return swiglu(gate, up); }, [&] { return swiglu_chain(gate, up); }, {gate, up},
                        tolerance);
  }
  // A gate that needs no gradient (only up's is computed) and none at all (inference).
  const at::Tensor gate = at::randn({4, 6}), up = leaf({4, 6}, at::kFloat);
  const auto g = torch::autograd::grad({swiglu(gate, up).sum()}, {up});
  CHECK(max_abs_diff(g[0], at::silu(gate)) < 1e-7);
  CHECK(!swiglu(gate, up.detach()).requires_grad());
}

TEST_CASE("on a GPU, swiglu (one kernel each way) equals silu(gate) * up, values and gradients", "[model][cuda]") {
  if (!at::hasCUDA()) {
    WARN("skipped: no CUDA device");
    return;
  }
  at::manual_seed(3);
  const auto cuda = at::TensorOptions().device(at::kCUDA);
  // Rounded where the chain rounds: equal up to a fused multiply-add's last place. Sizes below one 16-byte pack, with
  // a partial last pack (in one block and after several), whole packs; storage 2 bytes off 16-byte alignment for both
  // inputs or for up only (the entry-by-entry path).
  for (const auto& [dtype, tolerance] :
       {std::pair{at::kFloat, 1e-6}, {at::kBFloat16, 1.0 / 128}, {at::kHalf, 1.0 / 1024}}) {
    for (const int misaligned : {0, 1, 2}) {  // none, both, up only
      for (const std::vector<int64_t>& shape :
           {std::vector<int64_t>{1, 3}, {3, 5, 7}, {4, 1031}, {3, 2051}, {2, 4096}}) {
        INFO(c10::toString(dtype) << ", shape " << at::IntArrayRef(shape) << ", misaligned " << misaligned);
        auto make = [&](double scale, bool off) {
          const int64_t n = c10::multiply_integers(shape);
          const at::Tensor storage = at::empty({n + 1}, cuda.dtype(dtype));
          const at::Tensor t = off ? storage.narrow(0, 1, n).view(shape) : storage.narrow(0, 0, n).view(shape);
          at::NoGradGuard no_grad;
          t.copy_(at::randn(shape, at::kDouble) * scale);
          return t.requires_grad_(true);
        };
        const at::Tensor gate = make(2.0, misaligned == 1), up = make(1.0, misaligned != 0);
        REQUIRE(gate.is_contiguous());
        check_against_chain([&] { return swiglu(gate, up); }, [&] { return swiglu_chain(gate, up); }, {gate, up},
                            tolerance);
      }
    }
  }
  // Only up's gradient wanted.
  const at::Tensor gate = at::randn({4, 6}, cuda), up = leaf({4, 6}, at::kFloat).to(at::kCUDA).detach();
  up.requires_grad_(true);
  const auto g = torch::autograd::grad({swiglu(gate, up).sum()}, {up});
  CHECK(max_abs_diff(g[0], at::silu(gate)) < 1e-6);
}

TEST_CASE("on a GPU, apply_rope (one kernel each way) equals x cos + rotate_half(x) sin", "[model][cuda]") {
  if (!at::hasCUDA()) {
    WARN("skipped: no CUDA device");
    return;
  }
  at::manual_seed(4);
  const auto cuda = at::TensorOptions().device(at::kCUDA);
  // transformers' rotate_half form, against which rope.cpp's roll form is written.
  auto reference = [](const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    const int64_t half = x.size(-1) / 2;
    const at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
    return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
  };
  // Each product rounded, then their sum, as the chain: equal to it to the bit in every dtype (values and gradients);
  // differentiated twice, the chain's own backward runs in both, in another order.
  for (const auto& [dtype, tolerance] :
       {std::pair{at::kFloat, 1e-6}, {at::kBFloat16, 1.0 / 128}, {at::kHalf, 1.0 / 1024}}) {
    for (const auto& [batch, heads, time, dim] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{2, 3, 5, 8},
                                                  {1, 4, 37, 128}}) {
      INFO(c10::toString(dtype) << ", B " << batch << ", H " << heads << ", T " << time << ", Dh " << dim);
      const at::Tensor positions = at::arange(time, cuda.dtype(at::kLong)).repeat({batch, 1}) + 3;
      const at::Tensor inv_freq = at::pow(10000.0, -at::arange(0, dim, 2, cuda.dtype(at::kFloat)) / dim);
      const auto [cos, sin] = abmll::model::rope_tables(positions, inv_freq, dtype);
      // x as the attention makes it: a [B, T, H, Dh] projection viewed as [B, H, T, Dh].
      const at::Tensor base = (at::randn({batch, time, heads, dim}, cuda) * 2).to(dtype).requires_grad_(true);
      check_against_chain([&] { return abmll::model::apply_rope(base.transpose(1, 2), cos, sin); },
                          [&] { return reference(base.transpose(1, 2), cos, sin); }, {base}, 0.0);
      // x a view that is not dense (every other head dimension block of a wider projection), tables expanded over
      // the batch (stride 0), and an incoming gradient that is not contiguous (expanded from a sum).
      const at::Tensor wide = (at::randn({batch, time, heads, 2 * dim}, cuda) * 2).to(dtype).requires_grad_(true);
      const at::Tensor cos1 = cos.narrow(0, 0, 1).expand_as(cos), sin1 = sin.narrow(0, 0, 1).expand_as(sin);
      auto strided = [&](auto&& rope) { return rope(wide.narrow(3, dim, dim).transpose(1, 2), cos1, sin1); };
      check_against_chain([&] { return strided([](auto... a) { return abmll::model::apply_rope(a...); }); },
                          [&] { return strided(reference); }, {wide}, 0.0);
      const at::Tensor summed = abmll::model::apply_rope(base.transpose(1, 2), cos, sin).sum();
      const auto g_sum = torch::autograd::grad({summed}, {base});
      const auto g_sum_ref = torch::autograd::grad({reference(base.transpose(1, 2), cos, sin).sum()}, {base});
      CHECK(at::equal(g_sum[0], g_sum_ref[0]));
      // Differentiated twice (through the incoming gradient): the chain's backward as differentiable ops.
      const at::Tensor w = at::randn({batch, heads, time, dim}, cuda.dtype(dtype)).requires_grad_(true);
      auto twice = [&](const at::Tensor& y) {
        const auto g = torch::autograd::grad({(y * w).sum()}, {base}, {}, true, true);
        return torch::autograd::grad({(g[0] * g[0]).sum()}, {w})[0];
      };
      const at::Tensor got = twice(abmll::model::apply_rope(base.transpose(1, 2), cos, sin));
      const at::Tensor want = twice(reference(base.transpose(1, 2), cos, sin));
      CHECK(max_abs_diff(got, want) <= 4 * tolerance * std::max(1.0, want.abs().max().item<double>()));
    }
  }
}

namespace {

void check_rms_norm(const at::Device& device) {
  at::manual_seed(2);
  // Rows of different scales (the reciprocal root matters); the weight needs a gradient too in some cases; odd
  // sizes, and a row width past one warp.
  const std::vector<std::tuple<at::ScalarType, double, bool, int64_t>> cases = {
      {at::kDouble, 1e-12, true, 9},    {at::kDouble, 1e-12, false, 9}, {at::kFloat, 1e-6, true, 9},
      {at::kFloat, 1e-6, false, 1031}, {at::kBFloat16, 1e-2, false, 9}, {at::kBFloat16, 1e-2, true, 1031}};
  for (const auto& [dtype, tolerance, weight_grad, width] : cases) {
    const auto options = at::TensorOptions().dtype(at::kDouble).device(device);
    const at::Tensor x = (at::randn({2, 5, width}, options) * at::rand({2, 5, 1}, options) * 3)
                             .to(dtype)
                             .requires_grad_(true);
    const at::Tensor weight = (at::rand({width}, options) + 0.5).to(dtype).requires_grad_(weight_grad);
    std::vector<at::Tensor> inputs = {x};
    if (weight_grad) inputs.push_back(weight);
    INFO("width " << width << (weight_grad ? ", with the weight's gradient" : ""));
    check_against_chain([&] { return rms_norm(x, weight, 1e-5); }, [&] { return rms_norm_chain(x, weight, 1e-5); },
                        inputs, tolerance);
    // Gemma's order, with the weight in float32 (float64 for float64 inputs).
    INFO("weight applied before rounding");
    const at::Tensor wide_weight =
        weight.detach().to(at::promote_types(dtype, at::kFloat)).requires_grad_(weight_grad);
    inputs.resize(1);
    if (weight_grad) inputs.push_back(wide_weight);
    check_against_chain([&] { return rms_norm(x, wide_weight, 1e-5, /*scale_before_rounding=*/true); },
                        [&] { return gemma_rms_norm_chain(x, wide_weight, 1e-5); }, inputs, tolerance);
  }
  // The output keeps x's dtype with a weight of the same dtype.
  const at::Tensor xb = at::randn({2, 3}).to(device, at::kBFloat16);
  CHECK(rms_norm(xb, at::ones({3}, xb.options()), 1e-6).scalar_type() == at::kBFloat16);
}

}  // namespace

TEST_CASE("rms_norm equals transformers' RMSNorm chain, values and derivatives", "[model]") {
  check_rms_norm(at::kCPU);
}

TEST_CASE("on a GPU, rms_norm (ATen's fused kernels) equals transformers' RMSNorm chain", "[model][cuda]") {
  if (!at::hasCUDA()) {
    WARN("skipped: no CUDA device");
    return;
  }
  check_rms_norm(at::Device(at::kCUDA, 0));
}
