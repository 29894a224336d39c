// Answer-option scoring (see option_scoring.h).
#include "eval/option_scoring.h"

#include <ATen/core/grad_mode.h>
#include <fmt/format.h>

#include <algorithm>

#include "eval/temperature.h"
#include "util/error.h"

namespace abmll::eval {
namespace {

// Where a scored option goes: query q, group g, option k.
struct Slot {
  std::size_t q, g, k;
};

// One row of a forward: a prompt with the options it carries (all of a query's options when sharing the prompt,
// one otherwise) and where their scores go.
struct Row {
  model::SharedPromptItem item;
  std::vector<Slot> slots;  // one per continuation of item
};

}  // namespace

OptionLogLikelihoods option_log_likelihoods(const model::Decoder& decoder, const std::vector<OptionQuery>& queries,
                                            model::LinearAdapter* adapter, const OptionScoringOptions& options) {
  const at::NoGradGuard no_grad;
  const std::size_t groups = adapter ? static_cast<std::size_t>(adapter->groups()) : 1;
  OptionLogLikelihoods out(queries.size());
  std::vector<Row> rows;
  for (std::size_t q = 0; q < queries.size(); ++q) {
    const OptionQuery& query = queries[q];
    if (query.options.empty()) throw InputError(fmt::format("option scoring: query {} has no options", q));
    if (query.prompt.empty()) throw InputError(fmt::format("option scoring: query {} has an empty prompt", q));
    out[q].assign(groups, std::vector<double>(query.options.size(), 0.0));
    // A query's rows are adjacent, so they share a forward.
    for (std::size_t g = 0; g < groups; ++g) {
      const auto group = static_cast<int64_t>(g);
      if (options.share_prompt) {
        Row row{{query.prompt, query.options, group}, {}};
        for (std::size_t k = 0; k < query.options.size(); ++k) row.slots.push_back({q, g, k});
        rows.push_back(std::move(row));
      } else {
        for (std::size_t k = 0; k < query.options.size(); ++k)
          rows.push_back({{query.prompt, {query.options[k]}, group}, {{q, g, k}}});
      }
    }
  }

  // Greedy packing in order: a forward takes rows while rows x longest row stays within the budget.
  std::size_t begin = 0;
  while (begin < rows.size()) {
    std::size_t end = begin;
    int64_t longest = 0;
    while (end < rows.size()) {
      const int64_t len = model::shared_prompt_length(rows[end].item);
      const int64_t padded = static_cast<int64_t>(end - begin + 1) * std::max(longest, len);
      if (end > begin && padded > options.max_tokens_per_forward) break;
      longest = std::max(longest, len);
      ++end;
    }
    std::vector<model::SharedPromptItem> batch;
    for (std::size_t r = begin; r < end; ++r) batch.push_back(rows[r].item);
    const model::ContinuationScores scores = model::score_shared_prompts(decoder, batch, adapter, options.scoring);
    const at::Tensor log_prob = scores.log_prob.to(at::kDouble).cpu().contiguous();
    const at::Tensor tokens = scores.tokens.cpu().contiguous();
    const double* lp = log_prob.data_ptr<double>();
    const int64_t* n = tokens.data_ptr<int64_t>();
    std::size_t pair = 0;  // item-major, as score_shared_prompts orders them
    for (std::size_t r = begin; r < end; ++r)
      for (const Slot& s : rows[r].slots) {
        double value = lp[pair];
        if (options.length_normalize && n[pair] > 0) value /= static_cast<double>(n[pair]);
        out[s.q][s.g][s.k] = value;
        ++pair;
      }
    begin = end;
  }
  return out;
}

std::vector<OptionPrediction> predictive(const OptionLogLikelihoods& loglik) {
  std::vector<OptionPrediction> out;
  out.reserve(loglik.size());
  for (const auto& per_group : loglik) {
    if (per_group.empty()) throw Error("predictive: a query has no groups");
    const std::size_t k = per_group.front().size();
    OptionPrediction p{std::vector<double>(k, 0.0), std::vector<double>(k, 0.0)};
    const double weight = 1.0 / static_cast<double>(per_group.size());
    for (const auto& ll : per_group) {
      const std::vector<double> probs = softmax(ll);
      for (std::size_t j = 0; j < k; ++j) {
        p.probs[j] += weight * probs[j];
        p.loglik[j] += weight * ll[j];
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<OptionPrediction> score_options(const model::Decoder& decoder, const std::vector<OptionQuery>& queries,
                                            model::LinearAdapter* adapter, const OptionScoringOptions& options) {
  return predictive(option_log_likelihoods(decoder, queries, adapter, options));
}

}  // namespace abmll::eval
