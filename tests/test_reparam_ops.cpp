// The local reparameterisation's memory-lean autograd functions (meta/reparam_ops.h) against the chains of ATen ops
// they replace: values, gradients and second derivatives in float64, and the input dtype kept.
#include <catch2/catch.hpp>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>

#include <vector>

#include "meta/reparam_ops.h"
#include "meta/squared_input.h"
#include "model/low_rank_product.h"

namespace {

using abmll::model::group_block_size;
using abmll::model::grouped_low_rank_product;
using abmll::model::low_rank_product;
using abmll::meta::pair_products;
using abmll::meta::noisy_output;
using abmll::meta::squared_matmul;

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

at::Tensor leaf(at::IntArrayRef shape, double scale = 1.0) {
  return (at::randn(shape, at::kDouble) * scale).requires_grad_(true);
}

// First and second derivatives of `f(inputs)` . w (w fixed random weights): the gradient g, then the gradient of
// g . u (u random) to every input. Equal derivatives of two implementations give equal results here.
std::vector<at::Tensor> derivatives(const at::Tensor& out, const at::Tensor& w, const std::vector<at::Tensor>& inputs,
                                    const std::vector<at::Tensor>& u) {
  const auto g = torch::autograd::grad({(out * w).sum()}, inputs, {}, /*retain_graph=*/true, /*create_graph=*/true);
  at::Tensor dot = at::zeros({}, at::kDouble);
  for (std::size_t i = 0; i < g.size(); ++i) dot = dot + (g[i] * u[i]).sum();
  auto h = torch::autograd::grad({dot}, inputs, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                 /*allow_unused=*/true);
  std::vector<at::Tensor> all(g.begin(), g.end());
  for (auto& t : h) all.push_back(t.defined() ? t : at::zeros({}, at::kDouble));
  for (auto& t : all) t = t.detach();
  return all;
}

std::vector<at::Tensor> like(const std::vector<at::Tensor>& inputs) {
  std::vector<at::Tensor> out;
  for (const auto& t : inputs) out.push_back(at::randn_like(t));
  return out;
}

void check_same(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("derivative " << i);
    CHECK(max_abs_diff(a[i], b[i]) < 1e-10);
  }
}

}  // namespace

TEST_CASE("squared_matmul equals square then matmul, to second derivatives", "[meta]") {
  at::manual_seed(1);
  const at::Tensor x = leaf({7, 5}), m = leaf({5, 3});
  const at::Tensor w = at::randn({7, 3}, at::kDouble);
  const auto u = like({x, m});
  const at::Tensor fast = squared_matmul(x, m), plain = at::matmul(at::square(x), m);
  CHECK(max_abs_diff(fast, plain) < 1e-12);
  check_same(derivatives(squared_matmul(x, m), w, {x, m}, u), derivatives(at::matmul(at::square(x), m), w, {x, m}, u));

  // A lower-precision input is squared in m's dtype and gets its gradient in its own dtype.
  const at::Tensor xf = at::randn({4, 5}, at::kFloat).requires_grad_(true);
  const at::Tensor y = squared_matmul(xf, m.detach());
  CHECK(y.scalar_type() == at::kDouble);
  CHECK(max_abs_diff(y, at::matmul(at::square(xf.detach().to(at::kDouble)), m.detach())) < 1e-12);
  const auto g = torch::autograd::grad({y.sum()}, {xf});
  CHECK(g[0].scalar_type() == at::kFloat);
}

