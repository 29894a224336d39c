#include "meta/run_setup.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "data/task_set.h"
#include "model/weight_names.h"
#include "util/error.h"
#include "util/cuda_kernels.h"
#include "util/float32_products.h"
#include "util/log.h"
#include "util/rng.h"

namespace abmll::meta {

model::ForwardOptions recompute_policy(const ModelConfig& config) {
  model::ForwardOptions options;
  options.checkpoint_layers = config.gradient_checkpointing;
  options.checkpointed_layers = config.checkpointed_layers;
  return options;
}

bool uses_posterior(Method method) { return method == Method::abmll || method == Method::abmll_icl; }

bool uses_point_lora(Method method) {
  return method == Method::lora || method == Method::fomaml || method == Method::reptile;
}

model::LoraSettings lora_settings(const LoraConfig& config, const model::ModelConfig& model) {
  model::LoraSettings s;
  s.rank = config.rank;
  s.alpha = config.alpha;
  s.rslora = config.rslora;
  s.dropout = config.dropout;
  s.targets = model::fit_lora_targets(config.targets, model, "lora.targets");
  return s;
}

std::optional<at::ScalarType> base_dtype(ModelDType dtype, const std::string& device) {
  switch (dtype) {
    case ModelDType::float32: return at::kFloat;
    case ModelDType::bfloat16: return at::kBFloat16;
    case ModelDType::float16: return at::kHalf;
    case ModelDType::auto_: return device == "cpu" ? at::kFloat : at::kBFloat16;
  }
  return std::nullopt;
}

data::ReaderOptions reader_options(const DataConfig& config) {
  data::ReaderOptions options;
  options.skip_malformed = config.skip_malformed;
  options.crossfit_seed = config.crossfit_seed;
  return options;
}

namespace {

model::Decoder load_decoder(const ExperimentConfig& config, const std::string& device) {
  const std::filesystem::path model_dir = config.model.path;
  const model::WeightOptions options{base_dtype(config.model.dtype, device), device};
  if (!config.model.random_weights) {
    log::info("loading model {}", config.model.path);
    return model::Decoder::load(model_dir, options);
  }
  log::warn("model.random_weights: random base weights of the shape of {} (for benchmarks; results mean nothing)",
            (model_dir / "config.json").string());
  model::ModelConfig shape = model::load_model_config(model_dir);
  const std::uint64_t seed = Rng::stream(static_cast<std::uint64_t>(config.run.seed), "base-weights").next_u64();
  model::DecoderWeights weights = model::random_decoder_weights(shape, options, seed);
  return {std::move(shape), std::move(weights)};
}

}  // namespace

namespace {

// The LoRA's dropout where the method has none to apply is refused, not ignored.
void check_dropout(const ExperimentConfig& config) {
  const std::string method(to_string(config.method));
  if (config.lora.dropout > 0 && uses_posterior(config.method))
    throw InputError(fmt::format("lora.dropout: {} with method {}: dropout applies to the LoRA of lora, reptile and "
                                 "fomaml; ABMLL's adapters are posterior samples (set it to 0)",
                                 config.lora.dropout, method));
  if (!config.eval.mc_dropout) return;
  if (!uses_point_lora(config.method))
    throw InputError(fmt::format("eval.mc_dropout: method {} has no LoRA dropout to sample (lora, reptile and fomaml "
                                 "have)",
                                 method));
  if (config.lora.dropout <= 0) throw InputError("eval.mc_dropout: needs lora.dropout above 0");
  if (config.eval.samples < 1) throw InputError("eval.mc_dropout: needs eval.samples of 1 or more forwards to average");
}

}  // namespace

LoadedExperiment load_experiment(const ExperimentConfig& config, const std::string& device) {
  check_dropout(config);
  const std::filesystem::path model_dir = config.model.path;
  if (device != "cpu") allow_tf32_products(config.model.tf32);
  use_cuda_kernels(config.model.cuda_kernels);
  model::Decoder decoder = load_decoder(config, device);
  model::LoraSettings lora = lora_settings(config.lora, decoder.config());
  LoadedExperiment e{std::move(decoder), text::Tokenizer::from_file(model_dir / "tokenizer.json"),
                     data::load_task_set(config.data, reader_options(config.data)), std::move(lora)};
  log::info("{} training tasks, {} held-out tasks", e.tasks.train.size(), e.tasks.test.size());
  return e;
}

namespace {

// The run's "init" random stream: every method's starting adapter draws from it, so they start alike.
at::Generator init_generator(const ExperimentConfig& config) {
  return at::make_generator<at::CPUGeneratorImpl>(
      Rng::stream(static_cast<std::uint64_t>(config.run.seed), "init").next_u64());
}

}  // namespace

LoraPosterior initial_theta(const ExperimentConfig& config, const LoadedExperiment& experiment) {
  const auto& decoder = experiment.decoder;
  const auto sites = model::lora_sites(decoder.config(), experiment.lora);
  auto init = init_generator(config);
  if (config.posterior.family == PosteriorFamily::weight) {
    const WeightScaleForm form{config.posterior.weight_scale, experiment.lora.scale(), config.posterior.scale_floor};
    return LoraPosterior(WeightGaussian::initial_prior(sites, decoder.config(), experiment.lora.rank, form,
                                                       config.posterior.init_scale, decoder.device(), init),
                         experiment.lora);
  }
  return LoraPosterior(FactorGaussian::initial_prior(sites, decoder.config(), experiment.lora.rank,
                                                     config.posterior.init_scale, config.posterior.scale_floor,
                                                     decoder.device(), init),
                       experiment.lora);
}

PointLora initial_point_lora(const ExperimentConfig& config, const LoadedExperiment& experiment) {
  const auto& decoder = experiment.decoder;
  return PointLora::initial(decoder.config(), experiment.lora, decoder.device(), init_generator(config));
}

std::string checkpoint_method(const Checkpoint& checkpoint) {
  const auto method = checkpoint.metadata.find("method");
  return method == checkpoint.metadata.end() ? std::string() : method->second;
}

void load_parameters(const Checkpoint& checkpoint, Method method, const std::vector<std::string>& names,
                     const std::vector<at::Tensor>& params) {
  const std::string wanted(to_string(method == Method::abmll_icl ? Method::abmll : method));
  const std::string written = checkpoint_method(checkpoint);
  if (written != wanted)
    throw InputError(fmt::format("{}: a checkpoint of method {}, not {} (evaluate or adapt it with `method: {}`)",
                                 checkpoint.source.string(), written.empty() ? "?" : written, wanted,
                                 written.empty() ? "?" : written));
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < names.size(); ++i) {
    const at::Tensor& t = checkpoint.tensor("theta." + names[i]);
    if (!t.sizes().equals(params[i].sizes()))
      throw InputError(fmt::format("{}: theta.{} has shape [{}], the config makes [{}] (a different lora.rank or "
                                   "lora.targets?)",
                                   checkpoint.source.string(), names[i], fmt::join(t.sizes(), ", "),
                                   fmt::join(params[i].sizes(), ", ")));
    params[i].copy_(t);
  }
}

