#include "meta/episode_nll.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>

#include "meta/factor_gaussian.h"
#include "text/tokenizer.h"
#include "util/error.h"

#include <fmt/format.h>

namespace abmll::meta {
namespace {

std::vector<int64_t> widen(const std::vector<int32_t>& ids) { return {ids.begin(), ids.end()}; }

std::vector<TokenizedExample> tokenize(const std::vector<data::ScoredPrompt>& prompts, const text::Tokenizer& tok) {
  std::vector<TokenizedExample> out;
  out.reserve(prompts.size());
  for (const auto& p : prompts) {
    // The same split the scorer of answer options uses: prompt with special tokens, continuation without.
    out.push_back({widen(tok.encode(p.prompt, true)), widen(tok.encode(p.continuations.at(p.label), false))});
  }
  return out;
}

}  // namespace

TokenizedEpisode tokenize_episode(const data::Episode& episode, const text::Tokenizer& tokenizer) {
  return {tokenize(episode.support, tokenizer), tokenize(episode.query, tokenizer)};
}

EpisodeNll::EpisodeNll(const model::Decoder& decoder, model::LoraSettings settings,
                       std::vector<TokenizedEpisode> episodes, model::ScoringOptions scoring)
    : decoder_(decoder), settings_(std::move(settings)), episodes_(std::move(episodes)), scoring_(scoring) {}

at::Tensor EpisodeNll::operator()(const std::map<model::LinearSite, model::LoraFactors>& factors, int64_t samples,
                                  Split split) {
  model::BatchedLora lora(settings_, static_cast<int64_t>(episodes_.size()) * samples);
  install_factors(lora, factors);
  return (*this)(lora, samples, split);
}

const EpisodeNll::Batch& EpisodeNll::batch(Split split, int64_t samples) {
  const auto key = std::make_pair(split, samples);
  if (const auto it = batches_.find(key); it != batches_.end()) return it->second;
  const int64_t tasks = static_cast<int64_t>(episodes_.size());
  Batch b;
  std::vector<int64_t> task_of_item;
  std::vector<double> items_per_task(tasks, 0.0);
  for (int64_t g = 0; g < tasks; ++g) {
    std::vector<const TokenizedExample*> examples;
    if (split != Split::query)
      for (const auto& ex : episodes_[g].support) examples.push_back(&ex);
    if (split != Split::support)
      for (const auto& ex : episodes_[g].query) examples.push_back(&ex);
    if (examples.empty()) throw InputError("an episode has an empty support or query set");
    for (const TokenizedExample* ex_ptr : examples) {
      const TokenizedExample& ex = *ex_ptr;
      for (int64_t s = 0; s < samples; ++s) {
        b.items.push_back({ex.prompt, ex.answer, g * samples + s});
        task_of_item.push_back(g);
        b.tokens += static_cast<int64_t>(ex.prompt.size() + ex.answer.size());
      }
      items_per_task[g] += samples;
    }
  }
  b.task_of_item = at::tensor(task_of_item, at::kLong).to(decoder_.device());
  b.items_per_task = at::tensor(items_per_task, at::kDouble).to(decoder_.device());
  return batches_.emplace(key, std::move(b)).first->second;
}

at::Tensor EpisodeNll::operator()(model::LinearAdapter& adapter, int64_t samples, Split split) {
  const int64_t tasks = static_cast<int64_t>(episodes_.size());
  if (adapter.groups() != tasks * samples)
    throw Error(fmt::format("EpisodeNll: the adapter has {} groups for {} tasks x {} samples", adapter.groups(),
                            tasks, samples));
  const Batch& b = batch(split, samples);
  tokens_processed_ += b.tokens;
  const model::ContinuationScores scores = model::score_continuations(decoder_, b.items, &adapter, scoring_);
  const at::Tensor sums =
      at::zeros({tasks}, scores.log_prob.options()).index_add(0, b.task_of_item, -scores.log_prob);
  return sums / b.items_per_task.to(sums.scalar_type());
}

}  // namespace abmll::meta
