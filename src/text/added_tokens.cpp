// Added-token matching. See added_tokens.h.
#include "text/added_tokens.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>

#include "text/normalizer.h"
#include "text/utf8.h"
#include "util/error.h"

namespace abmll::text {

void AddedTokens::Matcher::add(std::string pattern, std::size_t token) {
  if (pattern.empty()) return;
  by_first_byte[static_cast<unsigned char>(pattern[0])].push_back({std::move(pattern), token});
  empty = false;
}

void AddedTokens::Matcher::finish() {
  for (auto& bucket : by_first_byte)
    std::stable_sort(bucket.begin(), bucket.end(),
                     [](const Entry& a, const Entry& b) { return a.pattern.size() > b.pattern.size(); });
}

AddedTokens AddedTokens::from_json(const nlohmann::json& j, const Normalizer& normalizer,
                                   const std::function<std::optional<int32_t>(std::string_view)>& model_id) {
  AddedTokens a;
  if (j.is_null()) return a;
  if (!j.is_array()) throw InputError("added_tokens must be an array");
  for (const auto& item : j) {
    AddedToken t;
    const auto& id = item.at("id");
    // get<int32_t> of a float or of a larger integer would convert it (undefined beyond int's range).
    if (!id.is_number_integer() || (id.is_number_unsigned() ? id.get<uint64_t>() > INT32_MAX
                                                            : id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX))
      throw InputError(fmt::format("added token id {} is not an integer from 0 to {}", id.dump(), INT32_MAX));
    t.id = id.get<int32_t>();
    t.content = item.at("content").get<std::string>();
    if (t.content.empty()) throw InputError(fmt::format("added token {} has empty content", t.id));
    if (utf8::find_invalid(t.content) != std::string::npos)
      throw InputError(fmt::format("added token {} is not valid UTF-8", t.id));
    if (auto id = model_id(t.content)) t.id = *id;
    t.special = item.value("special", false);
    t.single_word = item.value("single_word", false);
    t.lstrip = item.value("lstrip", false);
    t.rstrip = item.value("rstrip", false);
    t.normalized = item.value("normalized", !t.special);
    std::size_t index = a.tokens_.size();
    a.by_id_[t.id] = index;
    a.by_content_[t.content] = index;
    if (t.normalized) a.normalized_.add(normalizer.apply(t.content), index);
    else a.raw_.add(t.content, index);
    a.tokens_.push_back(std::move(t));
  }
  a.raw_.finish();
  a.normalized_.finish();
  return a;
}

const AddedToken* AddedTokens::find(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedTokens::find(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

void AddedTokens::split_with(const Matcher& matcher, std::string_view text, std::vector<Segment>& out) const {
  if (matcher.empty) {
    if (!text.empty()) out.push_back({std::string(text), std::nullopt});
    return;
  }
  std::size_t emitted = 0;  // end of the text already handed out
  std::size_t pos = 0;
  while (pos < text.size()) {
    // Leftmost-longest: the first position where any token starts, the longest token there.
    const Matcher::Entry* hit = nullptr;
    for (const auto& e : matcher.by_first_byte[static_cast<unsigned char>(text[pos])]) {
      if (text.compare(pos, e.pattern.size(), e.pattern) == 0) {
        hit = &e;
        break;
      }
    }
    if (!hit) {
      ++pos;
      continue;
    }
    std::size_t begin = pos, end = pos + hit->pattern.size();
    pos = end;  // a match dropped below still consumes its span, as in the reference
    const AddedToken& token = tokens_[hit->token];
    if (token.single_word) {
      bool word_before = begin > 0 && utf8::is_word_char(utf8::previous(text, begin));
      std::size_t after = end;
      bool word_after = end < text.size() && utf8::is_word_char(utf8::next(text, after));
      if (word_before || word_after) continue;
    }
    if (token.lstrip) {
      while (begin > emitted) {
        std::size_t char_begin = begin - 1;
        while (char_begin > 0 && (static_cast<unsigned char>(text[char_begin]) & 0xC0) == 0x80) --char_begin;
        std::size_t p = char_begin;
        if (!utf8::is_whitespace(utf8::next(text, p))) break;
        begin = char_begin;
      }
    }
    if (token.rstrip) {
      while (end < text.size()) {
        std::size_t p = end;
        if (!utf8::is_whitespace(utf8::next(text, p))) break;
        end = p;
      }
      pos = end;
    }
    if (begin > emitted) out.push_back({std::string(text.substr(emitted, begin - emitted)), std::nullopt});
    out.push_back({std::string(text.substr(begin, end - begin)), token.id});
    emitted = end;
  }
  if (emitted < text.size()) out.push_back({std::string(text.substr(emitted)), std::nullopt});
}

std::vector<Segment> AddedTokens::split(std::string_view text, const Normalizer& normalizer) const {
  std::vector<Segment> raw_split;
  split_with(raw_, text, raw_split);
  std::vector<Segment> out;
  for (auto& segment : raw_split) {
    if (segment.id) {
      out.push_back(std::move(segment));
      continue;
    }
    std::string normalized = normalizer.empty() ? std::move(segment.text) : normalizer.apply(segment.text);
    split_with(normalized_, normalized, out);
  }
  return out;
}

}  // namespace abmll::text
