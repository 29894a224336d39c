// The experiment configuration as plain, typed structs: what the core library receives. Parsed once, at the edge,
// from YAML and `--set` overrides by config_loader; every key, its default, help and validation are declared once
// in config_schema.cpp, which also holds the defaults (default_experiment_config()): the member initialisers here
// only make a value-initialised struct well defined. Names follow ABMLL.md (theta: prior, phi: task posterior).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace abmll {

enum class Method { pretrained, icl, lora, reptile, fomaml, abmll, abmll_icl };
enum class PosteriorFamily { factor, weight };  // ABMLL.md 2(a) over LoRA factors, 2(b) over the weight update
enum class WeightScale { linear, softplus };     // scale of the `weight` family: s B A + c, or softplus(s B A) + c
enum class InnerOptimizer { sgd, adam };
enum class ModelDType { auto_, float32, bfloat16, float16 };  // auto: float32 on CPU, bfloat16 on GPU
enum class DataFormat { crossfit, unifiedqa, jsonl };
enum class LrSchedule { cosine, linear, constant };
enum class EvalSplit { test, dev };  // which split of the held-out tasks `evaluate` scores
enum class ValidationTasks { held_out, train };  // whose dev splits meta-training is validated on
enum class ValidationMetric { nll, accuracy, ece, brier };  // what selects the best checkpoint

struct RunConfig {
  std::int64_t seed = 0;         // drives task sampling, episode splits and noise
  std::string device;            // auto | cpu | cuda | cuda:N
  std::int64_t log_every = 0;    // outer steps between metric lines
  std::int64_t checkpoint_every = 0;
  std::string benchmark;         // label of the run's benchmark in `abmll report` tables
  double dist_timeout_s = 0;     // distributed runs: rendezvous and collective timeout
};

struct ModelConfig {
  std::string path;  // Hugging Face model folder: config.json, *.safetensors, tokenizer.json
  ModelDType dtype = ModelDType::auto_;
  bool gradient_checkpointing = false;
  std::int64_t checkpointed_layers = -1;  // with gradient_checkpointing: the first N layers only (-1: all)
  bool recompute_on_oom = true;  // meta-train: a step that runs out of memory is retried with more layers recomputed
  bool random_weights = false;  // benchmarks: random base weights of config.json's shape, no checkpoint read
  bool tf32 = true;             // GPU: float32 matrix products on TF32 tensor cores (util/float32_products.h)
  bool cuda_kernels = true;     // GPU: abmll's own kernels where they apply (util/cuda_kernels.h)
  std::int64_t max_length = 0;  // tokens per sequence; longer prompts are truncated from the left
};

struct LoraConfig {
  std::int64_t rank = 0;
  double alpha = 0;
  bool rslora = false;  // scaling alpha / sqrt(r) instead of alpha / r
  double dropout = 0;
  std::vector<std::string> targets;  // module names, PEFT's: q_proj, k_proj, v_proj, o_proj, gate_proj, ...
};

struct PosteriorConfig {
  PosteriorFamily family = PosteriorFamily::factor;
  WeightScale weight_scale = WeightScale::linear;
  double scale_floor = 0;  // c: sigma = softplus(rho) + c
  double init_scale = 0;   // initial sigma of theta's scale parameters
  double hyperprior_a0 = 0, hyperprior_b0 = 0;  // Gamma(a0, b0) on precisions
  double hyperprior_mean_std = 0;               // N(0, std^2) on means
};

struct DataConfig {
  DataFormat format = DataFormat::crossfit;
  std::string path;       // data folder (or file, for jsonl)
  std::string partition;  // CrossFit partition name, e.g. cls-45, or a partition JSON file
  std::int64_t crossfit_seed = 100;  // which of CrossFit's few-shot samplings (seeds 100, 13, 21, 42, 87) to read
  bool skip_malformed = false;       // skip malformed lines with a counted warning instead of stopping
  std::int64_t shots = 0;       // k: support examples per task
  std::int64_t query_size = 0;  // query examples per task in meta-training episodes; 0: all the rest
  std::string prompt_template;  // "{input}" and "{output}" placeholders
  std::int64_t icl_demos = 0;   // demonstrations per prompt in ICL modes
};

struct InnerConfig {
  std::int64_t steps = 0;       // K during meta-training
  std::int64_t eval_steps = 0;  // K at test time
  double lr = 0;
  InnerOptimizer optimizer = InnerOptimizer::sgd;
  bool first_step_nll_only = false;
  std::int64_t samples = 0;  // Monte Carlo draws per NLL estimate
};

struct OuterConfig {
  std::int64_t steps = 0;
  std::int64_t tasks_per_batch = 0;
  double lr = 0;
  double weight_decay = 0;
  std::int64_t warmup_steps = 0;
  LrSchedule schedule = LrSchedule::cosine;
  double grad_clip = 0;  // max global norm of theta's gradient; 0 disables
  double beta = 0;       // weight of KL(q_phi || p_theta)
  double gamma = 0;      // weight of -log p(theta)
  bool second_order = false;
  bool outer_includes_support = false;
};

struct EvalConfig {
  std::int64_t samples = 0;     // posterior draws averaged per query; 0 = posterior mean
  bool mc_dropout = false;      // point-LoRA methods: `samples` forwards with the adapter's dropout on, averaged
  std::int64_t query_size = 0;  // queries per held-out task; 0 = the whole split
  EvalSplit split = EvalSplit::test;
  std::int64_t bins = 0;        // ECE bins
  bool length_normalize = false;
  bool share_prompt = true;     // compute a query's prompt once for all its options
  bool share_prefix = true;     // and the common prefix of queries' prompts (ICL demonstrations) once per row
  std::int64_t forward_tokens = 16384;  // padded tokens of one scoring forward, halved on running out of memory
};

// Validation during meta-training (meta/validation.h).
struct ValidationConfig {
  std::int64_t every = 0;  // outer steps between validations; 0: none
  ValidationTasks tasks = ValidationTasks::held_out;
  std::int64_t max_tasks = 0;   // validate on at most this many of them; 0: all
  std::int64_t query_size = 0;  // queries per task from its dev split; 0: the whole split
  std::int64_t samples = -1;    // posterior draws per query; -1: eval.samples
  ValidationMetric metric = ValidationMetric::nll;
  bool keep_best = true;       // keep the best validation's checkpoint (checkpoints/best.safetensors) and adapter
  std::int64_t patience = 0;  // stop after this many validations in a row without a new best; 0: never
};

struct ExperimentConfig {
  Method method = Method::abmll;
  RunConfig run;
  ModelConfig model;
  LoraConfig lora;
  PosteriorConfig posterior;
  DataConfig data;
  InnerConfig inner;
  OuterConfig outer;
  EvalConfig eval;
  ValidationConfig validation;
};

// Names of enum values as they appear in configs. enum_names<E>() lists (value, name) pairs.
template <class E>
const std::vector<std::pair<E, std::string_view>>& enum_names();

template <class E>
std::string_view to_string(E value) {
  for (const auto& [v, name] : enum_names<E>())
    if (v == value) return name;
  return "?";
}

}  // namespace abmll
