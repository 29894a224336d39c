// Answer-option scoring (ABMLL.md section 6): the log-likelihood of each option's continuation given the query's
// prompt, a softmax over the options, and the posterior predictive, the mean of those option probabilities over
// the groups of a BatchedLora (one group per posterior sample, or one group holding the posterior mean).
//
// Sharing the prompt. By default a query's options are packed into one row after its prompt (model/shared_prompt.h),
// so the prompt is computed once per query and adapter group rather than once per option; queries whose prompts
// begin alike (the same ICL demonstrations) also share rows after that common prefix, computed once for all of them
// (share_prefix, plan_query_rows). With share_prompt off, every option is its own row repeating the prompt (the
// naive way, kept as the reference and for benchmarks). Either way rows are batched into forwards of at most
// `max_tokens_per_forward` padded tokens, and the result equals scoring every option on its own
// (tests/test_option_scoring.cpp).
//
// Dimension letters: Q queries, K options of a query (may differ between queries), G adapter groups.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/decoder.h"
#include "model/lora.h"
#include "model/scoring.h"

namespace abmll::eval {

struct OptionQuery {
  std::vector<int64_t> prompt;                // with the tokenizer's special tokens; at least one token
  std::vector<std::vector<int64_t>> options;  // one continuation per option (without special tokens); K >= 1
};

struct OptionScoringOptions {
  bool length_normalize = false;          // mean instead of summed token log-likelihood per option
  // One row per (query, group) with the options after the prompt; ignored (off) for a model with recurrent layers.
  bool share_prompt = true;
  int64_t max_tokens_per_forward = 16384;  // padded tokens (rows x longest row) of one forward; >= one row
  // With share_prompt: queries whose prompts begin with at least min_shared_prefix identical tokens (ICL
  // demonstrations) share rows after that prefix, computed once (plan_query_rows).
  bool share_prefix = true;
  int64_t min_shared_prefix = 32;
  int64_t max_row_tokens = 4096;
  model::ScoringOptions scoring;
};

// The rows option_log_likelihoods packs with share_prompt, in order: each holds `queries` (indices into the queries)
// after their first `prefix` prompt tokens, which they all share (0: one query alone, its plain shared-prompt row).
// In order of the queries, except that with share_prefix queries whose prompts begin with the same
// min_shared_prefix tokens are taken together where the first of them stands (ICL prompts that kept different
// numbers of demonstrations to fit max_length interleave otherwise); consecutive ones share a row while they have
// min_shared_prefix tokens in common and the row stays within max_row_tokens (or twice its first query's own row,
// where longer; never beyond max_tokens_per_forward). InputError for a query with an empty prompt.
struct QueryRun {
  std::vector<std::size_t> queries;
  std::size_t prefix = 0;
};
std::vector<QueryRun> plan_query_rows(const std::vector<OptionQuery>& queries, const OptionScoringOptions& options);

// loglik[q][g][k]: log-likelihood of option k of query q under adapter group g (summed over the continuation's
// tokens, or their mean with length_normalize; an empty continuation scores 0). G = adapter->groups(), or 1
// without an adapter. Runs without autograd. Throws InputError for a query without options or with an empty prompt.
using OptionLogLikelihoods = std::vector<std::vector<std::vector<double>>>;
OptionLogLikelihoods option_log_likelihoods(const model::Decoder& decoder, const std::vector<OptionQuery>& queries,
                                            model::LinearAdapter* adapter, const OptionScoringOptions& options = {});

// One query's predictive distribution.
struct OptionPrediction {
  std::vector<double> probs;   // [K] mean over groups of softmax(loglik[g])
  std::vector<double> loglik;  // [K] mean over groups of the option log-likelihoods
};

// The posterior predictive from per-group log-likelihoods (one prediction per query).
std::vector<OptionPrediction> predictive(const OptionLogLikelihoods& loglik);

// option_log_likelihoods then predictive.
std::vector<OptionPrediction> score_options(const model::Decoder& decoder, const std::vector<OptionQuery>& queries,
                                            model::LinearAdapter* adapter, const OptionScoringOptions& options = {});

}  // namespace abmll::eval
