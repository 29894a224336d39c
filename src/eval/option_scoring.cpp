// Answer-option scoring (see option_scoring.h).
#include "eval/option_scoring.h"

#include <ATen/core/grad_mode.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "eval/temperature.h"
#include "util/error.h"

namespace abmll::eval {
namespace {

// Where a scored option goes: query q, group g, option k.
struct Slot {
  std::size_t q, g, k;
};

// One row of a forward: prompts with the options they carry (all of a query's options when sharing the prompt, one
// otherwise; the prompts of several queries after their common prefix when sharing it) and where their scores go.
struct Row {
  model::PromptRow row;
  std::vector<Slot> slots;  // one per continuation of the row's items, in order
};

std::size_t common_prefix(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  return static_cast<std::size_t>(std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first - a.begin());
}

// The order queries are packed in: as given, except that with prefix sharing those whose prompts begin with the
// same `min_prefix` tokens are taken together, where the first of them stands (so a later query with the
// demonstrations of an earlier one joins it). Prompts too short to share anything keep their place.
std::vector<std::size_t> packing_order(const std::vector<OptionQuery>& queries, bool share_prefix, int64_t min_prefix) {
  std::vector<std::size_t> order;
  if (!share_prefix) {
    for (std::size_t q = 0; q < queries.size(); ++q) order.push_back(q);
    return order;
  }
  const auto key_length = static_cast<std::size_t>(std::max<int64_t>(min_prefix, 0));
  std::map<std::vector<int64_t>, std::size_t> group_of;  // a key's group
  std::vector<std::vector<std::size_t>> groups;           // in the order of their first query
  for (std::size_t q = 0; q < queries.size(); ++q) {
    const std::vector<int64_t>& prompt = queries[q].prompt;
    if (prompt.size() < key_length + 1) {  // not enough tokens to share min_prefix and keep one
      groups.push_back({q});
      continue;
    }
    const std::vector<int64_t> key(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(key_length));
    const auto [it, fresh] = group_of.emplace(key, groups.size());
    if (fresh) groups.emplace_back();
    groups[it->second].push_back(q);
  }
  for (const auto& group : groups) order.insert(order.end(), group.begin(), group.end());
  return order;
}

}  // namespace

std::vector<QueryRun> plan_query_rows(const std::vector<OptionQuery>& queries, const OptionScoringOptions& options) {
  std::vector<QueryRun> runs;
  std::size_t shared = 0;    // leading tokens the current run's prompts share (each keeping one of its own)
  int64_t items_length = 0;  // of the run's queries on their own rows (shared_prompt_length)
  int64_t limit = 0;         // of the run's row
  for (std::size_t q : packing_order(queries, options.share_prefix, options.min_shared_prefix)) {
    const std::vector<int64_t>& prompt = queries[q].prompt;
    if (prompt.empty()) throw InputError(fmt::format("option scoring: query {} has an empty prompt", q));
    const int64_t length = model::shared_prompt_length({prompt, queries[q].options, 0});
    if (options.share_prefix && !runs.empty()) {
      QueryRun& run = runs.back();
      const std::size_t prefix =
          std::min({shared, common_prefix(queries[run.queries.front()].prompt, prompt), prompt.size() - 1});
      const auto n = static_cast<int64_t>(run.queries.size());  // queries before this one
      const int64_t row_length = items_length + length - n * static_cast<int64_t>(prefix);
      if (static_cast<int64_t>(prefix) >= options.min_shared_prefix && row_length <= limit) {
        run.queries.push_back(q);
        run.prefix = shared = prefix;
        items_length += length;
        continue;
      }
    }
    runs.push_back({{q}, 0});
    shared = prompt.size() - 1;
    items_length = length;
    limit = std::min(options.max_tokens_per_forward, std::max(options.max_row_tokens, 2 * length));
  }
  return runs;
}

OptionLogLikelihoods option_log_likelihoods(const model::Decoder& decoder, const std::vector<OptionQuery>& queries,
                                            model::LinearAdapter* adapter, const OptionScoringOptions& options) {
  const at::NoGradGuard no_grad;
  const std::size_t groups = adapter ? static_cast<std::size_t>(adapter->groups()) : 1;
  OptionLogLikelihoods out(queries.size());
  for (std::size_t q = 0; q < queries.size(); ++q) {
    const OptionQuery& query = queries[q];
    if (query.options.empty()) throw InputError(fmt::format("option scoring: query {} has no options", q));
    if (query.prompt.empty()) throw InputError(fmt::format("option scoring: query {} has an empty prompt", q));
    out[q].assign(groups, std::vector<double>(query.options.size(), 0.0));
  }
  std::vector<Row> rows;
  // A model with recurrent layers (Qwen3.5's) reads a row as one sequence: every option gets its own row.
  if (options.share_prompt && !decoder.config().recurrent()) {
    // A run's rows (one per group) are adjacent, so they share a forward.
    for (const QueryRun& run : plan_query_rows(queries, options)) {
      for (std::size_t g = 0; g < groups; ++g) {
        Row row{{{}, {}, static_cast<int64_t>(g)}, {}};
        const std::vector<int64_t>& first = queries[run.queries.front()].prompt;
        const auto prefix = static_cast<std::ptrdiff_t>(run.prefix);
        row.row.prefix.assign(first.begin(), first.begin() + prefix);
        for (std::size_t q : run.queries) {
          const std::vector<int64_t>& prompt = queries[q].prompt;
          row.row.items.push_back({{prompt.begin() + prefix, prompt.end()}, queries[q].options, row.row.group});
          for (std::size_t k = 0; k < queries[q].options.size(); ++k) row.slots.push_back({q, g, k});
        }
        rows.push_back(std::move(row));
      }
    }
  } else {
    for (std::size_t q = 0; q < queries.size(); ++q)
      for (std::size_t g = 0; g < groups; ++g)
        for (std::size_t k = 0; k < queries[q].options.size(); ++k)
          rows.push_back(
              {{{}, {{queries[q].prompt, {queries[q].options[k]}, 0}}, static_cast<int64_t>(g)}, {{q, g, k}}});
  }

  // Greedy packing in order: a forward takes rows while rows x longest row stays within the budget.
  std::size_t begin = 0;
  while (begin < rows.size()) {
    std::size_t end = begin;
    int64_t longest = 0;
    while (end < rows.size()) {
      const int64_t len = model::prompt_row_length(rows[end].row);
      const int64_t padded = static_cast<int64_t>(end - begin + 1) * std::max(longest, len);
      if (end > begin && padded > options.max_tokens_per_forward) break;
      longest = std::max(longest, len);
      ++end;
    }
    std::vector<model::PromptRow> batch;
    for (std::size_t r = begin; r < end; ++r) batch.push_back(rows[r].row);
    const model::ContinuationScores scores = model::score_prompt_rows(decoder, batch, adapter, options.scoring);
    const at::Tensor log_prob = scores.log_prob.to(at::kDouble).cpu().contiguous();
    const at::Tensor tokens = scores.tokens.cpu().contiguous();
    const double* lp = log_prob.data_ptr<double>();
    const int64_t* n = tokens.data_ptr<int64_t>();
    std::size_t pair = 0;  // row-major, then item-major, as score_prompt_rows orders them
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
