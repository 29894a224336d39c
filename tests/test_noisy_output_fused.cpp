// The fused noisy output (meta/noisy_output_fused.h), the CPU loop and the CUDA kernels, against the chain of ATen
// ops it replaces (its reference): values rounded to float32, bfloat16 and float16, first derivatives through the
// fused backward, second derivatives through the reference's, on odd sizes, with entries below, above and at the
// bound, a strided noise view and a NaN variance. The CUDA case runs on a machine with a GPU; elsewhere it is
// reported as skipped.
#include <catch2/catch.hpp>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <vector>

#include "meta/noisy_output_fused.h"
#include "meta/reparam_ops.h"

using abmll::meta::noisy_output;
using abmll::meta::noisy_output_fused_applies;

namespace {

struct Inputs {
  at::Tensor mean, v, bound, noise;
};

// v below the bound in some entries, above in others, and exactly at it in the first column; the noise a strided
// view (as the weight family's per-chunk draws are).
Inputs make_inputs(int64_t batch, int64_t time, int64_t out, const at::Device& device) {
  const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
  Inputs in;
  in.mean = at::randn({batch, time, out}, options).requires_grad_(true);
  in.bound = (at::rand({batch, time, 1}, options) * 0.3 + 0.05).requires_grad_(true);
  at::Tensor v = at::rand({batch, time, out}, options) * 0.7;
  v.select(2, 0).copy_(in.bound.detach().squeeze(2));
  in.v = v.requires_grad_(true);
  in.noise = at::randn({batch, time + 3, out}, options).narrow(1, 2, time);
  return in;
}

at::Tensor reference(const Inputs& in, at::ScalarType out) {
  return (in.mean + at::sqrt(at::maximum(in.v, in.bound)) * in.noise).to(out);
}

at::Tensor fused(const Inputs& in, at::ScalarType out) {
  return noisy_output(in.mean, in.v, in.bound, [noise = in.noise] { return noise; }, {}, out);
}

// max |y - y_ref| / (|mean| + |sqrt(max(v, bound)) noise|): differences relative to the terms' size (the sum may
// cancel).
double max_rel_diff(const at::Tensor& y, const at::Tensor& y_ref, const Inputs& in) {
  at::NoGradGuard no_grad;
  const at::Tensor terms =
      in.mean.abs() + (at::sqrt(at::maximum(in.v, in.bound)) * in.noise).abs() + 1e-30;
  return ((y.to(at::kDouble) - y_ref.to(at::kDouble)).abs() / terms.to(at::kDouble)).max().item<double>();
}

void check_against_reference(const at::Device& device) {
  at::manual_seed(23);
  struct Size {
    int64_t batch, time, out;
  };
  for (const Size size : {Size{1, 1, 1}, Size{2, 3, 9}, Size{3, 5, 1031}, Size{2, 70, 64}, Size{1, 2, 4096}}) {
    for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
      INFO("B " << size.batch << ", T " << size.time << ", O " << size.out << ", " << at::toString(dtype));
      const Inputs in = make_inputs(size.batch, size.time, size.out, device);
      REQUIRE(noisy_output_fused_applies(in.mean, in.v, in.bound, in.noise, dtype));
      const at::Tensor y = fused(in, dtype), y_ref = reference(in, dtype);
      CHECK(y.scalar_type() == dtype);
      CHECK(y.device() == device);
      // One rounding to the output dtype of the same float32 value; a GPU may fuse the product and the sum, so a
      // bfloat16 or float16 result may differ in its last place.
      const double tol = dtype == at::kFloat ? 1e-6 : dtype == at::kBFloat16 ? 1.0 / 128 : 1.0 / 1024;
      const double value_diff = max_rel_diff(y, y_ref, in);
      INFO("values: max relative difference " << value_diff);
      CHECK(value_diff <= tol);

      const at::Tensor w = at::randn(y.sizes(), y.options().dtype(at::kFloat));
      const std::vector<at::Tensor> wrt = {in.mean, in.v, in.bound};
      const auto g = torch::autograd::grad({(y.to(at::kFloat) * w).sum()}, wrt);
      const auto g_ref = torch::autograd::grad({(y_ref.to(at::kFloat) * w).sum()}, wrt);
      for (std::size_t i = 0; i < wrt.size(); ++i) {
        CHECK(g[i].scalar_type() == at::kFloat);
        CHECK(g[i].sizes() == wrt[i].sizes());
        const double scale = g_ref[i].abs().max().item<double>();
        const double diff = (g[i] - g_ref[i]).abs().max().item<double>();
        INFO("gradient " << i << ": max abs diff " << diff << " (gradients up to " << scale << ")");
        CHECK(diff <= 1e-5 * std::max(1.0, scale));
      }
    }
  }

