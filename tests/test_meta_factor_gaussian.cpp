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
  // The inner loop's tensors are the packed ones; the per-site tensors are views of them.
  REQUIRE(phi.packed_tensors().size() == 2);
  for (const auto& t : phi.packed_tensors()) CHECK((t.is_leaf() && t.requires_grad()));
  for (const auto& t : phi.tensors()) CHECK(t.requires_grad());

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
  // Gradients reach the means and the scales (summed over both groups' samples).
  const auto grads = phi.group_sums(torch::autograd::grad({a.sum()}, phi.packed_tensors()));
  CHECK(grads[0].eq(double(2 * samples)).all().item<bool>());  // the first site's a_mean
  CHECK(grads[1].abs().sum().item<double>() > 0);              // its a_rho
  CHECK(grads[2].abs().sum().item<double>() == 0);             // its b_mean: not in `a`
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

TEST_CASE("on a GPU, noise is drawn on the device, per task, reproducibly", "[meta][cuda]") {
  if (!at::hasCUDA()) {
    WARN("skipped: no CUDA device");
    return;
  }
  model::LoraSettings lora;
  lora.rank = 3;
  lora.targets = {model::Projection::q, model::Projection::down};
  const auto sites = model::lora_sites(tiny_config(), lora);
  const meta::FactorGaussian prior =
      meta::FactorGaussian::initial_prior(sites, tiny_config(), lora.rank, 0.3, 1e-6, at::Device(at::kCUDA, 0),
                                          at::make_generator<at::CPUGeneratorImpl>(123));
  const auto three = prior.posteriors_from(3, false).sample(2, meta::noise_from_seeds({5, 6, 7}));
  const auto again = prior.posteriors_from(3, false).sample(2, meta::noise_from_seeds({5, 6, 7}));
  const auto alone = prior.posteriors_from(1, false).sample(2, meta::noise_from_seeds({6}));
  const auto cpu = tiny_prior(0.3).posteriors_from(1, false).sample(2, meta::noise_from_seeds({6}));
  std::vector<at::Tensor> standardised;
  for (const auto& [site, f] : three) {
    CHECK(f.a.is_cuda());
    CHECK(at::equal(f.a, again.at(site).a));
    CHECK(at::equal(f.a.slice(0, 2, 4), alone.at(site).a));
    CHECK(at::equal(f.b.slice(0, 2, 4), alone.at(site).b));
    CHECK(!at::equal(f.a.slice(0, 0, 2), f.a.slice(0, 2, 4)));
    CHECK(!at::equal(alone.at(site).a.cpu(), cpu.at(site).a));  // the device's generator, not the CPU's
  }
  // Standard normal noise: (draw - mean) / scale over every entry of A (B's mean and scale at the prior: zero, 0.3).
  const auto phi = prior.posteriors_from(3, false).sites();
  for (const auto& [site, f] : three) {
    const meta::SiteGaussian& q = phi.at(site);
    const at::Tensor mean = q.a_mean.repeat_interleave(2, 0), scale = meta::scale_from_rho(q.a_rho, 1e-6);
    standardised.push_back(((f.a - mean) / scale.repeat_interleave(2, 0)).flatten());
  }
  const at::Tensor z = at::cat(standardised);
  INFO(z.numel() << " entries: mean " << z.mean().item<double>() << ", std " << z.std().item<double>());
  CHECK(std::abs(z.mean().item<double>()) < 5 / std::sqrt(static_cast<double>(z.numel())));
  CHECK(std::abs(z.std().item<double>() - 1) < 0.1);
}

namespace {

// The factor family computed site by site and factor by factor, as the layout of task_noise.h describes it: the
// reference for the packed implementation.
struct PerSite {
  std::map<model::LinearSite, model::LoraFactors> draws;
  at::Tensor kl;  // [G]
};

PerSite per_site(const std::map<model::LinearSite, meta::SiteGaussian>& phi,
                 const std::map<model::LinearSite, meta::SiteGaussian>& prior, double floor, int64_t samples,
                 const meta::TaskNoise& noise) {
  auto s = [&](const at::Tensor& rho) { return meta::scale_from_rho(rho, floor); };
  PerSite out;
  std::vector<at::Tensor> kls;
  for (const auto& [site, q] : phi) {
    auto draw = [&](const at::Tensor& mean, const at::Tensor& rho) {
      std::vector<at::Tensor> eps;
      for (const at::Generator& g : noise)
        eps.push_back(at::randn({samples, mean.size(1), mean.size(2)}, g, at::TensorOptions().dtype(at::kFloat)));
      return (mean.unsqueeze(1) + s(rho).unsqueeze(1) * at::stack(eps)).reshape({-1, mean.size(1), mean.size(2)});
    };
    out.draws.emplace(site, model::LoraFactors{draw(q.a_mean, q.a_rho), draw(q.b_mean, q.b_rho)});
    const meta::SiteGaussian& p = prior.at(site);
    auto kl = [&](const at::Tensor& mq, const at::Tensor& rq, const at::Tensor& mp, const at::Tensor& rp) {
      return meta::diagonal_gaussian_kl_terms(mq, s(rq), mp, s(rp)).flatten(1).sum(1);
    };
    kls.push_back(kl(q.a_mean, q.a_rho, p.a_mean, p.a_rho) + kl(q.b_mean, q.b_rho, p.b_mean, p.b_rho));
  }
  out.kl = at::stack(kls).sum(0);
  return out;
}

}  // namespace

