// The table of every config key (see config_schema.h). To add a key: a field in experiment_config.h and one
// `add(...)` line below; parsing, overrides, help, echo and validation follow from it.
#include "config/config_schema.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <type_traits>

#include "model/weight_names.h"
#include "text/utf8.h"
#include "util/error.h"
#include "util/text_distance.h"

namespace abmll {
namespace {

// ---- Parsing one YAML value into a typed field. Errors state the problem only; the loader adds the place. --------

std::string node_kind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null: return "nothing (null)";
    case YAML::NodeType::Scalar: return fmt::format("'{}'", node.Scalar());
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    default: return "an undefined value";
  }
}

// The scalar's text. YAML is UTF-8, and resolved configs and reports are written as text: other bytes are refused.
const std::string& scalar(const YAML::Node& node, std::string_view expected) {
  if (!node.IsScalar()) throw InputError(fmt::format("expected {}, got {}", expected, node_kind(node)));
  const std::string& text = node.Scalar();
  if (const std::size_t bad = text::utf8::find_invalid(text); bad != std::string::npos)
    throw InputError(fmt::format("expected {}, got text that is not valid UTF-8 (at byte {})", expected, bad));
  return text;
}

template <class T>
struct Parse;

template <>
struct Parse<std::int64_t> {
  static constexpr const char* type = "int";
  static std::int64_t from(const YAML::Node& node) {
    const std::string& text = scalar(node, "an integer");
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0') throw InputError(fmt::format("expected an integer, got '{}'", text));
    if (errno == ERANGE) throw InputError(fmt::format("integer '{}' is out of range", text));
    return v;
  }
};

template <>
struct Parse<double> {
  static constexpr const char* type = "float";
  static double from(const YAML::Node& node) {
    const std::string& text = scalar(node, "a number");
    errno = 0;
    char* end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0') throw InputError(fmt::format("expected a number, got '{}'", text));
    if (errno == ERANGE || !std::isfinite(v)) throw InputError(fmt::format("number '{}' is not finite", text));
    return v;
  }
};

template <>
struct Parse<bool> {
  static constexpr const char* type = "bool";
  static bool from(const YAML::Node& node) {
    const std::string& text = scalar(node, "true or false");
    if (text == "true" || text == "True") return true;
    if (text == "false" || text == "False") return false;
    throw InputError(fmt::format("expected true or false, got '{}'", text));
  }
};

template <>
struct Parse<std::string> {
  static constexpr const char* type = "string";
  static std::string from(const YAML::Node& node) { return scalar(node, "a string"); }
};

template <>
struct Parse<std::vector<std::string>> {
  static constexpr const char* type = "list of strings";
  static std::vector<std::string> from(const YAML::Node& node) {
    if (!node.IsSequence()) throw InputError(fmt::format("expected a list, got {}", node_kind(node)));
    std::vector<std::string> out;
    for (const auto& item : node) out.push_back(scalar(item, "a string in the list"));
    return out;
  }
};

template <class E>
  requires std::is_enum_v<E>
