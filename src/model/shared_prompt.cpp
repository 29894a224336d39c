// Packing continuations that share a prompt into one row (see shared_prompt.h).
#include "model/shared_prompt.h"

#include <ATen/ops/zeros.h>
#include <fmt/format.h>

#include <algorithm>

#include "util/error.h"

namespace abmll::model {

int64_t shared_prompt_length(const SharedPromptItem& item) {
  auto length = static_cast<int64_t>(item.prompt.size());
  for (const auto& c : item.continuations) length += std::max<int64_t>(static_cast<int64_t>(c.size()) - 1, 0);
  return length;
}

int64_t prompt_row_length(const PromptRow& row) {
  auto length = static_cast<int64_t>(row.prefix.size());
  for (const auto& item : row.items) length += shared_prompt_length(item);
  return length;
}

SharedPromptBatch pack_shared_prompts(const std::vector<SharedPromptItem>& items) {
  std::vector<PromptRow> rows;
  rows.reserve(items.size());
  for (const auto& item : items) rows.push_back({{}, {item}, item.group});
  return pack_prompt_rows(rows);
}

SharedPromptBatch pack_prompt_rows(const std::vector<PromptRow>& rows) {
  const auto count = static_cast<int64_t>(rows.size());
  int64_t t = 0, item_index = 0;
  for (const PromptRow& row : rows) {
    if (row.items.empty()) throw InputError("scoring: a packed row without items");
    for (const auto& item : row.items) {
      if (item.prompt.empty()) throw InputError(fmt::format("scoring: item {} has an empty prompt", item_index));
      ++item_index;
    }
    t = std::max(t, prompt_row_length(row));
  }
  SharedPromptBatch batch;
  batch.input_ids = at::zeros({count, t}, at::kLong);
  batch.layout.positions = at::zeros({count, t}, at::kLong);
  batch.layout.pattern = at::zeros({count, 1, t, t}, at::kBool);
  auto* ids = batch.input_ids.data_ptr<int64_t>();
  auto* positions = batch.layout.positions.data_ptr<int64_t>();
  bool* pattern = batch.layout.pattern.data_ptr<bool>();
  batch.offsets.push_back(0);
  for (int64_t b = 0; b < count; ++b) {
    const PromptRow& row = rows[static_cast<std::size_t>(b)];
    int64_t* row_ids = ids + b * t;
    int64_t* row_positions = positions + b * t;
    bool* row_pattern = pattern + b * t * t;  // [T(query), T(key)]
    const auto x = static_cast<int64_t>(row.prefix.size());
    std::copy(row.prefix.begin(), row.prefix.end(), row_ids);
    for (int64_t q = 0; q < x; ++q) {  // the common prefix: causal
      row_positions[q] = q;
      std::fill(row_pattern + q * t, row_pattern + q * t + q + 1, true);
    }
    int64_t at_token = x;  // where the next item or segment starts
    for (const SharedPromptItem& item : row.items) {
      // The item's prompt: after the prefix, causal within itself.
      const int64_t begin = at_token, p = static_cast<int64_t>(item.prompt.size());
      std::copy(item.prompt.begin(), item.prompt.end(), row_ids + begin);
      for (int64_t j = 0; j < p; ++j) {
        const int64_t q = begin + j;
        row_positions[q] = x + j;
        std::fill(row_pattern + q * t, row_pattern + q * t + x, true);
        std::fill(row_pattern + q * t + begin, row_pattern + q * t + q + 1, true);
      }
      at_token += p;
      for (const auto& c : item.continuations) {
        const auto length = static_cast<int64_t>(c.size());
        const int64_t pair = static_cast<int64_t>(batch.lengths.size());
        for (int64_t j = 0; j < length; ++j) {
          // c[0] is predicted at the prompt's last token, c[j] at this segment's token j - 1 (holding c[j - 1]).
          batch.rows.push_back(b * t + (j == 0 ? begin + p - 1 : at_token + j - 1));
          batch.targets.push_back(c[static_cast<std::size_t>(j)]);
          batch.owner.push_back(pair);
        }
        for (int64_t j = 0; j + 1 < length; ++j) {  // the segment's inputs: c[0 .. L-2]
          const int64_t q = at_token + j;
          row_ids[q] = c[static_cast<std::size_t>(j)];
          row_positions[q] = x + p + j;
          std::fill(row_pattern + q * t, row_pattern + q * t + x, true);                 // the common prefix
          std::fill(row_pattern + q * t + begin, row_pattern + q * t + begin + p, true);  // the item's prompt
          std::fill(row_pattern + q * t + at_token, row_pattern + q * t + q + 1, true);  // its own segment so far
        }
        at_token += std::max<int64_t>(length - 1, 0);
        batch.lengths.push_back(length);
      }
      batch.offsets.push_back(static_cast<int64_t>(batch.lengths.size()));
    }
    for (int64_t q = at_token; q < t; ++q) row_pattern[q * t + q] = true;  // padding sees itself (no empty row)
    batch.groups.push_back(row.group);
  }
  // Rows of one sequence each (no common prefix, one item with at most one continuation) attend causally: the
  // decoder may then skip the pattern, and recurrent layers can run them.
  batch.layout.causal = std::all_of(rows.begin(), rows.end(), [](const PromptRow& row) {
    return row.prefix.empty() && row.items.size() == 1 && row.items.front().continuations.size() <= 1;
  });
  return batch;
}

}  // namespace abmll::model