namespace {

// With float32 m, the fused passes (squared_input.h) against the chain, values and first derivatives, for inputs in
// float32, bf16 and fp16 (contiguous, and a transposed copy that is not: the chain's path).
void check_squared_matmul_fused(const at::Device& device) {
  at::manual_seed(6);
  for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
    for (const bool contiguous : {true, false}) {
      INFO(c10::toString(dtype) << (contiguous ? "" : ", not contiguous"));
      const auto options = at::TensorOptions().device(device);
      at::Tensor x = (at::randn({37, 1031}, options) * 3).to(dtype);
      if (!contiguous) x = x.t().contiguous().t();
      x.requires_grad_(true);
      const at::Tensor m = at::rand({1031, 5}, options).requires_grad_(true);
      CHECK(abmll::meta::squared_input_fused_applies(x, at::kFloat) == contiguous);
      const at::Tensor w = at::randn({37, 5}, options);
      const at::Tensor y = squared_matmul(x, m), y_ref = at::matmul(at::square(x.to(at::kFloat)), m);
      const double scale = y_ref.abs().max().item<double>();
      CHECK((y - y_ref).abs().max().item<double>() <= 1e-6 * scale);
      const auto g = torch::autograd::grad({(y * w).sum()}, {x, m});
      const auto g_ref = torch::autograd::grad({(y_ref * w).sum()}, {x, m});
      for (std::size_t i = 0; i < g.size(); ++i) {
        INFO("gradient " << i);
        CHECK(g[i].scalar_type() == g_ref[i].scalar_type());
        const double gs = g_ref[i].abs().max().item<double>();
        // x's gradient in its own dtype: the same float32 product (2 x) h, rounded once, to the bit.
        const double tol = i == 0 ? 0.0 : 1e-6;
        CHECK((g[i].to(at::kDouble) - g_ref[i].to(at::kDouble)).abs().max().item<double>() <= tol * gs);
      }
    }
  }
}

}  // namespace

TEST_CASE("squared_matmul with float32 factors: one pass for x^2 and one for 2 x (g m^T), as the chain", "[meta]") {
  check_squared_matmul_fused(at::kCPU);
}

TEST_CASE("on a GPU, squared_matmul's fused passes equal the chain", "[meta][weight][cuda]") {
  if (!at::hasCUDA()) {
    WARN("skipped: no CUDA device");
    return;
  }
  check_squared_matmul_fused(at::kCUDA);
}

TEST_CASE("low_rank_product equals the two batched matmuls, to second derivatives", "[meta]") {
  at::manual_seed(2);
  const at::Tensor x = leaf({3, 4, 6}), a = leaf({3, 2, 6}), b = leaf({3, 5, 2});
  const at::Tensor w = at::randn({3, 4, 5}, at::kDouble);
  const auto u = like({x, a, b});
  auto plain = [&] { return at::bmm(at::bmm(x, a.transpose(1, 2)) * 0.7, b.transpose(1, 2)); };
  CHECK(max_abs_diff(low_rank_product(x, a, b, 0.7), plain()) < 1e-12);
  check_same(derivatives(low_rank_product(x, a, b, 0.7), w, {x, a, b}, u), derivatives(plain(), w, {x, a, b}, u));
}

TEST_CASE("noisy_output equals mean + sqrt(max(v, bound)) * noise, to second derivatives", "[meta]") {
  at::manual_seed(3);
  // v below the bound in some entries, above in others.
  const at::Tensor mean = leaf({2, 3, 4}), v = leaf({2, 3, 4}, 0.5), bound = (at::rand({2, 3, 1}, at::kDouble) * 0.3 +
                                                                               0.05).requires_grad_(true);
  const at::Tensor noise = at::randn({2, 3, 4}, at::kDouble);
  {
    at::NoGradGuard no_grad;
    v.abs_();
  }
  REQUIRE((v < bound).any().item<bool>());
  REQUIRE((v > bound).any().item<bool>());
  const at::Tensor w = at::randn({2, 3, 4}, at::kDouble);
  const auto u = like({mean, v, bound});
  auto plain = [&] { return mean + at::sqrt(at::maximum(v, bound)) * noise; };
  int draws = 0;
  auto draw = [&] {
    ++draws;
    return noise;
  };
  CHECK(max_abs_diff(noisy_output(mean, v, bound, draw), plain()) < 1e-12);
  CHECK(draws == 1);
  check_same(derivatives(noisy_output(mean, v, bound, draw), w, {mean, v, bound}, u),
             derivatives(plain(), w, {mean, v, bound}, u));
  CHECK(draws == 3);  // the second output's forward and its backward (the noise is not kept)
}