struct Parse<E> {
  static std::vector<std::string> names() {
    std::vector<std::string> out;
    for (const auto& [value, name] : enum_names<E>()) out.emplace_back(name);
    return out;
  }
  static inline const std::string type = fmt::format("one of {}", fmt::join(names(), "|"));
  static E from(const YAML::Node& node) {
    const std::string& text = scalar(node, type);
    for (const auto& [value, name] : enum_names<E>())
      if (name == text) return value;
    std::string hint = closest_match(text, names());
    throw InputError(fmt::format("expected {}, got '{}'{}", type, text,
                                 hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
  }
};

template <class T>
nlohmann::json to_json(const T& value) {
  if constexpr (std::is_enum_v<T>) {
    return std::string(to_string(value));
  } else {
    return value;
  }
}

// ---- Validations: each returns the problem, or "" when the value is fine. -------------------------------------------

template <class T>
using Check = std::function<std::string(const T&)>;

template <class T>
Check<T> at_least(T lo) {
  return [lo](const T& v) { return v >= lo ? "" : fmt::format("must be at least {}, got {}", lo, v); };
}
Check<double> positive() {
  return [](const double& v) { return v > 0 ? "" : fmt::format("must be positive, got {}", v); };
}
Check<double> in_range_open_top(double lo, double hi) {
  return [lo, hi](const double& v) {
    return v >= lo && v < hi ? "" : fmt::format("must be in [{}, {}), got {}", lo, hi, v);
  };
}
Check<std::int64_t> between(std::int64_t lo, std::int64_t hi) {
  return [lo, hi](const std::int64_t& v) {
    return v >= lo && v <= hi ? "" : fmt::format("must be between {} and {}, got {}", lo, hi, v);
  };
}
Check<std::string> device_name() {
  return [](const std::string& v) {
    static const std::regex pattern("auto|cpu|cuda(:[0-9]+)?");
    return std::regex_match(v, pattern) ? "" : fmt::format("must be auto, cpu, cuda or cuda:N, got '{}'", v);
  };
}
Check<std::vector<std::string>> lora_modules() {
  return [](const std::vector<std::string>& modules) -> std::string {
    // Every projection's name: the seven of most decoders and Phi-3's fused two (which of them a model has is
    // checked when it is loaded, model::fit_lora_targets).
    static const std::vector<std::string> known = [] {
      std::vector<std::string> names;
      for (model::Projection p : model::kAllProjections)  // ("out_proj" is two architectures')
        if (std::find(names.begin(), names.end(), model::projection_name(p)) == names.end())
          names.push_back(model::projection_name(p));
      return names;
    }();
    if (modules.empty()) return "must name at least one module";
    if (modules.size() == 1 && modules[0] == "all-linear") return "";  // PEFT's shorthand for all of them
    for (const auto& m : modules) {
      if (std::find(known.begin(), known.end(), m) != known.end()) continue;
      std::string hint = closest_match(m, known);
      return fmt::format("unknown module '{}' (known: {}, or all-linear alone){}", m, fmt::join(known, ", "),
                         hint.empty() ? "" : fmt::format("; did you mean '{}'?", hint));
    }
    return "";
  };
}
Check<std::string> prompt_template() {
  return [](const std::string& v) {
    return v.empty() || v.find("{input}") != std::string::npos
               ? ""
               : fmt::format("must contain the placeholder {{input}}, got '{}'", v);
  };
}

// ---- The table --------------------------------------------------------------------------------------------------

// `access` is a generic lambda returning a reference to the field, for a const or non-const config.
template <class T, class Access>
void add(std::vector<ConfigKey>& keys, const char* path, Access access, std::optional<T> default_value,
         std::string help, Check<T> check = {}) {
  ConfigKey key;
  key.path = path;
  key.type = Parse<T>::type;
  key.help = std::move(help);
  key.required = !default_value.has_value();
  key.is_text = std::is_same_v<T, std::string>;
  if (default_value) key.default_text = to_json(*default_value).dump();
  key.assign = [access, check](ExperimentConfig& config, const YAML::Node& node) {
    T value = Parse<T>::from(node);
    if (check) {
      std::string problem = check(value);
      if (!problem.empty()) throw InputError(problem);
    }
    access(config) = std::move(value);
  };
  key.value = [access](const ExperimentConfig& config) { return to_json(access(config)); };
  key.reset = [access, default_value](ExperimentConfig& config) { access(config) = default_value.value_or(T{}); };
  keys.push_back(std::move(key));
}

// KEY(outer.lr) expands to the key's path and its accessor, so each is written once.
#define KEY(member) #member, [](auto& c) -> auto& { return c.member; }

std::vector<ConfigKey> build_keys() {
  using S = std::string;
  using I = std::int64_t;
  using Strings = std::vector<std::string>;
  std::vector<ConfigKey> k;

  add<Method>(k, KEY(method), Method::abmll, "Method to train and evaluate.");

  add<I>(k, KEY(run.seed), 42, "Seed of every random stream (tasks, episodes, noise).", at_least<I>(0));
  add<S>(k, KEY(run.device), S("auto"), "Device: auto (GPU when present), cpu, cuda or cuda:N.", device_name());
  add<I>(k, KEY(run.log_every), 10, "Outer steps between progress lines in plain (non-terminal) logs.", at_least<I>(1));
  add<S>(k, KEY(run.benchmark), S(""),
         "Benchmark label of this run in `abmll report` tables (empty: the data partition's or folder's name).");
  add<I>(k, KEY(run.checkpoint_every), 100, "Outer steps between checkpoints (0: only at the end).", at_least<I>(0));
  add<double>(k, KEY(run.dist_timeout_s), 300.0,
              "Distributed runs: seconds to wait for the other ranks at rendezvous and at each collective before "
              "failing with the missing rank named.",
              positive());

  add<S>(k, KEY(model.path), std::nullopt,
         "Hugging Face model folder (config.json, *.safetensors, tokenizer.json).");
  add<ModelDType>(k, KEY(model.dtype), ModelDType::auto_,
                  "Dtype of the frozen base weights (auto: float32 on CPU, bfloat16 on GPU).");
  add<bool>(k, KEY(model.gradient_checkpointing), false, "Recompute each layer's activations in backward.");
  add<I>(k, KEY(model.checkpointed_layers), -1,
         "With gradient_checkpointing, recompute only the first N layers, keeping the others' activations (-1: all).",
         at_least<I>(-1));
  add<bool>(k, KEY(model.recompute_on_oom), true,
            "meta-train: a step that runs out of memory is retried with half as many layers keeping their "
            "activations (down to none) instead of ending the run; the results are the same, the new policy is "
            "logged and kept for the rest of the run.");
  add<bool>(k, KEY(model.random_weights), false,
            "Random base weights of config.json's shape instead of the checkpoint's (benchmarks only: the folder "
            "then needs only config.json and tokenizer.json).");
  add<bool>(k, KEY(model.tf32), true,
            "On a GPU, run float32 matrix products (the adapters' products, the weight family's variance) on TF32 "
            "tensor cores; the weight family's KL keeps full float32. No effect on the CPU.");
  add<bool>(k, KEY(model.cuda_kernels), true,
            "On a GPU, run abmll's own CUDA kernels (SwiGLU, RoPE, the weight family's KL, noisy output, "
            "counter-based noise and squared input) where they apply; false: ATen's ops throughout (their "
            "references). No effect on the CPU.");
  add<I>(k, KEY(model.max_length), 512, "Tokens per sequence; longer prompts are cut from the left.",
         between(8, 1 << 20));

  add<I>(k, KEY(lora.rank), 16, "LoRA rank r.", between(1, 4096));
  add<double>(k, KEY(lora.alpha), 32.0, "LoRA alpha; the update is scaled by alpha / r.", positive());
  add<bool>(k, KEY(lora.rslora), false, "Scale by alpha / sqrt(r) instead (rsLoRA).");
  add<double>(k, KEY(lora.dropout), 0.0,
              "Dropout on the LoRA input (PEFT's lora_dropout) while lora, reptile and fomaml train and adapt; "
              "abmll refuses it (its adapters are posterior samples).",
              in_range_open_top(0.0, 1.0));
  add<Strings>(k, KEY(lora.targets), Strings{"q_proj", "v_proj"},
               "Adapted modules (PEFT's names), or all-linear: every projection of the model's layers (of a mixture "
               "of experts, its attention's).",
               lora_modules());

  add<PosteriorFamily>(k, KEY(posterior.family), PosteriorFamily::factor,
                       "Variational family: factor (Gaussian over LoRA factors) or weight (over the weight update).");
  add<WeightScale>(k, KEY(posterior.weight_scale), WeightScale::linear,
                   "Scale of the weight family: linear (s B A + c, the paper's) or softplus.");
  add<double>(k, KEY(posterior.scale_floor), 2.0611536224385579e-09,
              "Floor c added to every scale (e^-20, the paper's v1).", positive());
  add<double>(k, KEY(posterior.init_scale), 1e-3, "Initial scale sigma of the prior theta.", positive());
  add<double>(k, KEY(posterior.hyperprior_a0), 1.0, "Gamma(a0, b0) hyperprior on precisions: a0.", positive());
  add<double>(k, KEY(posterior.hyperprior_b0), 0.01, "Gamma(a0, b0) hyperprior on precisions: b0.", positive());
  add<double>(k, KEY(posterior.hyperprior_mean_std), 1.0, "Std of the N(0, std^2) hyperprior on means.",
              positive());

  add<DataFormat>(k, KEY(data.format), DataFormat::crossfit, "Task file format.");
  add<S>(k, KEY(data.path), std::nullopt, "Data folder (CrossFit, UnifiedQA) or file (jsonl).");
  add<S>(k, KEY(data.partition), S(""), "CrossFit partition (e.g. cls-45) or partition JSON file.");
  add<I>(k, KEY(data.crossfit_seed), 100, "CrossFit sampling seed of the files read ({task}_{k}_{seed}_...).",
         at_least<I>(0));
  add<bool>(k, KEY(data.skip_malformed), false, "Skip malformed data lines with a counted warning instead of stopping.");
  add<I>(k, KEY(data.shots), 16, "Support examples per task (k).", at_least<I>(1));
  add<I>(k, KEY(data.query_size), 16,
         "Query examples per task in meta-training episodes (0: all of the split beyond the support set).",
         at_least<I>(0));
  add<S>(k, KEY(data.prompt_template), S(""),
         "Prompt with {input} (optionally {options} and {output}); empty: the data format's convention.",
         prompt_template());
  add<I>(k, KEY(data.icl_demos), 0, "Demonstrations per prompt in ICL modes (0: the whole support set).",
         at_least<I>(0));

  add<I>(k, KEY(inner.steps), 5, "Inner steps K during meta-training.", at_least<I>(0));
  add<I>(k, KEY(inner.eval_steps), 10, "Inner steps K when adapting to a test task.", at_least<I>(0));
  add<double>(k, KEY(inner.lr), 1e-3, "Inner learning rate.", positive());
  add<InnerOptimizer>(k, KEY(inner.optimizer), InnerOptimizer::sgd, "Inner optimiser.");
  add<bool>(k, KEY(inner.first_step_nll_only), false, "Take the first inner step on the NLL alone (as ABML).");
  add<I>(k, KEY(inner.samples), 1, "Monte Carlo draws per NLL estimate.", at_least<I>(1));

  add<I>(k, KEY(outer.steps), 1000, "Outer (meta-training) steps.", at_least<I>(1));
  add<I>(k, KEY(outer.tasks_per_batch), 4, "Tasks per meta-batch.", at_least<I>(1));
  add<double>(k, KEY(outer.lr), 1e-4, "Outer AdamW learning rate (peak).", positive());
  add<double>(k, KEY(outer.weight_decay), 0.0, "AdamW weight decay.", at_least(0.0));
  add<I>(k, KEY(outer.warmup_steps), 50, "Linear warm-up steps of the outer learning rate.", at_least<I>(0));
  add<LrSchedule>(k, KEY(outer.schedule), LrSchedule::cosine, "Outer learning-rate decay after warm-up.");
  add<double>(k, KEY(outer.grad_clip), 1.0, "Clip theta's gradient to this global norm (0: off).", at_least(0.0));
  add<double>(k, KEY(outer.beta), 1e-7, "Weight of KL(q_phi || p_theta).", at_least(0.0));
  add<double>(k, KEY(outer.gamma), 1e-7, "Weight of the hyperprior term -log p(theta).", at_least(0.0));
  add<bool>(k, KEY(outer.second_order), false, "Differentiate through the inner steps.");
  add<bool>(k, KEY(outer.outer_includes_support), false, "Add the support NLL to the outer loss.");

  add<I>(k, KEY(eval.samples), 10, "Posterior draws averaged per query (0: posterior mean).", at_least<I>(0));
  add<bool>(k, KEY(eval.mc_dropout), false,
            "lora, reptile, fomaml with lora.dropout: average each query's option probabilities over eval.samples "
            "forwards with the adapter's dropout on (MC dropout), each with masks of its own.");
  add<I>(k, KEY(eval.query_size), 0, "Queries per held-out task at evaluation (0: the whole split).",
         at_least<I>(0));
  add<EvalSplit>(k, KEY(eval.split), EvalSplit::test,
                 "Split of the held-out tasks that evaluate scores: test (a task without a test file: its dev file) "
                 "or dev (predictions to fit a temperature on with `abmll calibrate --fit-temperature`, test "
                 "untouched).");
  add<I>(k, KEY(eval.bins), 15, "Equal-width confidence bins of ECE.", at_least<I>(1));
  add<bool>(k, KEY(eval.length_normalize), false, "Score options by mean instead of summed token log-likelihood.");
  add<bool>(k, KEY(eval.share_prompt), true,
            "Compute a query's prompt once for all its options (false: one forward row per option; same scores). "
            "Off for models with recurrent layers (Qwen3.5), which read a row as one sequence.");
  add<bool>(k, KEY(eval.share_prefix), true,
            "With share_prompt: queries whose prompts begin with the same 32 or more tokens (ICL demonstrations) "
            "share forward rows after that prefix, computed once (same scores; the weight family draws its "
            "per-token noise per row, so its draws differ).");
  add<I>(k, KEY(eval.forward_tokens), 16384,
         "Padded tokens (rows x longest row) of one scoring forward. A forward that runs out of memory is retried "
         "with half as many, down to one row; lower it to start there.",
         at_least<I>(1));

  add<I>(k, KEY(validation.every), 0,
         "meta-train: validate every N outer steps, at step 0 and at the last step, into validation.jsonl (0: "
         "never). Each validation adapts and scores as `evaluate` does, with queries from the tasks' dev splits.",
         at_least<I>(0));
  add<ValidationTasks>(k, KEY(validation.tasks), ValidationTasks::held_out,
                       "Tasks validated on: held_out (the held-out tasks' dev splits; evaluate scores their test "
                       "splits) or train (the training tasks' dev splits; meta-training draws from their train "
                       "splits).");
  add<I>(k, KEY(validation.max_tasks), 0, "At most this many of those tasks, a seeded choice (0: all).",
         at_least<I>(0));
  add<I>(k, KEY(validation.query_size), 0, "Queries per task, drawn from its dev split (0: the whole split).",
         at_least<I>(0));
  add<ValidationMetric>(k, KEY(validation.metric), ValidationMetric::nll,
                        "Pooled metric that selects the best validation (accuracy: highest; nll, ece, brier: "
                        "lowest).");
  add<I>(k, KEY(validation.samples), -1,
         "Posterior draws averaged per validation query (0: the posterior mean, fewer forwards; -1: eval.samples, "
         "as `evaluate` scores).",
         at_least<I>(-1));
  add<bool>(k, KEY(validation.keep_best), true,
            "Keep the best validation's checkpoint as checkpoints/best.safetensors and its adapter (PEFT) as "
            "adapter-best/.");
  add<I>(k, KEY(validation.patience), 0,
         "End the run (as at its last step) after this many validations in a row without a new best (0: never).",
         at_least<I>(0));
  return k;
}

#undef KEY

}  // namespace

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = build_keys();
  return keys;
}

ExperimentConfig default_experiment_config() {
  ExperimentConfig config;
  for (const auto& key : config_keys()) key.reset(config);
  return config;
}

}  // namespace abmll
