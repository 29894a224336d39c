#include "meta/adapted_task.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <set>

#include "io/safetensors_file.h"
#include "io/safetensors_writer.h"
#include "model/peft_adapter.h"
#include "util/error.h"
#include "util/log.h"

namespace abmll::meta {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPointFamily = "none (a LoRA point estimate)";

std::string scale_floor_text(const ExperimentConfig& config) { return fmt::format("{}", config.posterior.scale_floor); }
std::string alpha_text(const ExperimentConfig& config) { return fmt::format("{}", config.lora.alpha); }
std::string rslora_text(const ExperimentConfig& config) { return config.lora.rslora ? "true" : "false"; }

// The metadata entry `key`, or "" when the file has none.
std::string entry(const std::map<std::string, std::string>& metadata, const std::string& key) {
  const auto it = metadata.find(key);
  return it == metadata.end() ? std::string() : it->second;
}

}  // namespace

void save_adapted_task(const fs::path& file, const AdaptedTask& adapted, const ExperimentConfig& config,
                       const fs::path& prior) {
  std::vector<std::string> names;
  std::vector<at::Tensor> params;
  std::string family = kPointFamily;
  if (adapted.posterior) {
    names = adapted.posterior->tensor_names();
    params = adapted.posterior->tensors();
    family = adapted.posterior->description();
  } else {
    names = adapted.lora->names();
    params = adapted.lora->tensors();
  }
  io::NamedTensors tensors;
  for (std::size_t i = 0; i < names.size(); ++i) tensors.emplace_back("phi." + names[i], params[i].detach()[0]);
  io::write_safetensors(file, tensors,
                        {{"task", adapted.task},
                         {"method", adapted.method},
                         {"inner_steps", std::to_string(config.inner.eval_steps)},
                         {"scale_floor", scale_floor_text(config)},
                         {"lora_alpha", alpha_text(config)},
                         {"lora_rslora", rslora_text(config)},
                         {"posterior_family", family},
                         {"model", config.model.path},
                         {"prior", prior.string()}});
}

AdaptedFolder write_adapted_folder(const fs::path& out, const AdaptedTask& adapted, const ExperimentConfig& config,
                                   const LoadedExperiment& experiment, const fs::path& prior) {
  AdaptedFolder folder{out / "phi.safetensors", out / "adapter"};
  save_adapted_task(folder.phi, adapted, config, prior);
  const at::NoGradGuard no_grad;
  model::BatchedLora adapter(experiment.lora, 1);
  install_factors(adapter, adapted.posterior ? adapted.posterior->means() : adapted.lora->factors(1));
  model::write_peft_adapter(folder.adapter, adapter, experiment.decoder.config(), 0, config.model.path);
  return folder;
}

AdaptedTask load_adapted_task(const fs::path& path, const ExperimentConfig& config,
                              const LoadedExperiment& experiment) {
  std::error_code ec;
  const fs::path file = fs::is_directory(path, ec) ? path / "phi.safetensors" : path;
  if (!fs::is_regular_file(file, ec))
    throw InputError(fmt::format("{}: no such file (the phi.safetensors `abmll adapt` writes, or its folder)",
                                 file.string()));
  const io::SafetensorsFile phi = io::SafetensorsFile::open(file);
  const auto& metadata = phi.metadata();
  auto fail = [&](const std::string& problem) { return InputError(fmt::format("{}: {}", file.string(), problem)); };

  AdaptedTask adapted;
  adapted.source = file;
  adapted.task = entry(metadata, "task");
  adapted.method = entry(metadata, "method");
  if (adapted.task.empty() || adapted.method.empty())
    throw fail("no \"task\" or \"method\" in its metadata: not a file `abmll adapt` wrote");
  const std::string method(to_string(config.method));
  const bool bayesian = uses_posterior(config.method);
  const bool same_method = bayesian ? (adapted.method == "abmll" || adapted.method == "abmll_icl")
                                    : adapted.method == method;
  if (!same_method)
    throw fail(fmt::format("adapted by method {}, but the config's method is {} (predict with `method: {}`)",
                           adapted.method, method, adapted.method));

  // What the tensors alone cannot tell: how they are read (family, scale form) and scaled (floor, LoRA scaling).
  std::vector<std::string> names;
  std::vector<at::Tensor> like;  // the config's tensors, one group
  std::string family = kPointFamily;
  if (bayesian) {
    adapted.posterior = initial_theta(config, experiment).posteriors_from(1, false);
    names = adapted.posterior->tensor_names();
    like = adapted.posterior->tensors();
    family = adapted.posterior->description();
  } else {
    adapted.lora = initial_point_lora(config, experiment).copies(1, false);
    names = adapted.lora->names();
    like = adapted.lora->tensors();
  }
  const std::vector<std::tuple<std::string, std::string, std::string>> settings = {
      {"posterior_family", family, "posterior.family / posterior.weight_scale"},
      {"scale_floor", bayesian ? scale_floor_text(config) : "", "posterior.scale_floor"},
      {"lora_alpha", alpha_text(config), "lora.alpha"},
      {"lora_rslora", rslora_text(config), "lora.rslora"}};
  for (const auto& [key, expected, config_key] : settings) {
    const std::string found = entry(metadata, key);
    if (!found.empty() && !expected.empty() && found != expected)
      throw fail(fmt::format("adapted with {} {}, but the config's {} makes it {}; set the config's key to the file's",
                             key, found, config_key, expected));
  }
  // The same folder may be named another way (relative, through a link); only a different one is worth a warning.
  if (const std::string model = entry(metadata, "model");
      !model.empty() && model != config.model.path && !fs::equivalent(model, config.model.path, ec))
    log::warn("{}: adapted on the model at {}, predicting with {}", file.string(), model, config.model.path);

  std::set<std::string> expected_names;
  for (const auto& name : names) expected_names.insert("phi." + name);
  for (const auto& name : phi.names())
    if (!expected_names.count(name))
      throw fail(fmt::format("tensor {} is not one of the config's adapter (a different lora.targets or "
                             "posterior.family?)",
                             name));
  std::vector<at::Tensor> loaded;
  const at::NoGradGuard no_grad;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string name = "phi." + names[i];
    if (!phi.has(name))
      throw fail(fmt::format("no tensor {} (a different lora.targets, lora.rank or posterior.family?)", name));
    const at::Tensor t = phi.tensor(name);
    const auto shape = like[i].sizes().slice(1);
    if (!t.sizes().equals(shape))
      throw fail(fmt::format("{} has shape [{}], the config makes [{}] (a different lora.rank or model?)", name,
                             fmt::join(t.sizes(), ", "), fmt::join(shape, ", ")));
    if (!at::isFloatingType(t.scalar_type()))
      throw fail(fmt::format("{} holds {}, not floating-point numbers", name, c10::toString(t.scalar_type())));
    if (!at::isfinite(t).all().item<bool>()) throw fail(fmt::format("{} holds values that are not finite", name));
    loaded.push_back(t.to(like[i].device(), like[i].scalar_type(), false, /*copy=*/true).unsqueeze(0));
  }
  if (adapted.posterior)
    adapted.posterior = adapted.posterior->with_tensors(loaded);
  else
    adapted.lora = adapted.lora->with_tensors(loaded);
  return adapted;
}

}  // namespace abmll::meta
