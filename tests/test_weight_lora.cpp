// The weight family's adapter and container: the adapter's output against the dense formula
//   delta = x M^T + sqrt(x^2 (S^2)^T) * eps
// with M and S built densely from the factors and eps regenerated from the documented recipe, per sequence and group;
// its noise is a deterministic function of (task seed, sample, forward, site) and, per sequence, independent of the
// other tasks sharing the forward, their order and the padded length (what data-parallel training relies on);
// both hold for the GPU's counter-based noise too (drawn here on the CPU), and on a GPU the adapter gives the CPU's
// values with it; theta's initialisation; the tiled hyperprior against its dense form, values and gradients.
#include <catch2/catch.hpp>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>

#include "meta/lora_posterior.h"
#include "meta/noisy_output_fused.h"
#include "meta/task_noise.h"
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

// The documented recipe (weight_lora.h), written out: chunks of 64 positions, each an mt19937 randn [rows, 64, out]
// seeded with mix64(site_seed ^ mix64(sample * 2^32 + chunk)), concatenated along time and cut at `time`.
at::Tensor recipe_noise(std::uint64_t task_seed, std::uint64_t sample, std::uint64_t forward,
                        const model::LinearSite& site, int64_t rows, int64_t time, int64_t out, at::ScalarType dtype) {
  const std::uint64_t site_key =
      static_cast<std::uint64_t>(site.layer) * 8 + static_cast<std::uint64_t>(site.projection) + 1;
  const std::uint64_t site_seed = meta::mix64(meta::mix64(task_seed ^ forward) ^ meta::mix64(site_key));
  std::vector<at::Tensor> chunks;
  for (std::uint64_t c = 0; static_cast<int64_t>(c) * 64 < time; ++c) {
    const std::uint64_t seed = meta::mix64(site_seed ^ meta::mix64((sample << 32) + c));
    chunks.push_back(at::randn({rows, 64, out}, at::make_generator<at::CPUGeneratorImpl>(seed),
                               at::TensorOptions().dtype(dtype)));
  }
  return at::cat(chunks, 1).narrow(1, 0, time);
}

// The documented key of counter-based noise (weight_lora.h): mix64(mix64(site_seed ^ mix64(sample)) ^ mix64(rank)).
std::uint64_t recipe_key(std::uint64_t task_seed, std::uint64_t sample, std::uint64_t forward,
                         const model::LinearSite& site, std::uint64_t rank) {
  const std::uint64_t site_key =
      static_cast<std::uint64_t>(site.layer) * 8 + static_cast<std::uint64_t>(site.projection) + 1;
  const std::uint64_t site_seed = meta::mix64(meta::mix64(task_seed ^ forward) ^ meta::mix64(site_key));
  return meta::mix64(meta::mix64(site_seed ^ meta::mix64(sample)) ^ meta::mix64(rank));
}

}  // namespace

