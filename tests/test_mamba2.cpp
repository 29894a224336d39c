// Granite-4.0's Mamba-2 layers: the chunked scan against the recurrence it stands for, written token by token here
// (values and gradients, chunks that do and do not divide the sequence, groups of B and C serving several heads),
// and the layer's one-sequence rows (left padding leaves the state at 0). Parity with transformers is
// tests/python/test_granite4.py and test_model_parity.py.
#include <catch2/catch.hpp>

#include <ATen/TensorOperators.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/full.h>
#include <ATen/ops/ones_like.h>
#include <ATen/ops/rand.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <torch/csrc/autograd/autograd.h>

#include <vector>

#include "model/decoder.h"
#include "model/mamba2.h"
#include "test_support.h"
#include "tiny_model.h"

using namespace abmll::model;

namespace {

// The selective scan one token at a time (transformers' recurrent Mamba-2 step, mamba2_selective_state_update):
// per head, S <- exp(a dt) S + B (dt x)^T; y = S^T C. x [B, T, H, P], dt [B, T, H], a [H], b, c [B, T, G, N].
at::Tensor recurrent_scan(const at::Tensor& x, const at::Tensor& dt, const at::Tensor& a, const at::Tensor& b,
                          const at::Tensor& c) {
  const int64_t batch = x.size(0), t = x.size(1), heads = x.size(2), p = x.size(3), n = b.size(3);
  const int64_t per_group = heads / b.size(2);
  const at::Tensor writes = b.repeat_interleave(per_group, 2), reads = c.repeat_interleave(per_group, 2);
  at::Tensor state = at::zeros({batch, heads, n, p}, x.options());
  std::vector<at::Tensor> out;
  for (int64_t i = 0; i < t; ++i) {
    const at::Tensor step = dt.select(1, i);  // [B, H]
    state = state * (a * step).exp().view({batch, heads, 1, 1}) +
            writes.select(1, i).unsqueeze(-1) * (x.select(1, i) * step.unsqueeze(-1)).unsqueeze(-2);
    out.push_back((state * reads.select(1, i).unsqueeze(-1)).sum(-2));  // [B, H, P]
  }
  return at::stack(out, 1);  // [B, T, H, P]
}

}  // namespace

TEST_CASE("mamba2: the chunked scan is the token-by-token recurrence, values and gradients", "[model]") {
  at::manual_seed(8);
  const int64_t batch = 2, t = 70, heads = 4, p = 3, groups = 2, n = 5;
  auto input = [](std::vector<int64_t> shape) { return at::randn(shape, at::kDouble).requires_grad_(true); };
  const at::Tensor x = input({batch, t, heads, p}), b = input({batch, t, groups, n}), c = input({batch, t, groups, n});
  // Steps in (0, 1) and decay rates A in (-3, -0.5), as the layer makes them (some steps strong enough that decays
  // from the chunk's start reach e^-100).
  const at::Tensor dt = at::rand({batch, t, heads}, at::kDouble).requires_grad_(true);
  const at::Tensor a = (-0.5 - 2.5 * at::rand({heads}, at::kDouble)).requires_grad_(true);
  const at::Tensor want = recurrent_scan(x, dt, a, b, c);
  const at::Tensor weights = at::randn(want.sizes(), at::kDouble);
  const auto want_grads = torch::autograd::grad({(want * weights).sum()}, {x, dt, a, b, c});
  for (int64_t chunk : {int64_t{256}, int64_t{64}, int64_t{7}, int64_t{1}}) {  // one chunk, 64 + 6, 10 x 7, 70 x 1
    INFO("chunk " << chunk);
    const at::Tensor got = mamba2_chunk_scan(x, dt, a, b, c, chunk);
    REQUIRE(got.sizes() == want.sizes());
    CHECK((got - want).abs().max().item<double>() < 1e-12);
    const auto grads = torch::autograd::grad({(got * weights).sum()}, {x, dt, a, b, c}, {}, /*retain_graph=*/true,
                                             /*create_graph=*/true);
    for (std::size_t i = 0; i < grads.size(); ++i) {
      INFO("gradient " << i);
      CHECK((grads[i] - want_grads[i]).abs().max().item<double>() < 1e-10);
      CHECK(grads[i].isfinite().all().item<bool>());
    }
    // Differentiable twice: a second derivative through the masked decays is finite.
    const auto second = torch::autograd::grad({(grads[1] * grads[1]).sum()}, {a});
    CHECK(second[0].isfinite().all().item<bool>());
  }
  // float32 in, float32 out (computed in float32).
  const at::Tensor narrow = mamba2_chunk_scan(x.detach().to(at::kFloat), dt.detach().to(at::kFloat),
                                              a.detach().to(at::kFloat), b.detach().to(at::kFloat),
                                              c.detach().to(at::kFloat), 16);
  CHECK(narrow.scalar_type() == at::kFloat);
  CHECK((narrow.to(at::kDouble) - want).abs().max().item<double>() < 1e-4);
}

TEST_CASE("mamba2: left padding leaves a row's output as the unpadded sequence's", "[model]") {
  abmll::test::ScratchDir dir;
  const Decoder decoder = abmll::test::load_tiny_model(dir.path(), abmll::test::TinyModel::granite4, at::kDouble);
  REQUIRE((decoder.config().recurrent() && decoder.config().mamba.defined()));
  const at::Tensor ids = at::tensor(std::vector<int64_t>{3, 14, 15, 9, 26, 5, 35}, at::kLong).unsqueeze(0);
  const at::Tensor alone = decoder.forward(ids, at::Tensor(), nullptr, {});
  // Three tokens of padding before it (ids that would move the state if read), and a mask saying so.
  const at::Tensor padded = at::cat({at::full({1, 3}, 41, at::kLong), ids}, 1);
  const at::Tensor mask = at::cat({at::zeros({1, 3}, at::kLong), at::ones_like(ids)}, 1);
  const at::Tensor got = decoder.forward(padded, mask, nullptr, {}).narrow(1, 3, ids.size(1));
  CHECK((got - alone).abs().max().item<double>() < 1e-12);
}
