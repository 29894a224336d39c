// The fused noisy output (meta/noisy_output_fused.h), the CPU loop and the CUDA kernels, against the chain of ATen
// ops it replaces (its reference): values rounded to float32, bfloat16 and float16, first derivatives through the
// fused backward, second derivatives through the reference's, on odd sizes, with entries below, above and at the
// bound, a strided noise view and a NaN variance; with the noise given as a tensor and drawn inside the pass from
// sequence keys (counter_noise.h). The counter-based generator itself: Philox4x32-10 against Random123's published
// known answers, its normals' moments, entries independent of the tensor's shape, and the GPU's draws against the
// CPU's. The CUDA cases run on a machine with a GPU; elsewhere they are reported as skipped.
#include <catch2/catch.hpp>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <ATen/Context.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <vector>

#include "meta/counter_noise.h"
#include "meta/noisy_output_fused.h"
#include "meta/reparam_ops.h"
#include "meta/weight_lora.h"
#include "util/cuda_kernels.h"

using abmll::meta::counter_noise_tensor;
using abmll::meta::noisy_output;
using abmll::meta::noisy_output_fused_applies;
using abmll::meta::OutputNoise;

namespace {

struct Inputs {
  at::Tensor mean, v, bound, noise;
  std::vector<std::uint64_t> keys;  // counter-based noise: `noise` is then its tensor
};

// v below the bound in some entries, above in others, and exactly at it in the first column; the noise a strided
// view (as the weight family's per-chunk draws are).
Inputs make_inputs(int64_t batch, int64_t time, int64_t out, const at::Device& device, bool counter = false) {
  const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
  Inputs in;
  in.mean = at::randn({batch, time, out}, options).requires_grad_(true);
  in.bound = (at::rand({batch, time, 1}, options) * 0.3 + 0.05).requires_grad_(true);
  at::Tensor v = at::rand({batch, time, out}, options) * 0.7;
  v.select(2, 0).copy_(in.bound.detach().squeeze(2));
  in.v = v.requires_grad_(true);
  if (counter) {
    for (int64_t b = 0; b < batch; ++b) in.keys.push_back(0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(b + 7));
    in.noise = counter_noise_tensor(in.keys, time, out, device);
  } else {
    in.noise = at::randn({batch, time + 3, out}, options).narrow(1, 2, time);
  }
  return in;
}

OutputNoise noise_of(const Inputs& in) {
  return in.keys.empty() ? OutputNoise{in.noise, {}} : OutputNoise{{}, in.keys};
}

at::Tensor reference(const Inputs& in, at::ScalarType out) {
  return (in.mean + at::sqrt(at::maximum(in.v, in.bound)) * in.noise).to(out);
}

at::Tensor fused(const Inputs& in, at::ScalarType out) {
  if (!in.keys.empty()) return noisy_output(in.mean, in.v, in.bound, {}, {}, out, in.keys);
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

void check_against_reference(const at::Device& device, bool counter) {
  at::manual_seed(23);
  struct Size {
    int64_t batch, time, out;
  };
  // 300 sequences: more than one launch's keys on a GPU.
  for (const Size size :
       {Size{1, 1, 1}, Size{2, 3, 9}, Size{3, 5, 1031}, Size{2, 70, 64}, Size{1, 2, 4096}, Size{300, 2, 9}}) {
    for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
      INFO("B " << size.batch << ", T " << size.time << ", O " << size.out << ", " << at::toString(dtype)
                << (counter ? ", counter-based noise" : ", noise tensor"));
      const Inputs in = make_inputs(size.batch, size.time, size.out, device, counter);
      REQUIRE(noisy_output_fused_applies(in.mean, in.v, in.bound, noise_of(in), dtype));
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
  Inputs in = make_inputs(1, 2, 5, device, counter);
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
void check_second_order(const at::Device& device, bool counter) {
  at::manual_seed(29);
  const Inputs in = make_inputs(2, 3, 17, device, counter);
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
  for (const bool counter : {false, true}) {
    check_against_reference(at::kCPU, counter);
    check_second_order(at::kCPU, counter);
  }
  // What the fused code does not take falls back to the chain: float64 (the tests of reparam_ops), other devices.
  const at::Tensor d = at::zeros({1, 2, 3}, at::kDouble), b = at::ones({1, 2, 1}, at::kDouble);
  CHECK_FALSE(noisy_output_fused_applies(d, d, b, {d, {}}, at::kDouble));
  const at::Tensor f = at::zeros({1, 2, 3}), fb = at::ones({1, 2, 1});
  CHECK(noisy_output_fused_applies(f, f, fb, {f, {}}, at::kBFloat16));
  CHECK(noisy_output_fused_applies(f, f, fb, {{}, {7}}, at::kBFloat16));
  CHECK_FALSE(noisy_output_fused_applies(f, f, fb, {{}, {7, 8}}, at::kBFloat16));  // one key per sequence
  CHECK_FALSE(noisy_output_fused_applies(f, f, fb, {f.transpose(1, 2).contiguous().transpose(1, 2), {}}, at::kFloat));
  CHECK_FALSE(noisy_output_fused_applies(f, f, at::ones({1, 2, 3}), {f, {}}, at::kFloat));
}

TEST_CASE("model.cuda_kernels off: the CPU loop stays, GPU tensors take the ATen chain", "[meta][weight]") {
  const at::Tensor f = at::zeros({1, 2, 3}), fb = at::ones({1, 2, 1});
  abmll::use_cuda_kernels(false);
  const bool cpu_taken = noisy_output_fused_applies(f, f, fb, {f, {}}, at::kFloat);
  bool gpu_taken = false;
  at::Tensor gpu_noise;  // counter-based noise asked for on a GPU without the kernel: the CPU's draws, moved
  if (have_gpu()) {
    const at::Tensor g = f.cuda(), gb = fb.cuda();
    gpu_taken = noisy_output_fused_applies(g, g, gb, {g, {}}, at::kFloat);
    gpu_noise = counter_noise_tensor({7, 9}, 3, 5, g.device());
  }
  abmll::use_cuda_kernels(true);
  CHECK(cpu_taken);
  CHECK_FALSE(gpu_taken);
  if (gpu_noise.defined()) {
    CHECK(gpu_noise.is_cuda());
    CHECK(at::equal(gpu_noise.cpu(), counter_noise_tensor({7, 9}, 3, 5, at::kCPU)));
  }
  if (have_gpu()) {
    const at::Tensor g = f.cuda(), gb = fb.cuda();
    CHECK(noisy_output_fused_applies(g, g, gb, {g, {}}, at::kFloat));
  }
}

TEST_CASE("noisy output: the fused CUDA kernels equal the ATen chain", "[meta][weight][cuda]") {
  if (!have_gpu()) {
    WARN("skipped: " << (at::hasCUDA() ? "abmll built without CUDA" : "no CUDA device"));
    return;
  }
  for (const bool counter : {false, true}) {
    check_against_reference(at::kCUDA, counter);
    check_second_order(at::kCUDA, counter);
  }
}

TEST_CASE("counter-based noise: Philox4x32-10's known answers, normal moments, shape-free entries", "[meta][weight]") {
  using abmll::counter_noise::philox4x32_10;
  using abmll::counter_noise::Words;
  // Random123's kat_vectors for philox4x32 with 10 rounds: counter, key, result.
  struct Known {
    Words counter;
    std::uint32_t k0, k1;
    Words result;
  };
  for (const Known& k : {Known{{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
                         Known{{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
                               {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
                         Known{{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
                               {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}}}) {
    const Words w = philox4x32_10(k.counter, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) CHECK(w.w[i] == k.result.w[i]);
  }

  // 2^20 normals of 64 sequences: moments of N(0, 1) within a few standard errors, neighbours uncorrelated.
  std::vector<std::uint64_t> keys;
  for (std::uint64_t b = 0; b < 64; ++b) keys.push_back(abmll::meta::mix64(b));
  const at::Tensor z = counter_noise_tensor(keys, 64, 256, at::kCPU).to(at::kDouble).flatten();
  const double n = static_cast<double>(z.numel());
  CHECK(std::abs(z.mean().item<double>()) < 5 / std::sqrt(n));
  CHECK(std::abs(z.square().mean().item<double>() - 1) < 5 * std::sqrt(2 / n));
  CHECK(std::abs(z.pow(4).mean().item<double>() - 3) < 5 * std::sqrt(96 / n));
  CHECK(std::abs((z.abs() < 1).to(at::kDouble).mean().item<double>() - 0.682689492) < 5 * 0.4654 / std::sqrt(n));
  CHECK(std::abs((z.narrow(0, 0, z.numel() - 1) * z.narrow(0, 1, z.numel() - 1)).mean().item<double>()) <
        5 / std::sqrt(n));
  CHECK(z.abs().max().item<double>() < 6);

  // An entry is a function of (key, t, o) alone: a smaller tensor is a corner of a larger one, a sequence's rows
  // do not depend on the others', and distinct keys, positions and units differ.
  const at::Tensor big = counter_noise_tensor({11, 12, 13}, 70, 1031, at::kCPU);
  CHECK(at::equal(counter_noise_tensor({11, 12}, 5, 9, at::kCPU), big.narrow(0, 0, 2).narrow(1, 0, 5).narrow(2, 0, 9)));
  CHECK(at::equal(counter_noise_tensor({13}, 70, 1031, at::kCPU), big.narrow(0, 2, 1)));
  CHECK_FALSE(at::equal(big[0], big[1]));
  CHECK_FALSE(at::equal(big[0][0], big[0][1]));
  CHECK(big[0][0][0].item<float>() != big[0][0][4].item<float>());
}

TEST_CASE("counter-based noise: the GPU draws the CPU's numbers", "[meta][weight][cuda]") {
  if (!have_gpu()) {
    WARN("skipped: " << (at::hasCUDA() ? "abmll built without CUDA" : "no CUDA device"));
    return;
  }
  // 300 sequences: more than one launch's keys.
  std::vector<std::uint64_t> keys;
  for (std::uint64_t b = 0; b < 300; ++b) keys.push_back(abmll::meta::mix64(b + 1000));
  for (const auto& [time, out] : std::vector<std::pair<int64_t, int64_t>>{{3, 9}, {2, 1031}, {1, 4096}}) {
    const at::Tensor cpu = counter_noise_tensor(keys, time, out, at::kCPU);
    const at::Tensor gpu = counter_noise_tensor(keys, time, out, at::kCUDA).cpu();
    // The same bits; log, sin and cos of the two platforms differ in their last places.
    const double diff = (gpu - cpu).abs().max().item<double>();
    INFO("T " << time << ", O " << out << ": max abs difference " << diff);
    CHECK(diff < 1e-5);
  }
}
