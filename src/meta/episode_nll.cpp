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

TokenizedExample tokenize(const data::ScoredPrompt& p, const text::Tokenizer& tok) {
  // The same split the scorer of answer options uses: prompt with special tokens, then the continuation's ids in
  // its context.
  const std::vector<int32_t> prompt_ids = tok.encode(p.prompt, true);
  return {widen(prompt_ids), widen(tok.encode_continuation(p.prompt, prompt_ids, p.continuations.at(p.label)))};
}

std::vector<TokenizedExample> tokenize(const std::vector<data::ScoredPrompt>& prompts, const text::Tokenizer& tok) {
  std::vector<TokenizedExample> out;
  out.reserve(prompts.size());
  for (const auto& p : prompts) out.push_back(tokenize(p, tok));
  return out;
}

}  // namespace

TokenizedEpisode tokenize_episode(const data::Episode& episode, const text::Tokenizer& tokenizer) {
  return {tokenize(episode.support, tokenizer), tokenize(episode.query, tokenizer)};
}

TokenizedEpisode TokenizedEpisodeSampler::sample(const data::Task& task, const data::EpisodeOptions& options,
                                                 Rng& rng) {
  if (options.icl) return tokenize_episode(data::sample_episode(task, options, rng), tokenizer_);
  const data::EpisodeDraw draw = data::draw_episode(task, options, rng);
  auto examples = [&](data::Split split, const std::vector<std::size_t>& indices) {
    std::vector<TokenizedExample> out;
    out.reserve(indices.size());
    for (const std::size_t i : indices) {
      const auto key = std::make_tuple(&task, split, i);
      auto it = examples_.find(key);
      if (it == examples_.end()) {
        const data::ScoredPrompt p = data::episode_prompt(task, task.examples(split)[i], {}, options);
        it = examples_.emplace(key, tokenize(p, tokenizer_)).first;
      }
      out.push_back(it->second);
    }
    return out;
  };
  return {examples(options.support_split, draw.support), examples(options.query_split, draw.query)};
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
  std::vector<model::ScoringItem> items;
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
        items.push_back({ex.prompt, ex.answer, g * samples + s});
        task_of_item.push_back(g);
        b.tokens += static_cast<int64_t>(ex.prompt.size() + ex.answer.size());
      }
      items_per_task[g] += samples;
    }
  }
  b.items = model::prepare_items(decoder_, items);
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
  const model::ContinuationScores scores = model::score_prepared(decoder_, b.items, &adapter, scoring_);
  const at::Tensor sums =
      at::zeros({tasks}, scores.log_prob.options()).index_add(0, b.task_of_item, -scores.log_prob);
  return sums / b.items_per_task.to(sums.scalar_type());
}

}  // namespace abmll::meta
