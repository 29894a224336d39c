// Scoring continuations: log p(continuation | prompt) under the decoder (and an adapter), for a batch of items in
// one forward. This is the primitive behind answer-option scoring and the NLL of the training losses, so it runs
// with grad on too.
//
// Memory: only the N positions that predict continuation tokens go through the vocabulary projection, in chunks of
// rows whose [rows, V] float32 logits stay under a bound; a custom autograd node recomputes each chunk's logits in
// backward instead of keeping them, so neither [B, T, V] nor [N, V] float32 is ever held.
//
// Dimension letters: I items, B = I sequences, T padded length, D hidden, V vocabulary, N scored tokens.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "model/decoder.h"
#include "model/linear.h"
#include "model/shared_prompt.h"

namespace abmll::model {

struct ScoringItem {
  std::vector<int64_t> prompt;        // at least one token
  std::vector<int64_t> continuation;  // may be empty (log-prob 0 over 0 tokens)
  int64_t group = 0;                  // adapter group of this item (see BatchedLora); unused without an adapter
};

struct ContinuationScores {
  at::Tensor log_prob;  // [I] float32 (float64 for a float64 model): sum over continuation tokens of
                        // log p(token | all tokens before it)
  at::Tensor tokens;    // [I] int64: continuation lengths, to length-normalise
};

struct ScoringOptions {
  int64_t max_chunk_bytes = int64_t{64} << 20;  // bound on one chunk's [rows, V] float32 logits (>= one row)
  ForwardOptions forward;
};

// Scores every item in one right-padded forward (item i is row i). With an adapter, sets its group_of_sequence to
// the items' groups first. Differentiable with respect to whatever the adapter differentiates through. Throws
// abmll::InputError for an item with an empty prompt or a token outside the vocabulary.
ContinuationScores score_continuations(const Decoder& decoder, const std::vector<ScoringItem>& items,
                                       LinearAdapter* adapter = nullptr, const ScoringOptions& options = {});

// A batch laid out once, on the decoder's device, for scoring many times (the inner steps score the same support
// set under K successive adapters): what score_continuations and score_shared_prompts build on every call. Its
// E scored entries are the items' continuations (one per item for prepare_items, several per row with shared
// prompts); B rows.
struct PreparedItems {
  at::Tensor input_ids;    // [B, T] int64, right-padded
  TokenLayout layout;      // with its RoPE tables (Decoder::with_rope)
  at::Tensor rows;         // [N] flat index into [B * T] of the position predicting each continuation token
  at::Tensor targets;      // [N] the continuation tokens
  at::Tensor item_of_row;  // [N] the entry each token belongs to
  at::Tensor groups;       // [B] int64 on the CPU: each row's adapter group
  at::Tensor tokens;       // [E] int64 on the CPU: each entry's continuation length
};

// Throws abmll::InputError for an item with an empty prompt.
PreparedItems prepare_items(const Decoder& decoder, const std::vector<ScoringItem>& items);

// score_continuations on a prepared batch.
ContinuationScores score_prepared(const Decoder& decoder, const PreparedItems& batch, LinearAdapter* adapter = nullptr,
                                  const ScoringOptions& options = {});

// Scores every continuation of every item with the item's prompt computed once (shared_prompt.h), one packed row
// per item in one forward: log_prob and tokens are [pairs], item-major (item i's continuation k is entry
// offsets[i] + k, offsets as pack_shared_prompts numbers them). Equal to score_continuations on each
// (prompt, continuation) pair, in less compute. Differentiable like score_continuations.
ContinuationScores score_shared_prompts(const Decoder& decoder, const std::vector<SharedPromptItem>& items,
                                        LinearAdapter* adapter = nullptr, const ScoringOptions& options = {});

// score_shared_prompts with several items per row after their common prefix (pack_prompt_rows): entries row-major,
// then item-major, then continuation. Equal to scoring each (prefix ++ prompt, continuation) on its own.
ContinuationScores score_prompt_rows(const Decoder& decoder, const std::vector<PromptRow>& rows,
                                     LinearAdapter* adapter = nullptr, const ScoringOptions& options = {});

// The building block: hidden [N, D] (final hidden states at the predicting positions), targets [N] int64
// -> log_softmax(hidden lm_head^T)[n, targets[n]] as [N] float32 (the logits soft-capped as Decoder::logits caps
// them), computing the logits in decoder.dtype() and the log-softmax in float32 as transformers does (float64
// throughout for a float64 model), `max_chunk_bytes` of float32 logits at a time, recomputed in backward. The
// gradient flows to `hidden` (never to lm_head, which is frozen).
at::Tensor token_log_probs(const Decoder& decoder, const at::Tensor& hidden, const at::Tensor& targets,
                           int64_t max_chunk_bytes = int64_t{64} << 20);

}  // namespace abmll::model