TEST_CASE("weight adapter: output mean and standard deviation equal the dense formula", "[meta][weight]") {
  at::manual_seed(11);
  // time > 64: two noise chunks.
  const int64_t g = 3, samples = 2, o = 5, i = 7, r = 3, batch = 6, time = 70;
  const std::vector<std::uint64_t> seeds = {101, 202, 303};
  const model::LinearSite site{1, model::Projection::v};
  // Posteriors interleaved (2, 0, 1, 1, 0, 2) and in contiguous runs (0, 0, 1, 1, 2, 2: views of the batch).
  const std::vector<std::vector<int64_t>> layouts = {{5, 0, 3, 3, 1, 5}, {0, 1, 3, 2, 4, 5}};
  // The last two: counter-based noise (a GPU's), drawn on the CPU.
  struct Case {
    WeightScale kind;
    std::vector<int64_t> groups;
    bool counter;
  };
  const std::vector<Case> cases = {{WeightScale::linear, layouts[0], false},
                                   {WeightScale::softplus, layouts[0], false},
                                   {WeightScale::linear, layouts[1], false},
                                   {WeightScale::softplus, layouts[0], true},
                                   {WeightScale::linear, layouts[1], true}};
  for (const auto& [kind, groups, counter] : cases) {
    INFO("scale form " << (kind == WeightScale::linear ? "linear" : "softplus") << ", groups "
                       << at::tensor(groups, at::kLong) << (counter ? ", counter-based noise" : ""));
    const meta::WeightScaleForm form{kind, 1.5, 0.01};
    const meta::WeightGaussianFactors f{randn64({g, o, r}, 0.5), randn64({g, r, i}, 0.5), randn64({g, o, r}, 0.4),
                                        randn64({g, r, i}, 0.4)};
    meta::WeightLora adapter(form, seeds, samples);
    adapter.use_counter_noise(counter);
    adapter.set_site(site, f);
    const at::Tensor x = at::randn({batch, time, i}, at::kDouble);
    adapter.set_group_of_sequence(at::tensor(groups, at::kLong));
    const at::Tensor out = adapter.delta(x, site);
    REQUIRE(out.sizes() == at::IntArrayRef({batch, time, o}));
    CHECK(!adapter.delta(x, {0, model::Projection::q}).defined());

    double worst = 0;
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t k = groups[b], post = k / samples;
      // The sequence's rank among its group's sequences, and how many the group has.
      int64_t rank = 0, count = 0;
      for (int64_t c = 0; c < batch; ++c)
        if (groups[c] == k) (c < b ? ++rank : 0), ++count;
      const at::Tensor eps =  // [T, O]
          counter ? meta::counter_noise_tensor({recipe_key(seeds[post], k % samples, 1, site, rank)}, time, o,
                                               at::kCPU)[0]
                        .to(at::kDouble)
                  : recipe_noise(seeds[post], k % samples, 1, site, count, time, o, at::kDouble)[rank];
      const meta::WeightGaussianFactors fg{f.b_mu[post], f.a_mu[post], f.b_sigma[post], f.a_sigma[post]};
      const at::Tensor m = meta::dense_mean(fg, form), s = meta::dense_scale(fg, form);  // [O, I]
      const at::Tensor expected =
          at::matmul(x[b], m.t()) + at::sqrt(at::matmul(x[b].square(), s.square().t())) * eps;
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
    // An empty sequence passes through.
    adapter.set_group_of_sequence(at::tensor(groups, at::kLong));
    CHECK(adapter.delta(at::zeros({batch, 0, i}, at::kDouble), site).sizes() == at::IntArrayRef({batch, 0, o}));
  }
}

