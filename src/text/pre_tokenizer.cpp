// Pre-tokenizer steps. See pre_tokenizer.h. The span bookkeeping follows the documented semantics of the tokenizers
// library's split behaviors so that pieces (and so ids) agree with it exactly.
#include "text/pre_tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

#include "text/byte_level.h"
#include "text/utf8.h"
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

PreTokenizer::Behavior parse_behavior(const std::string& name) {
  if (name == "Removed") return PreTokenizer::Behavior::removed;
  if (name == "Isolated") return PreTokenizer::Behavior::isolated;
  if (name == "MergedWithPrevious") return PreTokenizer::Behavior::merged_with_previous;
  if (name == "MergedWithNext") return PreTokenizer::Behavior::merged_with_next;
  if (name == "Contiguous") return PreTokenizer::Behavior::contiguous;
  throw InputError("pre_tokenizer Split behavior '" + name +
                   "' is not supported (supported: Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
}

// Metaspace's replacement: exactly one character.
std::string parse_replacement(const nlohmann::json& j) {
  std::string r = j.at("replacement").get<std::string>();
  if (!utf8::is_one_character(r))
    throw InputError("pre_tokenizer Metaspace replacement must be one character, got '" + r + "'");
  return r;
}

}  // namespace

// add_prefix_space false demands "never": an absent prepend_scheme means "always", so false alone is refused, as by
// the reference.
PreTokenizer::Prepend PreTokenizer::metaspace_prepend(const nlohmann::json& j, std::string_view component) {
  const std::string scheme = j.value("prepend_scheme", std::string("always"));
  Prepend prepend;
  if (scheme == "always") prepend = Prepend::always;
  else if (scheme == "first") prepend = Prepend::first;
  else if (scheme == "never") prepend = Prepend::never;
  else throw InputError(std::string(component) + " prepend_scheme '" + scheme + "' is not one of always, first, never");
  if (j.contains("add_prefix_space") && !j.at("add_prefix_space").is_null() && !j.at("add_prefix_space").get<bool>() &&
      prepend != Prepend::never)
    throw InputError(std::string(component) + " add_prefix_space is false but prepend_scheme is '" + scheme + "'");
  return prepend;
}

void PreTokenizer::add_steps(const nlohmann::json& j, std::vector<Step>& steps) {
  const std::string type = j.at("type").get<std::string>();
  Step step;
  if (type == "Sequence") {
    for (const auto& item : j.at("pretokenizers")) add_steps(item, steps);
    return;
  } else if (type == "Split") {
    step.kind = Step::Kind::split;
    step.pattern = Pattern::from_json(j.at("pattern"), "pre_tokenizer Split");
    step.behavior = parse_behavior(j.at("behavior").get<std::string>());
    step.invert = j.value("invert", false);
  } else if (type == "Digits") {
    // Every numeric character (\p{N}, as Rust's char::is_numeric) a piece of its own, or (individual_digits false)
    // each run of them one piece: a split on single characters, isolated or contiguous.
    step.kind = Step::Kind::split;
    step.pattern = Pattern::from_json({{"Regex", R"(\p{N})"}}, "pre_tokenizer Digits");
    step.behavior = j.value("individual_digits", false) ? Behavior::isolated : Behavior::contiguous;
  } else if (type == "ByteLevel") {
    step.kind = Step::Kind::byte_level;
    step.add_prefix_space = j.value("add_prefix_space", true);
    step.use_regex = j.value("use_regex", true);
    if (step.use_regex) step.pattern = Pattern::from_json({{"Regex", kGpt2Pattern}}, "pre_tokenizer ByteLevel");
  } else if (type == "Metaspace") {
    step.kind = Step::Kind::metaspace;
    step.replacement = parse_replacement(j);
    step.prepend = metaspace_prepend(j, "pre_tokenizer Metaspace");
    step.split_on_replacement = j.value("split", true);
    step.pattern = Pattern::from_json({{"String", step.replacement}}, "pre_tokenizer Metaspace");
  } else {
    throw InputError("pre_tokenizer type '" + type +
                     "' is not supported (supported: Sequence, Split, Digits, ByteLevel, Metaspace)");
  }
  steps.push_back(std::move(step));
}

PreTokenizer PreTokenizer::from_json(const nlohmann::json& j) {
  PreTokenizer p;
  if (!j.is_null()) add_steps(j, p.steps_);
  return p;
}

void PreTokenizer::apply_split(const Step& step, const Piece& piece, std::vector<Piece>& out) {
  const std::string_view text = piece.text;
  std::vector<Span> spans = spans_of(text, step.pattern->find_all(text));
  if (step.invert)
    for (auto& s : spans) s.is_match = !s.is_match;

  // A sub-piece begins the input when its piece does and it starts at the piece's first byte.
  auto emit = [&](std::size_t begin, std::size_t end) {
    if (end > begin) out.push_back({std::string(text.substr(begin, end - begin)), piece.at_input_start && begin == 0});
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

void PreTokenizer::apply_byte_level(const Step& step, const Piece& piece, std::vector<Piece>& out) {
  // The piece is copied only when a space is put in front (Llama-3 and Qwen2 put none).
  Piece with_space;
  const bool prefix = step.add_prefix_space && (piece.text.empty() || piece.text.front() != ' ');
  if (prefix) with_space = {' ' + piece.text, piece.at_input_start};
  const Piece& text = prefix ? with_space : piece;
  if (!step.use_regex) {
    if (!text.text.empty()) out.push_back({byte_level::encode(text.text), text.at_input_start});
    return;
  }
  std::vector<Piece> words;
  Step isolate;
  isolate.pattern = step.pattern;
  apply_split(isolate, text, words);
  for (auto& w : words) out.push_back({byte_level::encode(w.text), w.at_input_start});
}

void PreTokenizer::apply_metaspace(const Step& step, const Piece& piece, std::vector<Piece>& out) {
  Piece replaced{{}, piece.at_input_start};
  replaced.text.reserve(piece.text.size() + step.replacement.size());
  for (char c : piece.text) {
    if (c == ' ') replaced.text += step.replacement;
    else replaced.text += c;
  }
  // As the reference: nothing is put in front of empty text, nor of text that already begins with the replacement.
  const bool prepend = !replaced.text.empty() && !replaced.text.starts_with(step.replacement) &&
                       (step.prepend == Prepend::always || (step.prepend == Prepend::first && piece.at_input_start));
  if (prepend) replaced.text.insert(0, step.replacement);
  if (!step.split_on_replacement) {
    if (!replaced.text.empty()) out.push_back(std::move(replaced));
    return;
  }
  Step split;
  split.pattern = step.pattern;
  split.behavior = Behavior::merged_with_next;
  apply_split(split, replaced, out);
}

void PreTokenizer::split(std::string_view text, bool at_input_start, std::vector<std::string>& pieces) const {
  std::vector<Piece> current{{std::string(text), at_input_start}}, next;
  for (const auto& step : steps_) {
    next.clear();
    for (const auto& piece : current) {
      switch (step.kind) {
        case Step::Kind::split: apply_split(step, piece, next); break;
        case Step::Kind::byte_level: apply_byte_level(step, piece, next); break;
        case Step::Kind::metaspace: apply_metaspace(step, piece, next); break;
      }
    }
    current.swap(next);
  }
  for (auto& piece : current)
    if (!piece.text.empty()) pieces.push_back(std::move(piece.text));
}

}  // namespace abmll::text
