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

SharedPromptBatch pack_shared_prompts(const std::vector<SharedPromptItem>& items) {
  const auto count = static_cast<int64_t>(items.size());
  int64_t t = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].prompt.empty()) throw InputError(fmt::format("scoring: item {} has an empty prompt", i));
    t = std::max(t, shared_prompt_length(items[i]));
  }
  SharedPromptBatch batch;
  batch.input_ids = at::zeros({count, t}, at::kLong);
  batch.layout.positions = at::zeros({count, t}, at::kLong);
  batch.layout.pattern = at::zeros({count, 1, t, t}, at::kBool);
  auto* ids = batch.input_ids.data_ptr<int64_t>();
  auto* positions = batch.layout.positions.data_ptr<int64_t>();
  bool* pattern = batch.layout.pattern.data_ptr<bool>();
  batch.offsets.push_back(0);
  for (int64_t i = 0; i < count; ++i) {
    const SharedPromptItem& item = items[static_cast<std::size_t>(i)];
    int64_t* row_ids = ids + i * t;
    int64_t* row_positions = positions + i * t;
    bool* row_pattern = pattern + i * t * t;  // [T(query), T(key)]
    const auto p = static_cast<int64_t>(item.prompt.size());
    std::copy(item.prompt.begin(), item.prompt.end(), row_ids);
    for (int64_t q = 0; q < p; ++q) {  // the prompt: causal
      row_positions[q] = q;
      std::fill(row_pattern + q * t, row_pattern + q * t + q + 1, true);
    }
    int64_t at_token = p;  // where the next segment starts
    for (const auto& c : item.continuations) {
      const auto length = static_cast<int64_t>(c.size());
      const int64_t pair = static_cast<int64_t>(batch.lengths.size());
      for (int64_t j = 0; j < length; ++j) {
        // c[0] is predicted at the prompt's last token, c[j] at this segment's token j - 1 (which holds c[j - 1]).
        batch.rows.push_back(i * t + (j == 0 ? p - 1 : at_token + j - 1));
        batch.targets.push_back(c[static_cast<std::size_t>(j)]);
        batch.owner.push_back(pair);
      }
      for (int64_t j = 0; j + 1 < length; ++j) {  // the segment's inputs: c[0 .. L-2]
        const int64_t q = at_token + j;
        row_ids[q] = c[static_cast<std::size_t>(j)];
        row_positions[q] = p + j;
        std::fill(row_pattern + q * t, row_pattern + q * t + p, true);           // the whole prompt
        std::fill(row_pattern + q * t + at_token, row_pattern + q * t + q + 1, true);  // its own segment so far
      }
      at_token += std::max<int64_t>(length - 1, 0);
      batch.lengths.push_back(length);
    }
    for (int64_t q = at_token; q < t; ++q) row_pattern[q * t + q] = true;  // padding sees itself (no empty row)
    batch.offsets.push_back(static_cast<int64_t>(batch.lengths.size()));
    batch.groups.push_back(item.group);
  }
  return batch;
}

}  // namespace abmll::model
