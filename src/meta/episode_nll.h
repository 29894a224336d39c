// The NLL of a meta-batch's episodes under the LLM with per-task sampled LoRA adapters: the NllFunction that
// ABMLL's objective (abmll_objective.h) calls. All tasks' sequences (times the Monte Carlo samples) go through one
// forward of the frozen base, each sequence with its own task's sample of the adapter (BatchedLora groups).
// A task's NLL is the mean over its examples (and samples) of -log p(right answer tokens | prompt).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

#include "data/episode.h"
#include "data/task.h"
#include "meta/abmll_objective.h"
#include "model/decoder.h"
#include "model/lora.h"
#include "model/scoring.h"
#include "util/rng.h"

namespace abmll::text {
class Tokenizer;
}

namespace abmll::meta {

// An example as token ids: the prompt (with the tokenizer's special tokens) and the right answer's continuation.
struct TokenizedExample {
  std::vector<int64_t> prompt, answer;
};

struct TokenizedEpisode {
  std::vector<TokenizedExample> support, query;
};

TokenizedEpisode tokenize_episode(const data::Episode& episode, const text::Tokenizer& tokenizer);

// Episodes as token ids for a run that samples many episodes of the same tasks: sample(task, options, rng) equals
// tokenize_episode(data::sample_episode(task, options, rng), tokenizer), but without ICL each example is fitted
// and tokenized once for the run rather than once per episode (with ICL, query prompts depend on the episode's
// demonstrations and are built every time). Tasks must outlive the sampler and keep their examples.
class TokenizedEpisodeSampler {
 public:
  explicit TokenizedEpisodeSampler(const text::Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  TokenizedEpisode sample(const data::Task& task, const data::EpisodeOptions& options, Rng& rng);

 private:
  const text::Tokenizer& tokenizer_;
  // (task, split, index into the split's examples) -> the example as an episode presents it without demos.
  std::map<std::tuple<const data::Task*, data::Split, std::size_t>, TokenizedExample> examples_;
};

class EpisodeNll {
 public:
  // `episodes[g]` is task g of the meta-batch. The decoder must outlive this object. `scoring` carries the forward
  // options (gradient checkpointing; double_backward for second-order meta-gradients).
  EpisodeNll(const model::Decoder& decoder, model::LoraSettings settings, std::vector<TokenizedEpisode> episodes,
             model::ScoringOptions scoring = {});

  // [G] per-task mean NLL of `split` under `adapter` (G * samples groups, group-major; either variational family's
  // draws, LoraPosterior::sample). With gradient checkpointing, `adapter` must outlive the result's backward.
  at::Tensor operator()(model::LinearAdapter& adapter, int64_t samples, Split split);
  // The same under LoRA `factors` (G * samples groups, group-major), through an adapter local to the call: not for
  // a result that is differentiated under gradient checkpointing (backward would rerun layers through it).
  at::Tensor operator()(const std::map<model::LinearSite, model::LoraFactors>& factors, int64_t samples,
                        Split split);

  // Tokens (prompt + answer) that went through the model so far, for throughput figures.
  int64_t tokens_processed() const { return tokens_processed_; }
  const std::vector<TokenizedEpisode>& episodes() const { return episodes_; }

 private:
  // One split's forward batch: the same for every call with that split and sample count (the inner steps score
  // the support set K times), so it is built once.
  struct Batch {
    model::PreparedItems items;             // task-major, then example, then sample
    at::Tensor task_of_item;                // [items] int64, on the decoder's device
    at::Tensor items_per_task;              // [G] on the decoder's device
    int64_t tokens = 0;                     // prompt + answer tokens of all items
  };
  const Batch& batch(Split split, int64_t samples);

  const model::Decoder& decoder_;
  model::LoraSettings settings_;
  std::vector<TokenizedEpisode> episodes_;
  model::ScoringOptions scoring_;
  std::map<std::pair<Split, int64_t>, Batch> batches_;
  int64_t tokens_processed_ = 0;
};

}  // namespace abmll::meta