  // A NaN variance reaches the output and the gradients; it is not hidden by the bound.
  Inputs in = make_inputs(1, 2, 5, device);
  {
    at::NoGradGuard no_grad;
    in.v.select(2, 3).fill_(NAN);
  }
  const at::Tensor y = fused(in, at::kBFloat16);
  CHECK(at::isnan(y.select(2, 3)).all().item<bool>());
  CHECK_FALSE(at::isnan(y.select(2, 2)).any().item<bool>());
  const auto g = torch::autograd::grad({y.to(at::kFloat).sum()}, {in.v, in.bound});
  CHECK(at::isnan(g[0].select(2, 3)).all().item<bool>());
  CHECK(at::isnan(g[1]).all().item<bool>());
}

// Second derivatives (the backward differentiated again takes the reference chain) after the fused forward.
void check_second_order(const at::Device& device) {
  at::manual_seed(29);
  const Inputs in = make_inputs(2, 3, 17, device);
  const std::vector<at::Tensor> wrt = {in.mean, in.v, in.bound};
  const at::Tensor w = at::randn({2, 3, 17}, in.mean.options());
  auto derivatives = [&](const at::Tensor& y) {
    const auto g = torch::autograd::grad({(y * w).sum()}, wrt, {}, /*retain_graph=*/true, /*create_graph=*/true);
    at::Tensor dot = at::zeros({}, in.mean.options());
    for (std::size_t i = 0; i < g.size(); ++i) dot = dot + (g[i] * (i + 1.0)).sum();
    auto h = torch::autograd::grad({dot}, wrt, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                   /*allow_unused=*/true);
    std::vector<at::Tensor> all(g.begin(), g.end());
    all.insert(all.end(), h.begin(), h.end());
    return all;
  };
  const auto d = derivatives(fused(in, at::kFloat)), d_ref = derivatives(reference(in, at::kFloat));
  REQUIRE(d.size() == d_ref.size());
  for (std::size_t i = 0; i < d.size(); ++i) {
    INFO("derivative " << i);
    REQUIRE(d[i].defined() == d_ref[i].defined());
    if (!d[i].defined()) continue;
    const double scale = d_ref[i].abs().max().item<double>();
    CHECK((d[i] - d_ref[i]).abs().max().item<double>() <= 1e-5 * std::max(1.0, scale));
  }
}

bool have_gpu() {
#ifdef ABMLL_HAVE_CUDA
  return at::hasCUDA();
#else
  return false;
#endif
}

}  // namespace

TEST_CASE("noisy output: the fused CPU loop equals the ATen chain", "[meta][weight]") {
  check_against_reference(at::kCPU);
  check_second_order(at::kCPU);
  // What the fused code does not take falls back to the chain: float64 (the tests of reparam_ops), other devices.
  const at::Tensor d = at::zeros({1, 2, 3}, at::kDouble), b = at::ones({1, 2, 1}, at::kDouble);
  CHECK_FALSE(noisy_output_fused_applies(d, d, b, d, at::kDouble));
  const at::Tensor f = at::zeros({1, 2, 3}), fb = at::ones({1, 2, 1});
  CHECK(noisy_output_fused_applies(f, f, fb, f, at::kBFloat16));
  CHECK_FALSE(noisy_output_fused_applies(f, f, fb, f.transpose(1, 2).contiguous().transpose(1, 2), at::kFloat));
  CHECK_FALSE(noisy_output_fused_applies(f, f, at::ones({1, 2, 3}), f, at::kFloat));
}

TEST_CASE("noisy output: the fused CUDA kernels equal the ATen chain", "[meta][weight][cuda]") {
  if (!have_gpu()) {
    WARN("skipped: " << (at::hasCUDA() ? "abmll built without CUDA" : "no CUDA device"));
    return;
  }
  check_against_reference(at::kCUDA);
  check_second_order(at::kCUDA);
}