TEST_CASE("packed draws, KLs, hyperprior and their gradients equal the per-site computation", "[meta]") {
  // Factor sizes that are multiples of 16 (hidden 32, rank 2): the same numbers bit for bit, noise drawn in one
  // call per task. Other sizes (hidden 12, rank 3): the same noise (drawn factor by factor), values equal up to
  // rounding (vectorised and scalar exp may differ in the last bit).
  for (const bool aligned : {true, false}) {
    for (const int64_t samples : {int64_t{1}, int64_t{2}}) {
      INFO((aligned ? "aligned" : "unaligned") << ", " << samples << " sample(s)");
      const model::ModelConfig config =
          aligned ? test::small_model_config(32, 48, 2, 2, 1, 50) : tiny_config();
      model::LoraSettings lora;
      lora.rank = aligned ? 2 : 3;
      lora.targets = {model::Projection::q, model::Projection::v, model::Projection::down};
      const double floor = 1e-6;
      const auto prior = meta::FactorGaussian::initial_prior(model::lora_sites(config, lora), config, lora.rank, 0.1,
                                                             floor, at::kCPU,
                                                             at::make_generator<at::CPUGeneratorImpl>(7));
      // Posteriors away from the prior, as after inner steps.
      at::manual_seed(1);
      std::vector<at::Tensor> packed;
      for (const auto& t : prior.posteriors_from(3, false).packed_tensors())
        packed.push_back((t.detach() + 0.05 * at::randn_like(t)).requires_grad_(true));
      const meta::FactorGaussian phi = prior.posteriors_from(3, false).with_packed_tensors(packed);
      // The reference on per-site leaves holding the same numbers.
      std::map<model::LinearSite, meta::SiteGaussian> leaves;
      for (const auto& [site, g] : phi.sites()) {
        auto leaf = [](const at::Tensor& t) { return t.detach().clone().requires_grad_(true); };
        leaves.emplace(site, meta::SiteGaussian{leaf(g.a_mean), leaf(g.a_rho), leaf(g.b_mean), leaf(g.b_rho)});
      }
      const PerSite want = per_site(leaves, prior.sites(), floor, samples, meta::noise_from_seeds({3, 4, 5}));
      const auto got = phi.sample(samples, meta::noise_from_seeds({3, 4, 5}));
      const at::Tensor got_kl = phi.kl_to(prior);
      auto same = [&](const at::Tensor& a, const at::Tensor& b) {
        return aligned ? at::equal(a, b) : at::allclose(a, b, 1e-5, 1e-6);
      };
      CHECK(same(got_kl, want.kl));
      // A loss that weighs every drawn entry differently, plus the KL.
      at::Tensor loss_got = got_kl.sum(), loss_want = want.kl.sum();
      for (const auto& [site, f] : got) {
        const model::LoraFactors& w = want.draws.at(site);
        CHECK(same(f.a, w.a));
        CHECK(same(f.b, w.b));
        const at::Tensor wa = at::linspace(-1, 1, f.a.numel()).view(f.a.sizes());
        const at::Tensor wb = at::linspace(-1, 1, f.b.numel()).view(f.b.sizes());
        loss_got = loss_got + (f.a * wa).sum() + (f.b * wb).sum();
        loss_want = loss_want + (w.a * wa).sum() + (w.b * wb).sum();
      }
      const auto g_got = phi.group_sums(torch::autograd::grad({loss_got}, phi.packed_tensors()));
      std::vector<at::Tensor> leaf_tensors;
      for (const auto& [site, g] : leaves) leaf_tensors.insert(leaf_tensors.end(), {g.a_mean, g.a_rho, g.b_mean, g.b_rho});
      const auto g_want = torch::autograd::grad({loss_want}, leaf_tensors);
      REQUIRE(g_got.size() == g_want.size());
      for (size_t i = 0; i < g_got.size(); ++i) {
        INFO("tensor " << i << " largest difference " << (g_got[i] - g_want[i].sum(0)).abs().max().item<double>() << " of " << g_got[i].abs().max().item<double>());
        CHECK(same(g_got[i], g_want[i].sum(0)));
      }
      // The hyperprior against meta::hyperprior_neg_log_density site by site.
      at::Tensor hyper;
      for (const auto& [site, g] : prior.sites()) {
        const at::Tensor term =
            meta::hyperprior_neg_log_density(g.a_mean, meta::scale_from_rho(g.a_rho, floor), 1.0, 1.0, 0.01) +
            meta::hyperprior_neg_log_density(g.b_mean, meta::scale_from_rho(g.b_rho, floor), 1.0, 1.0, 0.01);
        hyper = hyper.defined() ? hyper + term : term;
      }
      CHECK(same(prior.hyperprior_neg_log_density(1.0, 1.0, 0.01), hyper));
    }
  }
}
