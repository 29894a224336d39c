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

// One row of a forward: prompts with the options they carry (all of a query's options when sharing the prompt, one
// otherwise; the prompts of several queries after their common prefix when sharing it) and where their scores go.
struct Row {
  model::PromptRow row;
  std::vector<Slot> slots;  // one per continuation of the row's items, in order
};

// Consecutive queries [begin, end) that share a row. `shared`: how many leading tokens all their prompts have in
// common, leaving each at least one of its own; the row's prefix when the run has several queries (a query alone is
// packed without one, as the plain shared-prompt row).
struct QueryRun {
  std::size_t begin = 0, end = 0;
  std::size_t shared = 0;
  std::size_t prefix() const { return end - begin > 1 ? shared : 0; }
};

std::size_t common_prefix(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  return static_cast<std::size_t>(std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first - a.begin());
}

// Consecutive queries go into one row while they share at least `min_prefix` leading prompt tokens (each keeping one
// of its own, which predicts its options' first tokens) and the row stays within `max_tokens`, or within twice its
// first query's own row where that is longer (prompts of several thousand tokens still share their demonstrations),
// but never beyond `forward_tokens`.
std::vector<QueryRun> query_runs(const std::vector<OptionQuery>& queries, bool share_prefix, int64_t min_prefix,
                                 int64_t max_tokens, int64_t forward_tokens) {
  std::vector<QueryRun> runs;
  int64_t items_length = 0;  // of the run's queries on their own (shared_prompt_length)
  int64_t limit = 0;         // of the run's row
  for (std::size_t q = 0; q < queries.size(); ++q) {
    const model::SharedPromptItem item{queries[q].prompt, queries[q].options, 0};
    const int64_t length = model::shared_prompt_length(item);
    if (share_prefix && !runs.empty()) {
      QueryRun& run = runs.back();
      const std::size_t prefix = std::min({run.shared, common_prefix(queries[run.begin].prompt, queries[q].prompt),
                                           queries[q].prompt.size() - 1});
      const int64_t n = static_cast<int64_t>(run.end - run.begin);  // queries before this one
      const int64_t row_length = items_length + length - n * static_cast<int64_t>(prefix);
      if (static_cast<int64_t>(prefix) >= min_prefix && row_length <= limit) {
        run.end = q + 1;
        run.shared = prefix;
        items_length += length;
        continue;
      }
    }
    runs.push_back({q, q + 1, queries[q].prompt.size() - 1});
    items_length = length;
    limit = std::min(forward_tokens, std::max(max_tokens, 2 * length));
  }
  return runs;
}

}  // namespace

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
  if (options.share_prompt) {
    // A run's rows (one per group) are adjacent, so they share a forward.
    for (const QueryRun& run : query_runs(queries, options.share_prefix, options.min_shared_prefix,
                                          options.max_row_tokens, options.max_tokens_per_forward)) {
      for (std::size_t g = 0; g < groups; ++g) {
        Row row{{{}, {}, static_cast<int64_t>(g)}, {}};
        const std::vector<int64_t>& first = queries[run.begin].prompt;
        const auto prefix = static_cast<std::ptrdiff_t>(run.prefix());
        row.row.prefix.assign(first.begin(), first.begin() + prefix);
        for (std::size_t q = run.begin; q < run.end; ++q) {
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
