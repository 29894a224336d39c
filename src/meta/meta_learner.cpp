#include "meta/meta_learner.h"

#include <fmt/format.h>

#include "meta/factor_gaussian.h"
#include "meta/point_methods.h"
#include "util/error.h"

namespace abmll::meta {
namespace {

// ABMLL: theta is a prior over LoRA adapters (the `factor` family).
class BayesianLearner final : public MetaLearner {
 public:
  BayesianLearner(const ExperimentConfig& config, const LoadedExperiment& experiment)
      : theta_(initial_theta(config, experiment)),
        inner_{config.inner.steps,   config.inner.lr,      config.inner.optimizer, config.inner.first_step_nll_only,
               config.inner.samples, config.outer.beta},
        outer_{config.outer.beta,
               config.outer.gamma,
               static_cast<double>(experiment.tasks.train.size()),
               config.outer.second_order,
               config.outer.outer_includes_support,
               config.posterior.hyperprior_mean_std,
               config.posterior.hyperprior_a0,
               config.posterior.hyperprior_b0} {}

  std::vector<at::Tensor> parameters() const override { return theta_.tensors(); }
  std::vector<std::string> parameter_names() const override { return meta::parameter_names(theta_); }
  bool second_order() const override { return outer_.second_order; }
  void record(std::map<std::string, std::string>& metadata) const override { record_family(theta_, metadata); }
  void load(const Checkpoint& checkpoint) override { load_theta(checkpoint, theta_); }
  AdaptationStart adaptation_start() const override { return {&theta_, nullptr}; }

  MetaBatchGradient meta_gradient(const NllFunction& nll, int64_t tasks, const TaskNoise& noise) const override {
    MetaGradient g = abmll_meta_gradient(theta_, tasks, nll, inner_, outer_, noise);
    MetaBatchGradient out{std::move(g.grads), g.outer_loss, g.query_nll, std::move(g.support_nll),
                          {{"kl", g.kl}, {"hyperprior", g.hyperprior}}};
    if (theta_.family() == PosteriorFamily::weight) {
      // The scale floor of ABMLL.md 2(b): entries of S at c in the step's KLs (inner and outer), of how many.
      out.counts["scale_floor_hits"] = g.floor_hits;
      out.counts["scale_floor_entries"] = g.floor_entries;
    }
    return out;
  }

  std::map<model::LinearSite, model::LoraFactors> exported_factors() const override { return theta_.means(); }

 private:
  LoraPosterior theta_;
  InnerLoop inner_;
  OuterObjective outer_;
};

// lora, fomaml, reptile: theta is one LoRA.
class PointLearner final : public MetaLearner {
 public:
  PointLearner(const ExperimentConfig& config, const LoadedExperiment& experiment)
      : method_(config.method),
        theta_(initial_point_lora(config, experiment)),
        inner_{config.inner.steps, config.inner.lr, config.inner.optimizer} {}

  std::vector<at::Tensor> parameters() const override { return theta_.tensors(); }
  std::vector<std::string> parameter_names() const override { return theta_.names(); }
  bool second_order() const override { return false; }
  void record(std::map<std::string, std::string>&) const override {}
  void load(const Checkpoint& checkpoint) override {
    load_parameters(checkpoint, method_, theta_.names(), theta_.tensors());
  }
  AdaptationStart adaptation_start() const override { return {nullptr, &theta_}; }

  MetaBatchGradient meta_gradient(const NllFunction& nll, int64_t tasks, const TaskNoise& noise) const override {
    // The step's dropout masks (lora.dropout) from the first task's noise stream: a resumed run draws them again.
    const std::uint64_t dropout_seed = noise.empty() ? 0 : draw_seed(noise.front());
    PointGradient g = point_meta_gradient(method_, theta_, tasks, nll, inner_, dropout_seed);
    return {std::move(g.grads), g.outer_loss, g.query_nll, std::move(g.support_nll)};
  }

  std::map<model::LinearSite, model::LoraFactors> exported_factors() const override { return theta_.factors(1); }

 private:
  Method method_;
  PointLora theta_;
  InnerDescent inner_;
};

}  // namespace

std::unique_ptr<MetaLearner> make_meta_learner(const ExperimentConfig& config, const LoadedExperiment& experiment) {
  switch (config.method) {
    case Method::abmll:
    case Method::abmll_icl:
      return std::make_unique<BayesianLearner>(config, experiment);
    case Method::lora:
    case Method::fomaml:
    case Method::reptile:
      if (config.outer.second_order)
        throw InputError(fmt::format("outer.second_order: method {} is first-order (second-order meta-gradients "
                                     "are available for abmll)",
                                     to_string(config.method)));
      return std::make_unique<PointLearner>(config, experiment);
    case Method::pretrained:
    case Method::icl:
      break;
  }
  throw InputError(fmt::format("method {} learns nothing across tasks: there is nothing to meta-train (evaluate it "
                               "directly with `abmll evaluate`)",
                               to_string(config.method)));
}

}  // namespace abmll::meta