void record_family(const LoraPosterior& theta, std::map<std::string, std::string>& metadata) {
  metadata["posterior_family"] = std::string(to_string(theta.family()));
  if (const WeightGaussian* w = theta.weight()) metadata["weight_scale"] = std::string(to_string(w->form().kind));
}

void load_theta(const Checkpoint& checkpoint, LoraPosterior& theta) {
  // The family and scale form decide what the tensors mean; shapes alone would not tell a linear from a softplus
  // scale. Checkpoints from before the weight family carry no family: they are factor checkpoints.
  if (checkpoint_method(checkpoint) == "abmll") {
    std::map<std::string, std::string> expected;
    record_family(theta, expected);
    std::map<std::string, std::string> found{{"posterior_family", "factor"}};
    for (const char* key : {"posterior_family", "weight_scale"})
      if (const auto it = checkpoint.metadata.find(key); it != checkpoint.metadata.end()) found[key] = it->second;
    auto describe = [](const std::map<std::string, std::string>& m) {
      const auto scale = m.find("weight_scale");
      return fmt::format("posterior.family: {}{}", m.at("posterior_family"),
                         scale == m.end() ? "" : ", posterior.weight_scale: " + scale->second);
    };
    if (found != expected)
      throw InputError(fmt::format("{}: theta was meta-trained with {}, but the config says {}; set the config's "
                                   "posterior keys to the checkpoint's",
                                   checkpoint.source.string(), describe(found), describe(expected)));
  }
  load_parameters(checkpoint, Method::abmll, parameter_names(theta), theta.tensors());
}

std::vector<std::string> parameter_names(const LoraPosterior& posterior) { return posterior.tensor_names(); }

}  // namespace abmll::meta
