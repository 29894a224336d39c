// Several continuations of one prompt packed into one sequence, so that the prompt is computed once for all of them
// (answer options share their query's prompt; with ICL prompts of k demonstrations the prompt is most of the work).
//
// The row of an item with prompt p (P tokens) and continuations c_1 .. c_K is
//   p, c_1[0 .. L_1-2], c_2[0 .. L_2-2], ..., c_K[0 .. L_K-2]
// (a continuation's last token predicts nothing that is scored, so it is not an input). Segment k's tokens take
// positions P, P+1, ... (each continuation continues the prompt) and attend to the whole prompt and to the earlier
// tokens of their own segment only: every token sees exactly what it would see in the sequence p ++ c_k, so its
// hidden state, and every continuation token's log-probability, equals scoring p ++ c_k on its own. c_k[0] is
// predicted at the prompt's last token, c_k[j] (j >= 1) at segment k's token j-1. Single-token continuations (class
// labels) cost nothing beyond the prompt.
//
// One level up, items whose prompts begin with the same tokens (ICL demonstrations, the same for every query of a
// task) can share a row after that common prefix x (X tokens): x, then each item's own prompt tokens r_i followed
// by its continuation segments. r_i takes positions X, X+1, ... and attends to x and to its own earlier tokens; its
// segments attend to x, r_i and themselves. Again every token sees what it would see in x ++ r_i ++ c_k alone, and
// the prefix is computed once per row instead of once per item.
//
// Dimension letters: I items, B rows, T longest row, N scored tokens over all items and continuations.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "model/padding.h"

namespace abmll::model {

struct SharedPromptItem {
  std::vector<int64_t> prompt;                      // at least one token (in a PromptRow: the tokens after its prefix)
  std::vector<std::vector<int64_t>> continuations;  // each may be empty (scores 0 over 0 tokens)
  int64_t group = 0;                                // adapter group of the row (see BatchedLora); unused in a PromptRow
};

// Items that share a row after a common prefix (empty: a row of its own per item, as pack_shared_prompts packs).
struct PromptRow {
  std::vector<int64_t> prefix;
  std::vector<SharedPromptItem> items;  // at least one
  int64_t group = 0;                    // adapter group of the row
};

// A right-padded batch of packed rows and where each scored token is predicted.
struct SharedPromptBatch {
  at::Tensor input_ids;          // [B, T] int64 (padding: token 0)
  TokenLayout layout;            // positions [B, T], pattern [B, 1, T, T]; a padding token attends to itself only
  std::vector<int64_t> rows;     // [N] flat index b * T + t of the token that predicts each scored token
  std::vector<int64_t> targets;  // [N] the scored token ids
  std::vector<int64_t> owner;    // [N] index of the (item, continuation) pair, item-major: pair = offset[i] + k
  std::vector<int64_t> offsets;  // [I + 1] first pair index of each item (offsets[I] = number of pairs)
  std::vector<int64_t> lengths;  // [pairs] tokens of each continuation
  std::vector<int64_t> groups;   // [B] each row's adapter group
};

// Length of an item's packed row: P + sum_k max(L_k - 1, 0).
int64_t shared_prompt_length(const SharedPromptItem& item);
// Length of a packed row: X + sum_i shared_prompt_length(item i).
int64_t prompt_row_length(const PromptRow& row);

// Packs items (item i is row i). Throws abmll::InputError for an item with an empty prompt.
SharedPromptBatch pack_shared_prompts(const std::vector<SharedPromptItem>& items);

// Packs rows (row b holds its items in order; items are numbered across rows, row-major, in `offsets`). Throws
// abmll::InputError for a row without items or an item with an empty prompt.
SharedPromptBatch pack_prompt_rows(const std::vector<PromptRow>& rows);

}  // namespace abmll::model
