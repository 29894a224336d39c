// One task adapted and scored, as `abmll evaluate` does it for each held-out task (evaluate.h) and meta-training's
// validation for each of its tasks (validation.h): an episode whose support set is the k shots of the task's
// support split (episode index 0 of the run's seed) and whose queries come from `query_split`; the task's adapter,
// adapted from `start` by inner.eval_steps inner steps on the support set; each query's predictive distribution
// over its options (ABMLL: averaged over eval.samples posterior draws, or the posterior mean when 0).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config/experiment_config.h"
#include "data/episode.h"
#include "data/task.h"
#include "eval/option_scoring.h"
#include "eval/evaluation_summary.h"
#include "meta/lora_posterior.h"
#include "meta/point_lora.h"
#include "meta/run_setup.h"
#include "model/decoder.h"

namespace abmll::meta {

// What a task's adapter starts from. At most one is set; neither: the base model, not adapted (pretrained, icl).
struct AdaptationStart {
  const LoraPosterior* theta = nullptr;  // abmll, abmll_icl: the prior, whose posterior the task infers
  const PointLora* lora = nullptr;       // lora, fomaml, reptile: the LoRA the task fine-tunes
};

// Where evaluate_task keeps the task's adapted posterior or LoRA, as `abmll adapt` writes it: into folder/<task>/,
// recording `prior` (the checkpoint adapted from) in its metadata.
struct AdaptedOutput {
  std::filesystem::path folder;
  std::filesystem::path prior;
};

struct TaskQueries {
  data::Split split = data::Split::test;  // where the queries come from
  std::int64_t size = 0;                  // how many; 0: the whole split (beyond the support set, when the same)
};

// Draws which examples evaluate_task's episode of `task` holds (not their prompts): InputError, naming the task and
// the split, when a split is too small for data.shots or the queries. For checks before any task is adapted.
void check_task_episode(const ExperimentConfig& config, const data::Task& task, const TaskQueries& queries);

// Query prompts as token ids, split as the training NLL's scorer splits them: prompt with the tokenizer's special
// tokens, continuations without.
std::vector<eval::OptionQuery> tokenize_queries(const std::vector<data::ScoredPrompt>& prompts,
                                                const text::Tokenizer& tokenizer);

// Option scoring as the eval keys set it (length_normalize, share_prompt, share_prefix, forward_tokens).
eval::OptionScoringOptions scoring_options(const EvalConfig& config);

// eval::option_log_likelihoods, retried with forwards of half as many tokens when it runs out of memory, down to
// one row per forward: the same rows, so the same values up to the rounding of differently batched products (the
// `weight` family's per-token noise follows the forwards, so its draws change). `scoring.max_tokens_per_forward`
// keeps what worked, for the calls that follow. `what` names the work in the log ("task sst2").
eval::OptionLogLikelihoods score_queries(const LoadedExperiment& experiment,
                                         const std::vector<eval::OptionQuery>& queries, model::LinearAdapter* adapter,
                                         eval::OptionScoringOptions& scoring, const std::string& what);

// What a task's queries are scored with: eval.samples draws from its posterior `phi` (one group), from the task's
// own "eval/<task>" stream of the run's seed, or phi's mean when eval.samples is 0; else its adapted LoRA `lora`
// (one group), with eval.mc_dropout as eval.samples groups whose dropout is on (masks from the same stream; without
// dropout when eval.samples is 0); nullptr for neither (the base model).
std::unique_ptr<model::LinearAdapter> scoring_adapter(const ExperimentConfig& config,
                                                      const LoadedExperiment& experiment, const std::string& task,
                                                      const LoraPosterior* phi, const PointLora* lora);

// Whether config.method puts support demonstrations in the query prompts (icl, abmll_icl).
bool method_uses_icl(Method method);

// The task's result: its queries' option probabilities and log-likelihoods, and in `extra` the support set's size,
// its NLL before each inner step and after the last ("support_nll"), and the prompts cut to fit. The inner steps
// recompute layers as `recompute` says and keep a policy that a retry after running out of memory chose.
// `scoring_seconds`, when given, receives the time spent scoring options (not adapting).
// With `save` (and a start to adapt from), the adapted task is written there before scoring.
eval::TaskResult evaluate_task(const ExperimentConfig& config, const LoadedExperiment& experiment,
                               const AdaptationStart& start, const data::Task& task, const TaskQueries& queries,
                               model::ForwardOptions& recompute, double* scoring_seconds = nullptr,
                               const AdaptedOutput* save = nullptr);

}  // namespace abmll::meta
