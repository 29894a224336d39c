// Decoder steps. See decoder.h. Each follows the reference library's decode_chain for that type.
#include "text/decoder.h"

#include <nlohmann/json.hpp>

#include "text/byte_level.h"
#include "text/pre_tokenizer.h"
#include "text/utf8.h"
#include "util/error.h"

namespace abmll::text {

namespace {

// The code points of `s` (valid UTF-8) as [begin, end) byte ranges.
std::vector<std::pair<std::size_t, std::size_t>> characters(const std::string& s) {
  std::vector<std::pair<std::size_t, std::size_t>> chars;
  for (std::size_t pos = 0; pos < s.size();) {
    std::size_t begin = pos;
    utf8::next(s, pos);
    chars.emplace_back(begin, pos);
  }
  return chars;
}

std::string one_character(const nlohmann::json& j, const char* key, std::string_view component) {
  std::string c = j.at(key).get<std::string>();
  if (!utf8::is_one_character(c))
    throw InputError(std::string(component) + " " + key + " must be one character, got '" + c + "'");
  return c;
}

// The byte a "<0xXX>" token stands for, if it is one.
std::optional<unsigned char> fallback_byte(const std::string& token) {
  if (token.size() != 6 || !token.starts_with("<0x") || token.back() != '>') return std::nullopt;
  unsigned value = 0;
  // Two hex digits, or "+" and one, as the reference's u8::from_str_radix also reads.
  std::string digits = token.substr(3, 2);
  if (digits.front() == '+') digits.erase(0, 1);
  for (char c : digits) {
    value <<= 4;
    if (c >= '0' && c <= '9') value |= static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') value |= static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') value |= static_cast<unsigned>(c - 'A' + 10);
    else return std::nullopt;
  }
  return static_cast<unsigned char>(value);
}

}  // namespace

void Decoder::add_steps(const nlohmann::json& j, std::vector<Step>& steps) {
  const std::string type = j.at("type").get<std::string>();
  Step step;
  if (type == "Sequence") {
    for (const auto& item : j.at("decoders")) add_steps(item, steps);
    return;
  } else if (type == "ByteLevel") {
    step.kind = Step::Kind::byte_level;
  } else if (type == "Replace") {
    step.kind = Step::Kind::replace;
    step.pattern = Pattern::from_json(j.at("pattern"), "decoder Replace");
    step.text = j.at("content").get<std::string>();
  } else if (type == "ByteFallback") {
    step.kind = Step::Kind::byte_fallback;
  } else if (type == "Fuse") {
    step.kind = Step::Kind::fuse;
  } else if (type == "Strip") {
    step.kind = Step::Kind::strip;
    step.text = one_character(j, "content", "decoder Strip");
    step.start = j.at("start").get<std::size_t>();
    step.stop = j.at("stop").get<std::size_t>();
  } else if (type == "Metaspace") {
    step.kind = Step::Kind::metaspace;
    step.text = one_character(j, "replacement", "decoder Metaspace");
    step.drop_first = PreTokenizer::metaspace_prepend(j, "decoder Metaspace") != PreTokenizer::Prepend::never;
  } else {
    throw InputError("decoder type '" + type +
                     "' is not supported (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, "
                     "Sequence)");
  }
  steps.push_back(std::move(step));
}

Decoder Decoder::from_json(const nlohmann::json& j) {
  Decoder d;
  if (j.is_null()) return d;
  add_steps(j, d.steps_);
  d.none_ = false;
  return d;
}

void Decoder::apply(const Step& step, std::vector<std::string>& tokens) {
  switch (step.kind) {
    case Step::Kind::byte_level: {
      // A token with a character outside the byte alphabet (an added token like "<my token>") is taken as its UTF-8.
      std::string bytes, token_bytes;
      for (const std::string& token : tokens) {
        if (byte_level::decode(token, token_bytes)) bytes += token_bytes;
        else bytes += token;
      }
      tokens.assign(1, utf8::to_valid_lossy(bytes));
      return;
    }
    case Step::Kind::replace:
      for (auto& token : tokens) token = step.pattern->replace_all(token, step.text);
      return;
    case Step::Kind::byte_fallback: {
      std::vector<std::string> out;
      std::string run;  // bytes of consecutive "<0xXX>" tokens
      auto flush = [&] {
        if (run.empty()) return;
        if (utf8::find_invalid(run) == std::string::npos) out.push_back(run);
        else out.insert(out.end(), run.size(), "\xEF\xBF\xBD");  // one U+FFFD per byte
        run.clear();
      };
      for (auto& token : tokens) {
        if (auto byte = fallback_byte(token)) {
          run += static_cast<char>(*byte);
        } else {
          flush();
          out.push_back(std::move(token));
        }
      }
      flush();
      tokens.swap(out);
      return;
    }
    case Step::Kind::fuse: {
      std::string joined;
      for (const auto& token : tokens) joined += token;
      tokens.assign(1, std::move(joined));
      return;
    }
    case Step::Kind::strip:
      for (auto& token : tokens) {
        const auto chars = characters(token);
        std::size_t first = 0;  // characters kept: [first, last)
        while (first < step.start && first < chars.size() &&
               token.compare(chars[first].first, chars[first].second - chars[first].first, step.text) == 0)
          ++first;
        std::size_t last = chars.size();
        for (std::size_t i = 0; i < step.stop && last > first; ++i) {
          const auto& c = chars[last - 1];
          if (token.compare(c.first, c.second - c.first, step.text) != 0) break;
          --last;
        }
        const std::size_t begin = first < chars.size() ? chars[first].first : token.size();
        const std::size_t end = last > 0 && last > first ? chars[last - 1].second : begin;
        token = token.substr(begin, end - begin);
      }
      return;
    case Step::Kind::metaspace:
      for (std::size_t i = 0; i < tokens.size(); ++i) {
        std::string out;
        std::size_t pos = 0;
        const std::string& token = tokens[i];
        while (pos < token.size()) {
          std::size_t begin = pos;
          utf8::next(token, pos);
          if (token.compare(begin, pos - begin, step.text) != 0) out.append(token, begin, pos - begin);
          else if (!(i == 0 && step.drop_first)) out += ' ';
        }
        tokens[i] = std::move(out);
      }
      return;
  }
}

std::string Decoder::decode(const std::vector<const std::string*>& tokens) const {
  std::string out;
  if (none_) {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += *tokens[i];
    }
    return out;
  }
  std::vector<std::string> chain;
  chain.reserve(tokens.size());
  for (const std::string* token : tokens) chain.push_back(*token);
  for (const Step& step : steps_) apply(step, chain);
  for (const auto& token : chain) out += token;
  return out;
}

}  // namespace abmll::text
