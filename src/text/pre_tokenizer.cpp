// Pre-tokenizer steps. See pre_tokenizer.h. The span bookkeeping follows the documented semantics of the tokenizers
// library's split behaviors so that pieces (and so ids) agree with it exactly.
#include "text/pre_tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

#include "text/byte_level.h"
#include "util/error.h"

namespace abmll::text {

namespace {

// GPT-2's pattern, applied by a ByteLevel step with use_regex=true.
const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct Span {
  std::size_t begin, end;
  bool is_match;
};

// The text cut into consecutive spans, each marked as a pattern match or not.
std::vector<Span> spans_of(std::string_view text, const std::vector<std::pair<std::size_t, std::size_t>>& matches) {
  std::vector<Span> spans;
  spans.reserve(2 * matches.size() + 1);
  if (text.empty()) {
    spans.push_back({0, 0, false});
    return spans;
  }
  std::size_t prev = 0;
  for (auto [begin, end] : matches) {
    if (prev != begin) spans.push_back({prev, begin, false});
    spans.push_back({begin, end, true});
    prev = end;
  }
  if (prev != text.size()) spans.push_back({prev, text.size(), false});
  return spans;
}

std::vector<std::pair<std::size_t, std::size_t>> literal_matches(std::string_view text, const std::string& literal) {
  std::vector<std::pair<std::size_t, std::size_t>> matches;
  for (std::size_t pos = text.find(literal); pos != std::string_view::npos; pos = text.find(literal, pos + literal.size()))
    matches.emplace_back(pos, pos + literal.size());
  return matches;
}

PreTokenizer::Behavior parse_behavior(const std::string& name) {
  if (name == "Removed") return PreTokenizer::Behavior::removed;
  if (name == "Isolated") return PreTokenizer::Behavior::isolated;
  if (name == "MergedWithPrevious") return PreTokenizer::Behavior::merged_with_previous;
  if (name == "MergedWithNext") return PreTokenizer::Behavior::merged_with_next;
  if (name == "Contiguous") return PreTokenizer::Behavior::contiguous;
  throw InputError("pre_tokenizer Split behavior '" + name +
                   "' is not supported (supported: Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
}

}  // namespace

void PreTokenizer::add_steps(const nlohmann::json& j, std::vector<Step>& steps) {
  const std::string type = j.at("type").get<std::string>();
  Step step;
  if (type == "Sequence") {
    for (const auto& item : j.at("pretokenizers")) add_steps(item, steps);
    return;
  } else if (type == "Split") {
    step.kind = Step::Kind::split;
    const auto& pattern = j.at("pattern");
    if (pattern.contains("Regex")) {
      step.regex = std::make_shared<const Regex>(pattern.at("Regex").get<std::string>());
    } else if (pattern.contains("String")) {
      step.literal = pattern.at("String").get<std::string>();
      if (step.literal.empty()) throw InputError("pre_tokenizer Split has an empty String pattern");
    } else {
      throw InputError("pre_tokenizer Split pattern must have a 'Regex' or a 'String' key");
    }
    step.behavior = parse_behavior(j.at("behavior").get<std::string>());
    step.invert = j.value("invert", false);
  } else if (type == "ByteLevel") {
    step.kind = Step::Kind::byte_level;
    step.add_prefix_space = j.value("add_prefix_space", true);
    step.use_regex = j.value("use_regex", true);
    if (step.use_regex) step.regex = std::make_shared<const Regex>(kGpt2Pattern);
  } else {
    throw InputError("pre_tokenizer type '" + type + "' is not supported (supported: Sequence, Split, ByteLevel)");
  }
  steps.push_back(std::move(step));
}

PreTokenizer PreTokenizer::from_json(const nlohmann::json& j) {
  PreTokenizer p;
  if (!j.is_null()) add_steps(j, p.steps_);
  return p;
}

void PreTokenizer::apply_split(const Step& step, std::string_view piece, std::vector<std::string>& out) {
  std::vector<Span> spans = spans_of(piece, step.regex ? step.regex->find_all(piece) : literal_matches(piece, step.literal));
  if (step.invert)
    for (auto& s : spans) s.is_match = !s.is_match;

  auto emit = [&](std::size_t begin, std::size_t end) {
    if (end > begin) out.emplace_back(piece.substr(begin, end - begin));
  };
  if (step.behavior == Behavior::isolated || step.behavior == Behavior::removed) {
    for (const auto& s : spans)
      if (step.behavior == Behavior::isolated || !s.is_match) emit(s.begin, s.end);
    return;
  }
  // The merging behaviors: a match joins its neighbour (or, for Contiguous, equal neighbours join).
  std::vector<Span> result;
  bool previous_match = false;
  switch (step.behavior) {
    case Behavior::isolated:
    case Behavior::removed:
      break;
    case Behavior::merged_with_previous:
      for (const auto& s : spans) {
        if (s.is_match && !previous_match && !result.empty()) result.back().end = s.end;
        else result.push_back({s.begin, s.end, false});
        previous_match = s.is_match;
      }
      break;
    case Behavior::merged_with_next:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !result.empty()) result.back().begin = it->begin;
        else result.push_back({it->begin, it->end, false});
        previous_match = it->is_match;
      }
      std::reverse(result.begin(), result.end());
      break;
    case Behavior::contiguous:
      for (const auto& s : spans) {
        if (s.is_match == previous_match && !result.empty()) result.back().end = s.end;
        else result.push_back({s.begin, s.end, false});
        previous_match = s.is_match;
      }
      break;
  }
  for (const auto& s : result) emit(s.begin, s.end);
}

void PreTokenizer::apply_byte_level(const Step& step, std::string_view piece, std::vector<std::string>& out) {
  std::string prefixed;
  if (step.add_prefix_space && (piece.empty() || piece.front() != ' ')) {
    prefixed = " ";
    prefixed += piece;
    piece = prefixed;
  }
  if (!step.use_regex) {
    if (!piece.empty()) out.push_back(byte_level::encode(piece));
    return;
  }
  std::vector<std::string> words;
  Step isolate;
  isolate.regex = step.regex;
  apply_split(isolate, piece, words);
  for (const auto& w : words) out.push_back(byte_level::encode(w));
}

void PreTokenizer::split(std::string_view text, std::vector<std::string>& pieces) const {
  std::vector<std::string> current{std::string(text)}, next;
  for (const auto& step : steps_) {
    next.clear();
    for (const auto& piece : current) {
      if (step.kind == Step::Kind::split) apply_split(step, piece, next);
      else apply_byte_level(step, piece, next);
    }
    current.swap(next);
  }
  for (auto& piece : current)
    if (!piece.empty()) pieces.push_back(std::move(piece));
}

}  // namespace abmll::text
