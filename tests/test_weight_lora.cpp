// The weight family's adapter and container: the adapter's output against the dense formula
//   delta = x M^T + sqrt(x^2 (S^2)^T) * eps
// with M and S built densely from the factors and eps regenerated from the documented seed, per sequence and group;
// its noise is a deterministic function of (seed, forward, site); theta's initialisation; the tiled hyperprior
// against its dense form, values and gradients.
#include <catch2/catch.hpp>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>

#include "meta/lora_posterior.h"
#include "meta/weight_family.h"
#include "meta/weight_gaussian.h"
#include "meta/weight_lora.h"
#include "util/error.h"
#include "tiny_model.h"

using namespace abmll;
using abmll::WeightScale;

namespace {

at::Tensor randn64(at::IntArrayRef shape, double scale) {
  return (at::randn(shape, at::TensorOptions().dtype(at::kDouble)) * scale).requires_grad_(true);
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

}  // namespace

TEST_CASE("weight adapter: output mean and standard deviation equal the dense formula", "[meta][weight]") {
  at::manual_seed(11);
  const int64_t g = 3, samples = 2, o = 5, i = 7, r = 3, batch = 6, time = 4;
  const model::LinearSite site{1, model::Projection::v};
  for (WeightScale kind : {WeightScale::linear, WeightScale::softplus}) {
    INFO("scale form " << (kind == WeightScale::linear ? "linear" : "softplus"));
    const meta::WeightScaleForm form{kind, 1.5, 0.01};
    const meta::WeightGaussianFactors f{randn64({g, o, r}, 0.5), randn64({g, r, i}, 0.5), randn64({g, o, r}, 0.4),
                                        randn64({g, r, i}, 0.4)};
    meta::WeightLora adapter(form, g, samples, /*seed=*/12345);
    adapter.set_site(site, f);
    const at::Tensor x = at::randn({batch, time, i}, at::kDouble);
    const at::Tensor groups = at::tensor({5, 0, 3, 3, 1, 4}, at::kLong);  // posteriors 2, 0, 1, 1, 0, 2
    adapter.set_group_of_sequence(groups);
    const at::Tensor out = adapter.delta(x, site);
    REQUIRE(out.sizes() == at::IntArrayRef({batch, time, o}));
    CHECK(!adapter.delta(x, {0, model::Projection::q}).defined());

    const at::Tensor eps = meta::WeightLora::noise(12345, 1, site, {batch, time, o}, x.options());
    double worst = 0;
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t post = groups[b].item<int64_t>() / samples;
      const meta::WeightGaussianFactors fg{f.b_mu[post], f.a_mu[post], f.b_sigma[post], f.a_sigma[post]};
      const at::Tensor m = meta::dense_mean(fg, form), s = meta::dense_scale(fg, form);  // [O, I]
      const at::Tensor expected =
          at::matmul(x[b], m.t()) + at::sqrt(at::matmul(x[b].square(), s.square().t())) * eps[b];
      worst = std::max(worst, max_abs_diff(out[b], expected));
    }
    INFO("largest difference to the dense formula " << worst);
    CHECK(worst < 1e-12);

    // Gradients flow to every factor, and reach only the posteriors that sequences use.
    const auto grads = torch::autograd::grad({out.square().sum()}, {f.b_mu, f.a_mu, f.b_sigma, f.a_sigma});
    for (const auto& gr : grads) {
      CHECK(gr.abs().sum().item<double>() > 0);
      for (int64_t p = 0; p < g; ++p) CHECK(gr[p].abs().sum().item<double>() > 0);
    }
  }
}

TEST_CASE("weight adapter: noise is a function of (seed, forward, site) and differs between them", "[meta][weight]") {
  const auto o = at::TensorOptions().dtype(at::kFloat);
  const model::LinearSite q{0, model::Projection::q}, v{0, model::Projection::v};
  const at::Tensor a = meta::WeightLora::noise(7, 1, q, {2, 3, 4}, o);
  CHECK(at::equal(a, meta::WeightLora::noise(7, 1, q, {2, 3, 4}, o)));
  CHECK(!at::equal(a, meta::WeightLora::noise(7, 2, q, {2, 3, 4}, o)));
  CHECK(!at::equal(a, meta::WeightLora::noise(7, 1, v, {2, 3, 4}, o)));
  CHECK(!at::equal(a, meta::WeightLora::noise(8, 1, q, {2, 3, 4}, o)));
  // The documented recipe: mt19937 seeded with mix64(mix64(seed ^ forward) ^ mix64(layer * 8 + projection + 1)).
  const std::uint64_t site_seed = meta::mix64(meta::mix64(7 ^ 1) ^ meta::mix64(0 * 8 + 0 + 1));
  CHECK(at::equal(a, at::randn({2, 3, 4}, at::make_generator<at::CPUGeneratorImpl>(site_seed), o)));

  // A forward is counted by set_group_of_sequence: two forwards of the same input differ; recomputing one
  // (gradient checkpointing calls delta again without a new set_group_of_sequence) repeats it exactly.
  meta::WeightLora adapter({WeightScale::softplus, 1.0, 1e-3}, 1, 1, 99);
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  adapter.set_site(q, {at::randn({1, 4, 2}, f32), at::randn({1, 2, 3}, f32), at::randn({1, 4, 2}, f32),
                       at::randn({1, 2, 3}, f32)});
  const at::Tensor x = at::randn({2, 5, 3});
  adapter.set_group_of_sequence(at::zeros({2}, at::kLong));
  const at::Tensor first = adapter.delta(x, q);
  CHECK(at::equal(first, adapter.delta(x, q)));
  adapter.set_group_of_sequence(at::zeros({2}, at::kLong));
  CHECK(!at::equal(first, adapter.delta(x, q)));
}

