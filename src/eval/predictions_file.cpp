#include "eval/predictions_file.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <utility>
#include <fstream>
#include <nlohmann/json.hpp>

#include "eval/temperature.h"
#include "util/error.h"

namespace abmll::eval {
namespace {

std::vector<double> read_numbers(const nlohmann::json& value, const char* field) {
  if (!value.is_array() || value.empty())
    throw InputError(fmt::format("\"{}\" must be a non-empty list of numbers", field));
  std::vector<double> out;
  out.reserve(value.size());
  for (std::size_t k = 0; k < value.size(); ++k) {
    const auto& v = value[k];
    if (!v.is_number()) throw InputError(fmt::format("\"{}\"[{}] is not a number", field, k));
    const double x = v.get<double>();
    if (!std::isfinite(x)) throw InputError(fmt::format("\"{}\"[{}] is not finite", field, k));
    out.push_back(x);
  }
  return out;
}

PredictionRecord parse_line(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // syntax errors, and numbers beyond double's range
    throw InputError(fmt::format("malformed JSON ({})", e.what()));
  }
  if (!j.is_object()) throw InputError("expected a JSON object with \"probs\" or \"logits\" and \"label\"");
  const bool has_probs = j.contains("probs"), has_logits = j.contains("logits");
  if (has_probs == has_logits) throw InputError("give exactly one of \"probs\" and \"logits\"");

  PredictionRecord r;
  if (has_logits) {
    r.logits = read_numbers(j["logits"], "logits");
    r.probs = softmax(*r.logits);
  } else {
    r.probs = read_numbers(j["probs"], "probs");
    double sum = 0;
    for (std::size_t k = 0; k < r.probs.size(); ++k) {
      if (r.probs[k] < 0) throw InputError(fmt::format("\"probs\"[{}] = {} is negative", k, r.probs[k]));
      sum += r.probs[k];
    }
    if (std::abs(sum - 1.0) > 1e-4) throw InputError(fmt::format("\"probs\" sum to {}, not 1 (within 1e-4)", sum));
  }
  if (!j.contains("label")) throw InputError("missing \"label\"");
  const auto& label = j["label"];
  if (!label.is_number_integer()) throw InputError("\"label\" must be an integer (the index of the right option)");
  r.label = label.get<std::int64_t>();
  if (r.label < 0 || r.label >= static_cast<std::int64_t>(r.probs.size()))
    throw InputError(fmt::format("\"label\" {} is out of range for {} options", r.label, r.probs.size()));
  for (auto [key, field] : {std::pair{"task", &r.task}, std::pair{"source", &r.source}}) {
    if (!j.contains(key)) continue;
    if (!j[key].is_string()) throw InputError(fmt::format("\"{}\" must be a string", key));
    *field = j[key].get<std::string>();
  }
  if (j.contains("id")) {
    const auto& id = j["id"];
    if (!id.is_number_integer() || (id.is_number_unsigned() && id.get<std::uint64_t>() > INT64_MAX))
      throw InputError("\"id\" must be an integer (within 64 bits)");
    r.id = j["id"].get<std::int64_t>();
  }
  return r;
}

}  // namespace

std::vector<PredictionRecord> read_predictions(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("cannot open predictions file '{}'", path.string()));
  std::vector<PredictionRecord> records;
  std::string text;
  for (std::int64_t line = 1; std::getline(in, text); ++line) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      PredictionRecord r = parse_line(text);
      r.line = line;
      records.push_back(std::move(r));
    } catch (const InputError& e) {
      throw InputError(fmt::format("{}:{}: {}", path.string(), line, e.what()));
    }
  }
  if (records.empty()) throw InputError(fmt::format("{}: no predictions in the file", path.string()));
  return records;
}

std::vector<CategoricalPrediction> as_categorical(const std::vector<PredictionRecord>& records) {
  std::vector<CategoricalPrediction> out;
  out.reserve(records.size());
  for (const auto& r : records) out.push_back({r.probs, r.label});
  return out;
}

}  // namespace abmll::eval