TEST_CASE("weight adapter: noise is a function of (task seed, sample, forward, site) and differs between them",
          "[meta][weight]") {
  const auto o = at::TensorOptions().dtype(at::kFloat);
  const model::LinearSite q{0, model::Projection::q}, v{0, model::Projection::v};
  const at::Tensor a = meta::WeightLora::group_noise(7, 0, 1, q, 2, 3, 4, o);
  CHECK(at::equal(a, meta::WeightLora::group_noise(7, 0, 1, q, 2, 3, 4, o)));
  CHECK(at::equal(a, recipe_noise(7, 0, 1, q, 2, 3, 4, at::kFloat)));
  for (const at::Tensor& other :
       {meta::WeightLora::group_noise(7, 0, 2, q, 2, 3, 4, o), meta::WeightLora::group_noise(7, 0, 1, v, 2, 3, 4, o),
        meta::WeightLora::group_noise(8, 0, 1, q, 2, 3, 4, o), meta::WeightLora::group_noise(7, 1, 1, q, 2, 3, 4, o)})
    CHECK(!at::equal(a, other));
  // Chunks: 150 positions are three draws, the recipe's; a shorter time is a prefix of a longer one; the chunks and
  // the rows differ from each other.
  const at::Tensor long_one = meta::WeightLora::group_noise(9, 1, 3, v, 3, 150, 4, o);
  CHECK(at::equal(long_one, recipe_noise(9, 1, 3, v, 3, 150, 4, at::kFloat)));
  CHECK(at::equal(long_one.narrow(1, 0, 70), meta::WeightLora::group_noise(9, 1, 3, v, 3, 70, 4, o)));
  CHECK(!at::equal(long_one.narrow(1, 0, 64), long_one.narrow(1, 64, 64)));
  CHECK(!at::equal(long_one[0], long_one[1]));

  // A forward is counted by set_group_of_sequence: two forwards of the same input differ; recomputing one
  // (gradient checkpointing calls delta again without a new set_group_of_sequence) repeats it exactly.
  meta::WeightLora adapter({WeightScale::softplus, 1.0, 1e-3}, {99}, 1);
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

TEST_CASE("weight family: a task's draw does not depend on the tasks sharing its forward, their order or padding",
          "[meta][weight][dist]") {
  // Task 1 of a 3-task meta-batch (generators seeded 5, 6, 7), sampled twice per task, in one right-padded batch of
  // 80 positions with the other tasks' sequences interleaved, against task 1 sampled alone from a generator seeded
  // 6, its sequences alone in a batch of 20 positions (what one rank of a data-parallel run does), and against the
  // meta-batch with its sequences in another order. Each of task 1's sequences gets the same output everywhere.
  at::manual_seed(4);
  const model::ModelConfig c = test::small_model_config(8, 12, 2, 2, 1, 10);
  model::LoraSettings lora;
  lora.rank = 2;
  lora.alpha = 4;
  lora.targets = {model::Projection::q, model::Projection::up};
  const auto sites = model::lora_sites(c, lora);
  for (const auto& [kind, counter] : std::vector<std::pair<WeightScale, bool>>{
           {WeightScale::linear, false}, {WeightScale::softplus, false}, {WeightScale::softplus, true}}) {
    INFO("scale form " << (kind == WeightScale::linear ? "linear" : "softplus")
                       << (counter ? ", counter-based noise (a GPU's)" : ""));
    const meta::WeightScaleForm form{kind, lora.scale(), 1e-4};
    const meta::WeightGaussian prior = meta::WeightGaussian::initial_prior(
        sites, c, lora.rank, form, 0.1, at::kCPU, at::make_generator<at::CPUGeneratorImpl>(3));
    // Three distinct posteriors in float64, and task 1's alone.
    std::vector<at::Tensor> three, one;
    for (const at::Tensor& t : prior.posteriors_from(3, false).tensors()) {
      three.push_back(t.detach().to(at::kDouble) + 0.1 * at::randn(t.sizes(), at::kDouble));
      one.push_back(three.back().narrow(0, 1, 1).clone());
    }
    const meta::WeightGaussian whole = prior.posteriors_from(3, false).with_tensors(three);
    const meta::WeightGaussian alone = prior.posteriors_from(1, false).with_tensors(one);
    const int64_t samples = 2;
    const auto all_draw = whole.sample(samples, meta::noise_from_seeds({5, 6, 7}));
    const auto shuffled_draw = whole.sample(samples, meta::noise_from_seeds({5, 6, 7}));
    const auto alone_draw = alone.sample(samples, meta::noise_from_seeds({6}));
    const auto other_seed = alone.sample(samples, meta::noise_from_seeds({7}));
    for (const auto* draw : {&all_draw, &shuffled_draw, &alone_draw, &other_seed}) (*draw)->use_counter_noise(counter);

    // Task 1's sequences: 2 examples x 2 samples (groups 2, 3), 20 positions; the batch adds tasks 0 and 2.
    const at::Tensor mine = at::randn({4, 20, 8}, at::kDouble);                       // groups 2, 3, 2, 3
    const at::Tensor others = at::randn({5, 80, 8}, at::kDouble);                     // groups 0, 1, 4, 5, 4
    at::Tensor batch = at::cat({others.narrow(0, 0, 2), at::cat({mine, at::randn({4, 60, 8}, at::kDouble)}, 1),
                                others.narrow(0, 2, 3)});                             // [9, 80, 8]
    const std::vector<int64_t> batch_groups = {0, 1, 2, 3, 2, 3, 4, 5, 4};
    const std::vector<int64_t> order = {8, 2, 0, 3, 6, 4, 1, 5, 7};  // another order of the same rows
    const at::Tensor order_t = at::tensor(order, at::kLong);
    std::vector<int64_t> shuffled_groups;
    for (int64_t r : order) shuffled_groups.push_back(batch_groups[r]);

    all_draw->set_group_of_sequence(at::tensor(batch_groups, at::kLong));
    shuffled_draw->set_group_of_sequence(at::tensor(shuffled_groups, at::kLong));
    alone_draw->set_group_of_sequence(at::tensor({0, 1, 0, 1}, at::kLong));
    other_seed->set_group_of_sequence(at::tensor({0, 1, 0, 1}, at::kLong));
    double worst = 0, other = 0;
    for (const auto& site : sites) {
      const at::Tensor reference = alone_draw->delta(mine, site);                         // [4, 20, O]
      const at::Tensor in_batch = all_draw->delta(batch, site).narrow(0, 2, 4).narrow(1, 0, 20);
      const at::Tensor moved = shuffled_draw->delta(batch.index_select(0, order_t), site);
      // Row r of the batch is row position(r) of the shuffled batch.
      at::Tensor unshuffled = at::empty_like(moved).index_copy_(0, order_t, moved);
      worst = std::max({worst, max_abs_diff(in_batch, reference),
                        max_abs_diff(unshuffled.narrow(0, 2, 4).narrow(1, 0, 20), reference)});
      other = std::max(other, max_abs_diff(other_seed->delta(mine, site), reference));
    }
    INFO("largest difference " << worst << "; to the same posterior with another task's seed " << other);
    CHECK(worst < 1e-12);
    CHECK(other > 1e-3);  // the noise matters: the comparison is not vacuous
    // One generator per task.
    CHECK_THROWS(whole.sample(samples, meta::noise_from_seeds({5, 6})));
  }
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
    CHECK(floor.hits.item<int64_t>() == 0);
    CHECK(floor.entries == 3 * 2 * 2 * (8 * 8 + 8 * 12));
    // init_scale at or below the floor is a configuration error.
    CHECK_THROWS_AS(meta::WeightGaussian::initial_prior(sites, c, lora.rank, {kind, 2.0, 0.5}, 0.5, at::kCPU,
                                                        at::make_generator<at::CPUGeneratorImpl>(3)),
                    InputError);
  }
}