TEST_CASE("noisy_output with its variance recomputed in backward, to second derivatives", "[meta]") {
  at::manual_seed(4);
  // v = h wv^T from leaves (as the weight family's low-rank route: [N, P] x [P, O]), not kept but recomputed: the
  // same values and derivatives, to second order, in mean, bound and the leaves v comes from.
  const at::Tensor h = at::rand({6, 5}, at::kDouble).requires_grad_(true);
  const at::Tensor wv = at::rand({4, 5}, at::kDouble).requires_grad_(true);
  const at::Tensor mean = leaf({2, 3, 4});
  const at::Tensor bound = (at::rand({2, 3, 1}, at::kDouble) * 1.5 + 0.2).requires_grad_(true);
  const at::Tensor noise = at::randn({2, 3, 4}, at::kDouble);
  auto v_of = [&] { return at::matmul(h, wv.t()).reshape({2, 3, 4}); };
  {
    at::NoGradGuard no_grad;
    REQUIRE((v_of() < bound).any().item<bool>());
    REQUIRE((v_of() > bound).any().item<bool>());
  }
  int recomputed = 0;
  auto again = [&] {
    ++recomputed;
    return v_of();
  };
  const at::Tensor w = at::randn({2, 3, 4}, at::kDouble);
  const auto u = like({mean, h, wv, bound});
  auto plain = [&] { return mean + at::sqrt(at::maximum(v_of(), bound)) * noise; };
  auto lean = [&] { return noisy_output(mean, v_of(), bound, [&] { return noise; }, again); };
  CHECK(max_abs_diff(lean(), plain()) < 1e-12);
  CHECK(recomputed == 0);  // forward uses v as given
  check_same(derivatives(lean(), w, {mean, h, wv, bound}, u), derivatives(plain(), w, {mean, h, wv, bound}, u));
  CHECK(recomputed == 1);  // once in backward (its graph carries the second derivatives)
}

TEST_CASE("pair_products equals the two gathers' product, to second derivatives", "[meta]") {
  at::manual_seed(4);
  const at::Tensor rows = leaf({4, 7});
  const at::Tensor pairs = at::triu_indices(4, 4, 0, at::kLong);  // with repeats: rows meet themselves and others
  const at::Tensor first = pairs[0], second = pairs[1];
  const at::Tensor w = at::randn({pairs.size(1), 7}, at::kDouble);
  const auto u = like({rows});
  auto plain = [&] { return rows.index_select(0, first) * rows.index_select(0, second); };
  CHECK(max_abs_diff(pair_products(rows, first, second), plain()) < 1e-12);
  check_same(derivatives(pair_products(rows, first, second), w, {rows}, u), derivatives(plain(), w, {rows}, u));
  // On a transposed view (the variance takes column pairs that way).
  const at::Tensor cols = leaf({7, 4});
  auto plain_t = [&] { return cols.t().index_select(0, first) * cols.t().index_select(0, second); };
  const auto uc = like({cols});
  check_same(derivatives(pair_products(cols.t(), first, second), w, {cols}, uc),
             derivatives(plain_t(), w, {cols}, uc));
}

TEST_CASE("grouped_low_rank_product: blocks of sequences per group equal per-sequence gathering", "[meta]") {
  CHECK(group_block_size(at::tensor({0, 0, 1, 1, 2, 2}, at::kLong)) == 2);
  CHECK(group_block_size(at::tensor({0, 0, 0}, at::kLong)) == 3);
  CHECK(group_block_size(at::tensor({0, 1}, at::kLong)) == 1);
  CHECK(group_block_size(at::tensor({0, 0, 1}, at::kLong)) == 0);     // unequal blocks
  CHECK(group_block_size(at::tensor({1, 1, 0, 0}, at::kLong)) == 0);  // out of order
  CHECK(group_block_size(at::tensor({0, 1, 0, 1}, at::kLong)) == 0);
  at::manual_seed(5);
  // Four groups, of which the batch's blocks use the first three.
  const at::Tensor x = leaf({6, 5, 4}), a = leaf({4, 2, 4}), b = leaf({4, 3, 2});
  const at::Tensor group = at::tensor({0, 0, 1, 1, 2, 2}, at::kLong);
  const at::Tensor w = at::randn({6, 5, 3}, at::kDouble);
  const auto u = like({x, a, b});
  auto gathered = [&] { return grouped_low_rank_product(x, a, b, 0.5, group, 0); };
  auto blocks = [&] { return grouped_low_rank_product(x, a, b, 0.5, group, group_block_size(group)); };
  CHECK(max_abs_diff(blocks(), gathered()) < 1e-12);
  CHECK(max_abs_diff(gathered(), low_rank_product(x, a.index_select(0, group), b.index_select(0, group), 0.5)) <
        1e-15);
  check_same(derivatives(blocks(), w, {x, a, b}, u), derivatives(gathered(), w, {x, a, b}, u));
  CHECK(grouped_low_rank_product(x.narrow(0, 0, 0), a, b, 0.5, group.narrow(0, 0, 0), 0).sizes() ==
        at::IntArrayRef({0, 5, 3}));
}
