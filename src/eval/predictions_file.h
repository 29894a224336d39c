// Reading predictions files (JSON Lines): one query per line, {"probs": [...], "label": k} or
// {"logits": [...], "label": k}, with the query's identity as `abmll evaluate` writes it ("task", "id", "source")
// when present; other fields are ignored. Untrusted input: malformed JSON, non-finite numbers, probabilities that
// are negative or do not sum to 1 (within 1e-4), labels out of range and identity fields of the wrong type are
// InputErrors naming the file and line. Blank lines are skipped.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "eval/calibration.h"

namespace abmll::eval {

struct PredictionRecord {
  std::int64_t line = 0;                     // 1-based line in the file
  std::vector<double> probs;                 // given, or softmax(logits)
  std::optional<std::vector<double>> logits;  // when the line gave logits
  std::int64_t label = 0;
  // The query's identity, where the line gives it: its task, its index in the task's episode, and the example's
  // file:line (empty / nullopt otherwise).
  std::string task, source;
  std::optional<std::int64_t> id;
};

std::vector<PredictionRecord> read_predictions(const std::filesystem::path& path);

// The records as CategoricalPredictions (probabilities and labels).
std::vector<CategoricalPrediction> as_categorical(const std::vector<PredictionRecord>& records);

}  // namespace abmll::eval
