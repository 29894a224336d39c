// The Gaussian pieces of ABMLL: closed-form KLs against Monte Carlo estimates, the tiled weight-space KL against
// the dense formula (values and gradients of all eight factors), and the local reparameterisation variance against
// its dense definition.
#include <catch2/catch.hpp>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <utility>

#include "meta/gaussian.h"
#include "meta/weight_gaussian.h"

using namespace abmll::meta;
using abmll::WeightScale;

namespace {

at::Tensor randn64(at::IntArrayRef shape, double scale = 1.0) {
  return (at::randn(shape, at::TensorOptions().dtype(at::kDouble)) * scale).requires_grad_(true);
}

WeightGaussianFactors random_factors(int64_t out, int64_t in, int64_t r, double sigma_scale) {
  return {randn64({out, r}, 0.5), randn64({r, in}, 0.5), randn64({out, r}, sigma_scale), randn64({r, in}, sigma_scale)};
}

std::vector<at::Tensor> all_factors(const WeightGaussianFactors& q, const WeightGaussianFactors& p) {
  return {q.b_mu, q.a_mu, q.b_sigma, q.a_sigma, p.b_mu, p.a_mu, p.b_sigma, p.a_sigma};
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

}  // namespace

TEST_CASE("diagonal Gaussian KL matches a Monte Carlo estimate", "[meta]") {
  at::manual_seed(1);
  const auto o = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor mu_q = at::randn({6}, o), mu_p = at::randn({6}, o);
  const at::Tensor s_q = at::rand({6}, o) + 0.3, s_p = at::rand({6}, o) + 0.5;
  const double closed = diagonal_gaussian_kl(mu_q, s_q, mu_p, s_p).item<double>();

  // E_q[log q(w) - log p(w)] with w ~ q, 400k draws per entry.
  const int64_t n = 400000;
  const at::Tensor w = mu_q + s_q * at::randn({n, 6}, o);
  auto log_normal = [](const at::Tensor& x, const at::Tensor& mu, const at::Tensor& s) {
    return -at::log(s) - 0.5 * std::log(2 * M_PI) - 0.5 * ((x - mu) / s).pow(2);
  };
  const at::Tensor per_draw = (log_normal(w, mu_q, s_q) - log_normal(w, mu_p, s_p)).sum(1);
  const double estimate = per_draw.mean().item<double>();
  const double standard_error = per_draw.std().item<double>() / std::sqrt(double(n));
  INFO("closed form " << closed << ", Monte Carlo " << estimate << " +- " << standard_error);
  CHECK(std::abs(closed - estimate) < 4 * standard_error);
  CHECK(closed > 0);
  CHECK(diagonal_gaussian_kl(mu_q, s_q, mu_q, s_q).item<double>() == Approx(0).margin(1e-12));
}

TEST_CASE("KL terms are accumulated in float32 for bf16 inputs", "[meta]") {
  const at::Tensor mu = at::full({1000}, 1e-3).to(at::kBFloat16), s = at::ones({1000}).to(at::kBFloat16);
  const at::Tensor kl = diagonal_gaussian_kl(mu, s, at::zeros_like(mu), s);
  CHECK(kl.scalar_type() == at::kFloat);
  const double m = mu[0].item<double>();  // 1e-3 as bf16 holds it
  CHECK(kl.item<double>() == Approx(1000 * 0.5 * m * m).epsilon(1e-5));
}

TEST_CASE("softplus scale parameterisation inverts", "[meta]") {
  const at::Tensor sigma = at::tensor({1e-4, 0.01, 0.5, 3.0, 40.0}, at::kDouble);
  const at::Tensor back = scale_from_rho(rho_from_scale(sigma, 1e-9), 1e-9);
  CHECK(max_abs_diff(back, sigma) < 1e-12);
}

TEST_CASE("hyperprior is the negative log density of Normal means and Gamma precisions", "[meta]") {
  const at::Tensor means = at::tensor({0.3, -1.2}, at::kDouble), sigmas = at::tensor({0.5, 2.0}, at::kDouble);
  const double std_ = 1.5, a0 = 2.0, b0 = 0.3;
  double expected = 0;
  for (double m : {0.3, -1.2}) expected -= -0.5 * std::log(2 * M_PI * std_ * std_) - m * m / (2 * std_ * std_);
  for (double s : {0.5, 2.0}) {
    const double tau = 1 / (s * s);
    expected -= a0 * std::log(b0) - std::lgamma(a0) + (a0 - 1) * std::log(tau) - b0 * tau;
  }
  CHECK(hyperprior_neg_log_density(means, sigmas, std_, a0, b0).item<double>() == Approx(expected).epsilon(1e-12));
}

TEST_CASE("tiled weight-space KL equals the dense formula, values and gradients", "[meta]") {
  at::manual_seed(7);
  for (WeightScale kind : {WeightScale::linear, WeightScale::softplus}) {
    for (int64_t tile : {1, 3, 7, 256}) {
      const WeightGaussianFactors q = random_factors(7, 5, 2, 0.8), p = random_factors(7, 5, 2, 0.8);
      const WeightScaleForm form{kind, 1.7, 0.05};
      const at::Tensor dense = weight_space_kl_dense(q, p, form);
      at::Tensor hits;
      const at::Tensor tiled = weight_space_kl(q, p, form, tile, &hits);
      INFO("scale form " << (kind == WeightScale::linear ? "linear" : "softplus") << ", tile rows " << tile);
      CHECK(tiled.item<double>() == Approx(dense.item<double>()).epsilon(1e-12));
      CHECK(hits.item<int64_t>() >= 0);

      const auto inputs = all_factors(q, p);
      const auto g_dense = torch::autograd::grad({dense}, inputs);
      const auto g_tiled = torch::autograd::grad({tiled}, inputs);
      for (size_t i = 0; i < inputs.size(); ++i) {
        INFO("factor " << i << ": max abs diff " << max_abs_diff(g_dense[i], g_tiled[i]));
        CHECK(max_abs_diff(g_dense[i], g_tiled[i]) < 1e-10);
      }
    }
  }
}

TEST_CASE("the scale floor guards the linear form where S crosses zero, and is counted", "[meta]") {
  const auto o = at::TensorOptions().dtype(at::kDouble);
  // q's S = s * b a + c = 1 * (-0.05) + 0.05 = 0 in every entry: all floored.
  WeightGaussianFactors q{at::zeros({3, 1}, o), at::zeros({1, 4}, o), at::full({3, 1}, -0.05, o), at::ones({1, 4}, o)};
  WeightGaussianFactors p{at::zeros({3, 1}, o), at::zeros({1, 4}, o), at::ones({3, 1}, o), at::ones({1, 4}, o)};
  at::Tensor hits;
  const at::Tensor kl = weight_space_kl(q, p, {WeightScale::linear, 1.0, 0.05}, 2, &hits);
  CHECK(hits.item<int64_t>() == 12);
  CHECK(std::isfinite(kl.item<double>()));
  CHECK(kl.item<double>() == Approx(weight_space_kl_dense(q, p, {WeightScale::linear, 1.0, 0.05}).item<double>()));
}

TEST_CASE("tiled KL supports second-order gradients", "[meta]") {
  at::manual_seed(3);
  const WeightGaussianFactors q = random_factors(4, 3, 2, 0.8), p = random_factors(4, 3, 2, 0.8);
  const WeightScaleForm form{WeightScale::softplus, 1.0, 0.01};
  const auto g_dense = torch::autograd::grad({weight_space_kl_dense(q, p, form)}, {q.a_mu}, {}, true, true);
  const auto g_tiled = torch::autograd::grad({weight_space_kl(q, p, form, 2)}, {q.a_mu}, {}, true, true);
  const auto h_dense = torch::autograd::grad({g_dense[0].sum()}, {p.b_mu});
  const auto h_tiled = torch::autograd::grad({g_tiled[0].sum()}, {p.b_mu});
  CHECK(max_abs_diff(h_dense[0], h_tiled[0]) < 1e-10);
}

TEST_CASE("local reparameterisation variance equals sum_i x_i^2 S_oi^2", "[meta]") {
  at::manual_seed(11);
  for (auto [kind, route] : {std::pair{WeightScale::linear, VarianceRoute::low_rank},
                              std::pair{WeightScale::linear, VarianceRoute::dense},
                              std::pair{WeightScale::linear, VarianceRoute::automatic},
                              std::pair{WeightScale::softplus, VarianceRoute::automatic}}) {
    const WeightGaussianFactors f = random_factors(6, 9, 3, 0.7);
    const WeightScaleForm form{kind, 2.0, 0.03};
    const at::Tensor x = randn64({5, 9});
    const at::Tensor dense = at::matmul(x.pow(2), dense_scale(f, form).pow(2).t());
    const OutputVariance variance = output_variance(x, f, form, route);
    const at::Tensor fast = variance.v;
    CHECK(max_abs_diff(variance.sum_sq, x.pow(2).sum(-1, true)) < 1e-12);
    CHECK(max_abs_diff(dense, fast) < 1e-10);

    const std::vector<at::Tensor> inputs = {x, f.b_sigma, f.a_sigma};
    const at::Tensor weights = at::randn({5, 6}, at::kDouble);
    const auto g_dense = torch::autograd::grad({(dense * weights).sum()}, inputs);
    const auto g_fast = torch::autograd::grad({(fast * weights).sum()}, inputs);
    for (size_t i = 0; i < inputs.size(); ++i) CHECK(max_abs_diff(g_dense[i], g_fast[i]) < 1e-10);
  }
}

TEST_CASE("KLs keep their precision in float32 when q is close to p", "[meta]") {
  // A posterior a few inner steps from its prior: relative changes ~1e-4 in scales, ~1e-3 in means.
  at::manual_seed(5);
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor mu_p = at::randn({4096}, f64), s_p = at::rand({4096}, f64) + 0.5;
  const at::Tensor mu_q = mu_p + 1e-3 * at::randn({4096}, f64), s_q = s_p * (1 + 1e-4 * at::randn({4096}, f64));
  const double exact = diagonal_gaussian_kl(mu_q, s_q, mu_p, s_p).item<double>();
  const double single = diagonal_gaussian_kl(mu_q.to(at::kFloat), s_q.to(at::kFloat), mu_p.to(at::kFloat),
                                             s_p.to(at::kFloat)).item<double>();
  INFO("float64 " << exact << ", float32 " << single);
  CHECK(single == Approx(exact).epsilon(1e-4));

  WeightGaussianFactors p{at::randn({64, 4}, f64), at::randn({4, 48}, f64), at::randn({64, 4}, f64),
                          at::randn({4, 48}, f64)};
  WeightGaussianFactors q{p.b_mu + 1e-3 * at::randn({64, 4}, f64), p.a_mu, p.b_sigma * (1 + 1e-4), p.a_sigma};
  const WeightScaleForm form{WeightScale::softplus, 0.5, 1e-6};
  auto to32 = [](const WeightGaussianFactors& f) {
    return WeightGaussianFactors{f.b_mu.to(at::kFloat), f.a_mu.to(at::kFloat), f.b_sigma.to(at::kFloat),
                                 f.a_sigma.to(at::kFloat)};
  };
  const double w_exact = weight_space_kl(q, p, form, 16).item<double>();
  const double w_single = weight_space_kl(to32(q), to32(p), form, 16).item<double>();
  INFO("weight-space KL float64 " << w_exact << ", float32 " << w_single);
  CHECK(w_single == Approx(w_exact).epsilon(1e-3));
}