TEST_CASE("weight family: tiled hyperprior equals the dense formula, values and gradients", "[meta][weight]") {
  at::manual_seed(5);
  for (WeightScale kind : {WeightScale::linear, WeightScale::softplus}) {
    for (int64_t tile : {1, 4, 256}) {
      INFO("scale form " << (kind == WeightScale::linear ? "linear" : "softplus") << ", tile rows " << tile);
      const meta::WeightScaleForm form{kind, 1.3, 0.05};
      const meta::WeightGaussianFactors f{randn64({9, 3}, 0.5), randn64({3, 5}, 0.5), randn64({9, 3}, 0.6),
                                          randn64({3, 5}, 0.6)};
      const double mean_std = 1.7, a0 = 2.5, b0 = 0.3;
      // Independent oracle: the Normal and Gamma log densities entry by entry, written out here.
      const at::Tensor m = meta::dense_mean(f, form);
      const at::Tensor var = at::clamp_min(meta::dense_scale(f, form).square(), form.floor * form.floor);
      const at::Tensor tau = 1.0 / var;
      const at::Tensor log_normal =
          -0.5 * std::log(2 * M_PI * mean_std * mean_std) - m.square() / (2 * mean_std * mean_std);
      const at::Tensor log_gamma = a0 * std::log(b0) - std::lgamma(a0) + (a0 - 1) * at::log(tau) - b0 * tau;
      const at::Tensor oracle = -(log_normal + log_gamma).sum();
      const at::Tensor tiled = meta::weight_space_hyperprior(f, form, mean_std, a0, b0, tile);
      CHECK(tiled.item<double>() == Approx(oracle.item<double>()).epsilon(1e-12));
      CHECK(meta::weight_space_hyperprior_dense(f, form, mean_std, a0, b0).item<double>() ==
            Approx(oracle.item<double>()).epsilon(1e-12));
      const std::vector<at::Tensor> in = {f.b_mu, f.a_mu, f.b_sigma, f.a_sigma};
      const auto g_oracle = torch::autograd::grad({oracle}, in);
      const auto g_tiled = torch::autograd::grad({tiled}, in);
      for (size_t k = 0; k < in.size(); ++k) CHECK(max_abs_diff(g_oracle[k], g_tiled[k]) < 1e-10);
    }
  }
}

TEST_CASE("weight family: theta starts with M = 0 and S near init_scale, its names and zero KL", "[meta][weight]") {
  const model::ModelConfig c = test::small_model_config(8, 12, 2, 2, 1, 10);
  model::LoraSettings lora;
  lora.rank = 4;
  lora.alpha = 8;
  lora.targets = {model::Projection::q, model::Projection::down};
  const auto sites = model::lora_sites(c, lora);
  for (WeightScale kind : {WeightScale::linear, WeightScale::softplus}) {
    INFO("scale form " << (kind == WeightScale::linear ? "linear" : "softplus"));
    const meta::WeightScaleForm form{kind, lora.scale(), 1e-6};
    const meta::LoraPosterior theta(meta::WeightGaussian::initial_prior(sites, c, lora.rank, form, 0.02, at::kCPU,
                                                                        at::make_generator<at::CPUGeneratorImpl>(3)),
                                    lora);
    CHECK(theta.family() == PosteriorFamily::weight);
    CHECK(theta.tensor_names().front() == "model.layers.0.self_attn.q_proj.b_mu");
    CHECK(theta.tensor_names().size() == 4 * sites.size());
    for (const auto& [site, f] : theta.weight()->sites()) {
      CHECK(meta::dense_mean(f, form).abs().max().item<double>() == 0);
      const at::Tensor s = meta::dense_scale(f, form);
      CHECK(((s - 0.02).abs() / 0.02).max().item<double>() < 0.1);
      CHECK(s.std().item<double>() > 0);  // the rank components differ
    }
    // phi^0 = theta: zero KL, and one entry per group.
    const meta::LoraPosterior phi = theta.posteriors_from(3, false);
    meta::FloorStats floor;
    const at::Tensor kl = phi.kl_to(theta, &floor);
    CHECK(kl.sizes() == at::IntArrayRef({3}));
    CHECK(kl.abs().max().item<double>() < 1e-6);
    CHECK(floor.hits == 0);
    CHECK(floor.entries == 3 * 2 * 2 * (8 * 8 + 8 * 12));
    // init_scale at or below the floor is a configuration error.
    CHECK_THROWS_AS(meta::WeightGaussian::initial_prior(sites, c, lora.rank, {kind, 2.0, 0.5}, 0.5, at::kCPU,
                                                        at::make_generator<at::CPUGeneratorImpl>(3)),
                    InputError);
  }
}

