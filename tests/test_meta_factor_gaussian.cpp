// The factor family's container: prior initialisation, posteriors started at the prior, reparameterised samples
// with the right moments, per-task KLs and the hyperprior term.
#include <catch2/catch.hpp>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>

#include "meta/factor_gaussian.h"
#include "meta/gaussian.h"
#include "model/lora.h"
#include "tiny_model.h"

using namespace abmll;

namespace {

model::ModelConfig tiny_config() { return test::small_model_config(12, 20, 2, 3, 1, 50); }

meta::FactorGaussian tiny_prior(double init_scale = 0.1) {
  model::LoraSettings lora;
  lora.rank = 3;
  lora.targets = {model::Projection::q, model::Projection::down};
  const auto sites = model::lora_sites(tiny_config(), lora);
  return meta::FactorGaussian::initial_prior(sites, tiny_config(), lora.rank, init_scale, 1e-6, at::kCPU,
                                             at::make_generator<at::CPUGeneratorImpl>(123));
}

}  // namespace

TEST_CASE("the initial prior follows PEFT's initialisation and is reproducible", "[meta]") {
  const meta::FactorGaussian prior = tiny_prior();
  REQUIRE(prior.sites().size() == 4);  // q and down in 2 layers
  for (const auto& [site, g] : prior.sites()) {
    CHECK(g.b_mean.abs().max().item<double>() == 0.0);
    const double bound = 1.0 / std::sqrt(double(g.a_mean.size(1)));
    CHECK(g.a_mean.abs().max().item<double>() <= bound);
    CHECK(meta::scale_from_rho(g.a_rho, 1e-6).sub(0.1).abs().max().item<double>() < 1e-6);
    CHECK(g.a_mean.requires_grad());
  }
  const meta::FactorGaussian again = tiny_prior();
  for (size_t i = 0; i < prior.tensors().size(); ++i) CHECK(at::equal(prior.tensors()[i], again.tensors()[i]));
}

TEST_CASE("posteriors start at the prior with zero KL and are fresh leaves in first-order mode", "[meta]") {
  const meta::FactorGaussian prior = tiny_prior();
  const meta::FactorGaussian phi = prior.posteriors_from(3, /*track_prior=*/false);
  CHECK(phi.groups() == 3);
  const at::Tensor kl = phi.kl_to(prior);
  REQUIRE(kl.sizes() == at::IntArrayRef{3});
  CHECK(kl.abs().max().item<double>() < 1e-6);
  for (const auto& t : phi.tensors()) CHECK(t.is_leaf());

  const meta::FactorGaussian tracked = prior.posteriors_from(2, /*track_prior=*/true);
  const at::Tensor loss = tracked.tensors()[0].sum();
  const auto grads = torch::autograd::grad({loss}, {prior.tensors()[0]});
  CHECK(grads[0].eq(2.0).all().item<bool>());  // two copies of theta's first tensor
}

TEST_CASE("per-task KLs match the closed form summed over every site", "[meta]") {
  const meta::FactorGaussian prior = tiny_prior();
  auto tensors = prior.posteriors_from(2, false).tensors();
  at::manual_seed(0);
  for (auto& t : tensors) t = (t.detach() + 0.05 * at::randn_like(t)).requires_grad_(true);
  const meta::FactorGaussian phi = prior.posteriors_from(2, false).with_tensors(tensors);
  const at::Tensor kl = phi.kl_to(prior);
  for (int64_t g = 0; g < 2; ++g) {
    double expected = 0;
    for (const auto& [site, q] : phi.sites()) {
      const auto& p = prior.sites().at(site);
      auto s = [](const at::Tensor& rho) { return meta::scale_from_rho(rho, 1e-6); };
      expected += meta::diagonal_gaussian_kl(q.a_mean[g], s(q.a_rho[g]), p.a_mean, s(p.a_rho)).item<double>();
      expected += meta::diagonal_gaussian_kl(q.b_mean[g], s(q.b_rho[g]), p.b_mean, s(p.b_rho)).item<double>();
    }
    CHECK(kl[g].item<double>() == Approx(expected).epsilon(1e-5));
  }
  // Differentiable in both phi and theta.
  const auto grads = torch::autograd::grad({kl.sum()}, {phi.tensors()[0], prior.tensors()[0]});
  CHECK(grads[0].abs().sum().item<double>() > 0);
  CHECK(grads[1].abs().sum().item<double>() > 0);
}

TEST_CASE("samples have the posterior's mean and scale and are ordered group-major", "[meta]") {
  const meta::FactorGaussian prior = tiny_prior(0.3);
  const meta::FactorGaussian phi = prior.posteriors_from(2, false);
  const int64_t samples = 4000;
  const auto draws = phi.sample(samples, meta::noise_from_seeds({9, 10}));
  const auto& [site, g] = *phi.sites().begin();
  const at::Tensor a = draws.at(site).a;  // [G * S, R, I]
  REQUIRE(a.size(0) == 2 * samples);
  const at::Tensor group1 = a.slice(0, samples, 2 * samples);
  CHECK((group1.mean(0) - g.a_mean[1]).abs().max().item<double>() < 0.03);
  CHECK((group1.std(0) - 0.3).abs().max().item<double>() < 0.03);
  // Gradients reach the means and the scales.
  const auto grads = torch::autograd::grad({a.sum()}, {g.a_mean, g.a_rho});
  CHECK(grads[0].eq(double(samples)).all().item<bool>());
  CHECK(grads[1].abs().sum().item<double>() > 0);
}

TEST_CASE("the hyperprior term is finite and grows as scales shrink below the Gamma's mode", "[meta]") {
  const double broad = tiny_prior(0.5).hyperprior_neg_log_density(1.0, 1.0, 0.01).item<double>();
  const double narrow = tiny_prior(1e-3).hyperprior_neg_log_density(1.0, 1.0, 0.01).item<double>();
  CHECK(std::isfinite(broad));
  CHECK(narrow > broad);  // precision 1e6 costs b0 * tau = 1e4 per entry
}

TEST_CASE("a group's noise depends on its own generator only", "[meta][dist]") {
  // Data-parallel runs rely on it (task_noise.h): group 1 of three draws what the same group draws alone.
  const meta::FactorGaussian prior = tiny_prior(0.3);
  const auto three = prior.posteriors_from(3, false).sample(2, meta::noise_from_seeds({5, 6, 7}));
  const auto alone = prior.posteriors_from(1, false).sample(2, meta::noise_from_seeds({6}));
  for (const auto& [site, f] : three) {
    CHECK(at::equal(f.a.slice(0, 2, 4), alone.at(site).a));
    CHECK(at::equal(f.b.slice(0, 2, 4), alone.at(site).b));
    CHECK(!at::equal(f.a.slice(0, 0, 2), f.a.slice(0, 2, 4)));
  }
  CHECK_THROWS(prior.posteriors_from(3, false).sample(2, meta::noise_from_seeds({5, 6})));
  // Seeds: one per (step, position), all different.
  CHECK(meta::task_noise_seed(1, 0, 0) != meta::task_noise_seed(1, 0, 1));
  CHECK(meta::task_noise_seed(1, 0, 1) != meta::task_noise_seed(1, 1, 0));
  CHECK(meta::task_noise_seed(1, 2, 3) == meta::task_noise_seed(1, 2, 3));
}