TEST_CASE("weight adapter on a GPU: noise drawn inside the fused kernels, the CPU's counter-based numbers",
          "[meta][weight][cuda]") {
  if (!at::hasCUDA()) {
    WARN("skipped: no CUDA device");
    return;
  }
  at::manual_seed(12);
  const int64_t g = 3, samples = 2, o = 1031, i = 33, r = 4, batch = 6, time = 70;
  const model::LinearSite site{0, model::Projection::q};
  const meta::WeightScaleForm form{WeightScale::softplus, 1.5, 0.01};
  std::vector<at::Tensor> cpu_factors, gpu_factors;
  for (const auto& shape : std::vector<std::vector<int64_t>>{{g, o, r}, {g, r, i}, {g, o, r}, {g, r, i}}) {
    cpu_factors.push_back((at::randn(shape) * 0.4).requires_grad_(true));
    gpu_factors.push_back(cpu_factors.back().detach().cuda().requires_grad_(true));
  }
  auto adapter = [&](const std::vector<at::Tensor>& f, bool counter_on_cpu) {
    auto a = std::make_unique<meta::WeightLora>(form, std::vector<std::uint64_t>{101, 202, 303}, samples);
    a->use_counter_noise(counter_on_cpu);
    a->set_site(site, {f[0], f[1], f[2], f[3]});
    return a;
  };
  const auto on_cpu = adapter(cpu_factors, true), on_gpu = adapter(gpu_factors, false);
  const at::Tensor groups = at::tensor({5, 0, 3, 3, 1, 5}, at::kLong);
  on_cpu->set_group_of_sequence(groups);
  on_gpu->set_group_of_sequence(groups);
  const at::Tensor x = at::randn({batch, time, i});
  const at::Tensor y_cpu = on_cpu->delta(x, site), y_gpu = on_gpu->delta(x.cuda(), site);
  const double scale = y_cpu.abs().max().item<double>();
  const double diff = (y_gpu.cpu() - y_cpu).abs().max().item<double>();
  INFO("output: max abs difference " << diff << " (values up to " << scale << ")");
  CHECK(diff < 1e-4 * scale);
  // A recomputed layer draws the same noise.
  CHECK((on_gpu->delta(x.cuda(), site) - y_gpu).abs().max().item<double>() < 1e-6 * scale);
  const at::Tensor w = at::randn(y_cpu.sizes());
  const auto g_cpu = torch::autograd::grad({(y_cpu * w).sum()}, cpu_factors);
  const auto g_gpu = torch::autograd::grad({(y_gpu * w.cuda()).sum()}, gpu_factors);
  for (std::size_t k = 0; k < g_cpu.size(); ++k) {
    const double gs = g_cpu[k].abs().max().item<double>();
    const double gd = (g_gpu[k].cpu() - g_cpu[k]).abs().max().item<double>();
    INFO("factor " << k << ": max abs difference " << gd << " (gradients up to " << gs << ")");
    CHECK(gd < 1e-3 * gs);
  }
  on_gpu->set_group_of_sequence(groups);  // the next forward draws new noise
  CHECK((on_gpu->delta(x.cuda(), site) - y_gpu).abs().max().item<double>() > 1e-2 * scale);
}
