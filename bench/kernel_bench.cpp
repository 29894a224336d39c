// abmll_kernel_bench: times abmll's elementwise pieces of the 8B step and the weight family's KL, each as the step
// calls it (the public function: on a GPU abmll's kernel, on the CPU its loop or ATen's chain) against ATen's chain
// of ops written out (the reference), forward and forward + backward, at the Llama-3-8B shape with 8192 tokens per
// forward. Not a test; scripts/gpu_check.sh runs it on a GPU.
//
//   abmll_kernel_bench [--device cuda|cpu] [--tokens 8192] [--warmup 3] [--runs 10] [--json FILE]
// prints a table and, with --json, writes a list of records {case, impl, device, ms_forward, ms_forward_backward}
// (medians over the runs).
#include <CLI/CLI.hpp>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "meta/reparam_ops.h"
#include "meta/weight_gaussian.h"
#include "model/rope.h"
#include "model/swiglu.h"
#include "util/error.h"

#ifdef ABMLL_HAVE_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace {

void synchronize(const at::Device& device) {
#ifdef ABMLL_HAVE_CUDA
  if (device.is_cuda()) c10::cuda::device_synchronize();
#endif
}

struct Timing {
  double forward_ms = 0, forward_backward_ms = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// `forward` builds the output from leaves requiring grad; the backward runs from a fixed random gradient.
Timing time_case(const std::function<at::Tensor()>& forward, const at::Device& device, int64_t warmup,
                 int64_t runs) {
  const at::Tensor probe = forward();
  const at::Tensor grad = at::randn(probe.sizes(), probe.options());
  std::vector<double> fwd, both;
  for (int64_t i = 0; i < warmup + runs; ++i) {
    synchronize(device);
    auto start = std::chrono::steady_clock::now();
    at::Tensor y = forward();
    synchronize(device);
    const std::chrono::duration<double, std::milli> f = std::chrono::steady_clock::now() - start;
    torch::autograd::backward({y}, {grad});
    synchronize(device);
    const std::chrono::duration<double, std::milli> fb = std::chrono::steady_clock::now() - start;
    if (i >= warmup) {
      fwd.push_back(f.count());
      both.push_back(fb.count());
    }
  }
  return {median(fwd), median(both)};
}

at::Tensor leaf(const at::Tensor& t) { return t.detach().requires_grad_(true); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Times abmll's elementwise pieces of the 8B step against ATen's chains");
  std::string device_name = "cuda", json_path;
  int64_t tokens = 8192, warmup = 3, runs = 10;
  app.add_option("--device", device_name, "cuda or cpu")->capture_default_str();
  app.add_option("--tokens", tokens, "tokens per forward (sequences of 256)")->capture_default_str();
  app.add_option("--warmup", warmup)->capture_default_str();
  app.add_option("--runs", runs)->capture_default_str();
  app.add_option("--json", json_path, "write the records here");
  CLI11_PARSE(app, argc, argv);
  try {
    const at::Device device(device_name);
    if (device.is_cuda() && !at::hasCUDA()) throw abmll::InputError("--device cuda: no CUDA device here");
    if (tokens < 256 || tokens % 256 != 0) throw abmll::InputError("--tokens: a positive multiple of 256");
    const int64_t seq = 256, batch = tokens / seq, hidden = 4096, mlp = 14336, heads = 32, head_dim = 128;
    const auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
    const auto bf16 = f32.dtype(at::kBFloat16);
    at::manual_seed(0);
    nlohmann::json records = nlohmann::json::array();
    auto record = [&](const std::string& name, const Timing& mine, const Timing& chain) {
      for (const auto& [impl, t] : {std::pair{"abmll", mine}, std::pair{"aten chain", chain}})
        records.push_back({{"case", name}, {"impl", impl}, {"device", device_name}, {"ms_forward", t.forward_ms},
                           {"ms_forward_backward", t.forward_backward_ms}});
      std::cout << name << ": forward " << mine.forward_ms << " ms vs " << chain.forward_ms << " ms (x"
                << chain.forward_ms / mine.forward_ms << "), forward + backward " << mine.forward_backward_ms
                << " ms vs " << chain.forward_backward_ms << " ms (x"
                << chain.forward_backward_ms / mine.forward_backward_ms << ")\n";
    };

    {  // The weight family's noisy output at q_proj, output in bf16; the noise drawn in forward and backward.
      const at::Tensor mean = leaf(at::randn({batch, seq, hidden}, f32)),
                       v = leaf(at::rand({batch, seq, hidden}, f32) * 0.1),
                       bound = leaf(at::rand({batch, seq, 1}, f32) * 0.01 + 1e-4);
      std::vector<std::uint64_t> keys;
      for (int64_t b = 0; b < batch; ++b) keys.push_back(0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(b + 1));
      auto draw = [&] { return at::randn({batch, seq, hidden}, f32); };
      const bool counter = device.is_cuda();  // what WeightLora does there
      const Timing mine = time_case(
          [&] {
            return counter ? abmll::meta::noisy_output(mean, v, bound, {}, {}, at::kBFloat16, keys)
                           : abmll::meta::noisy_output(mean, v, bound, draw, {}, at::kBFloat16);
          },
          device, warmup, runs);
      const Timing chain = time_case(
          [&] { return (mean + at::sqrt(at::maximum(v, bound)) * draw()).to(at::kBFloat16); }, device, warmup, runs);
      record("noisy output [" + std::to_string(tokens) + ", 4096]", mine, chain);
    }
    {  // The weight family's squared input at q_proj: x^2 @ M, M [I, P + 1] with P = 153 pairs at rank 16.
      const at::Tensor x = leaf(at::randn({tokens, hidden}, bf16)), m = leaf(at::rand({hidden, 154}, f32));
      const Timing mine = time_case([&] { return abmll::meta::squared_matmul(x, m); }, device, warmup, runs);
      const Timing chain =
          time_case([&] { return at::matmul(at::square(x.to(at::kFloat)), m); }, device, warmup, runs);
      record("squared input [" + std::to_string(tokens) + ", 4096] @ [4096, 154]", mine, chain);
    }
    {  // SwiGLU's gating.
      const at::Tensor gate = leaf(at::randn({tokens, mlp}, bf16)), up = leaf(at::randn({tokens, mlp}, bf16));
      const Timing mine = time_case([&] { return abmll::model::swiglu(gate, up); }, device, warmup, runs);
      const Timing chain = time_case([&] { return at::silu(gate) * up; }, device, warmup, runs);
      record("SwiGLU [" + std::to_string(tokens) + ", 14336]", mine, chain);
    }
    {  // RoPE on q, a transposed view of the projection's output.
      const at::Tensor base = leaf(at::randn({batch, seq, heads, head_dim}, bf16));
      const at::Tensor positions = at::arange(seq, f32.dtype(at::kLong)).repeat({batch, 1});
      const at::Tensor inv_freq = at::pow(500000.0, -at::arange(0, head_dim, 2, f32) / head_dim);
      const auto [cos, sin] = abmll::model::rope_tables(positions, inv_freq, at::kBFloat16);
      const at::Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);
      const int64_t half = head_dim / 2;
      const at::Tensor signed_sin = at::cat({-s.narrow(-1, 0, half), s.narrow(-1, half, half)}, -1);
      const Timing mine =
          time_case([&] { return abmll::model::apply_rope(base.transpose(1, 2), cos, sin); }, device, warmup, runs);
      const Timing chain = time_case(
          [&] {
            const at::Tensor x = base.transpose(1, 2);
            return x * c + at::roll(x, {half}, {-1}) * signed_sin;
          },
          device, warmup, runs);
      record("RoPE q [" + std::to_string(batch) + ", 32, 256, 128]", mine, chain);
    }
    {  // The weight family's KL at q_proj (rank 16) as a first-order inner step takes it: q differentiated and a few
       // percent away from p (the prior, fixed); against the tiled ATen implementation, the reference.
      const int64_t rank = 16;
      const abmll::meta::WeightGaussianFactors p{
          at::randn({hidden, rank}, f32) * 0.3, at::randn({rank, hidden}, f32) * 0.3,
          at::randn({hidden, rank}, f32) * 0.3, at::randn({rank, hidden}, f32) * 0.3};
      auto near = [&](const at::Tensor& t) { return leaf(t * (1 + 0.03 * at::randn(t.sizes(), f32))); };
      const abmll::meta::WeightGaussianFactors q{near(p.b_mu), near(p.a_mu), near(p.b_sigma), near(p.a_sigma)};
      const abmll::meta::WeightScaleForm form{abmll::WeightScale::linear, 2.0, 2.061153622438558e-09};
      const Timing mine = time_case([&] { return abmll::meta::weight_space_kl(q, p, form); }, device, warmup, runs);
      const Timing chain = time_case(
          [&] { return abmll::meta::weight_space_kl(q, p, form, 256, nullptr, abmll::meta::WeightKlBackend::aten); },
          device, warmup, runs);
      record("weight KL [4096, 4096] rank 16, q differentiated", mine, chain);
    }
    if (!json_path.empty()) std::ofstream(json_path) << records.dump(2) << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "abmll_kernel_bench: " << e.what() << "\n";
    return abmll::exit_code_for(e);
  }
}
