// One fuzzing input, run through the tokenizer (src/text). Shared by the libFuzzer target (tokenizer_fuzz.cpp) and
// the regression test over tests/data/tokenizer_corpus, so that every saved input is replayed as the fuzzer ran it.
//
// The first byte says what the rest is:
//   even  text, encoded and decoded by four fixed byte-level BPE tokenizers: Llama-3's and Qwen2's pre-tokenizer
//         patterns, each with no normalizer and with NFC, and by a SentencePiece-style one in Llama-2's legacy form
//         (Prepend + Replace normalizer, byte fallback, Replace + ByteFallback + Fuse + Strip decoder). Invalid
//         UTF-8 must be refused with InputError. Valid text must decode back to itself where no normalizer changes
//         it (byte-level BPE and byte fallback lose nothing; for the SentencePiece one, text without "▁" or an
//         added token), and to its NFC form with NFC; every id must be in the vocabulary.
//   odd   a tokenizer.json. It loads or is refused with InputError; if it loads, a few texts are encoded and
//         decoded with it (InputError allowed: e.g. a vocabulary without some byte).
// abmll::InputError is the only acceptable failure; anything else (another exception, a broken round trip: abort)
// is a finding.
#pragma once

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "text/byte_level.h"
#include "text/post_processor.h"
#include "text/tokenizer.h"
#include "util/error.h"

namespace abmll::fuzz {

// Llama-3's and Qwen2's pre-tokenizer patterns (their tokenizer.json files' Split regexes).
inline constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// A small tokenizer.json of the Llama-3 / Qwen2 kind: the 256 byte tokens, a few merges, two special added tokens,
// a Split + ByteLevel pre-tokenizer with `pattern`, optionally NFC, a template that starts every text with
// <|begin_of_text|> (as Llama-3's), and the ByteLevel decoder.
inline nlohmann::json fuzz_tokenizer_json(const char* pattern, bool nfc) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[text::byte_level::encode(std::string(1, static_cast<char>(b)))] = b;
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"Ġ", "t"}, {"h", "e"}, {"Ġt", "he"}, {"i", "n"}, {"Ġ", "a"}, {"e", "r"}, {"Ã", "©"}, {"1", "2"}, {"'", "s"}};
  nlohmann::json merges = nlohmann::json::array();
  int next = 256;
  for (const auto& [a, b] : pairs) {
    vocab[a + b] = next++;
    merges.push_back({a, b});
  }
  auto special = [](int id, const char* content) {
    return nlohmann::json{{"id", id},        {"content", content}, {"single_word", false}, {"lstrip", false},
                          {"rstrip", false}, {"normalized", false}, {"special", true}};
  };
  nlohmann::json pre = {{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"},
                           {"invert", false}},
                          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                           {"use_regex", false}}}}};
  return {{"version", "1.0"},
          {"added_tokens", {special(next, "<|begin_of_text|>"), special(next + 1, "<|end_of_text|>")}},
          {"normalizer", nfc ? nlohmann::json{{"type", "NFC"}} : nlohmann::json(nullptr)},
          {"pre_tokenizer", pre},
          {"post_processor", text::bos_template_json("<|begin_of_text|>", next)},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                     {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}, {"fuse_unk", false},
                     {"byte_fallback", false}, {"ignore_merges", false}, {"vocab", vocab}, {"merges", merges}}}};
}

// A small SentencePiece-style tokenizer.json in Llama-2's legacy form: <unk>, <s>, </s>, the 256 byte tokens, a
// few pieces and merges; every character outside them takes the byte fallback.
inline nlohmann::json fuzz_sentencepiece_json() {
  const std::string meta = "\u2581";
  nlohmann::json vocab = nlohmann::json::object();
  for (const char* special : {"<unk>", "<s>", "</s>"}) vocab[special] = vocab.size();
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = vocab.size();
  }
  for (const std::string& piece : {meta, std::string("t"), std::string("h"), std::string("e"), std::string("\u00e9")})
    vocab[piece] = vocab.size();
  const std::vector<std::pair<std::string, std::string>> pairs = {{meta, "t"}, {meta + "t", "h"}, {meta + "th", "e"}};
  nlohmann::json merges = nlohmann::json::array();
  for (const auto& [a, b] : pairs) {
    vocab[a + b] = vocab.size();
    merges.push_back({a, b});
  }
  nlohmann::json added = nlohmann::json::array();
  for (const char* special : {"<unk>", "<s>", "</s>"})
    added.push_back({{"id", vocab[special]}, {"content", special}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer", {{"type", "Sequence"},
                          {"normalizers", {{{"type", "Prepend"}, {"prepend", meta}},
                                           {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", meta}}}}}},
          {"pre_tokenizer", nullptr},
          {"post_processor", nullptr},
          {"decoder", {{"type", "Sequence"},
                       {"decoders", {{{"type", "Replace"}, {"pattern", {{"String", meta}}}, {"content", " "}},
                                     {{"type", "ByteFallback"}},
                                     {{"type", "Fuse"}},
                                     {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
          {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"},
                     {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}, {"fuse_unk", true},
                     {"byte_fallback", true}, {"ignore_merges", false}, {"vocab", vocab}, {"merges", merges}}}};
}

[[noreturn]] inline void finding(const char* what, std::string_view text) {
  std::fprintf(stderr, "tokenizer fuzz finding: %s (input of %zu bytes)\n", what, text.size());
  std::abort();
}

inline bool valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(text.size());
  while (left > 0) {
    utf8proc_int32_t cp = 0;
    const utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n <= 0) return false;
    p += n;
    left -= n;
  }
  return true;
}

inline std::string nfc_of(std::string_view text) {
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                          static_cast<utf8proc_ssize_t>(text.size()), &out,
                                          static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::string result = n >= 0 ? std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n)) : "";
  std::free(out);
  return result;
}

inline void run_text(std::string_view text) {
  struct Fixed {
    text::Tokenizer tokenizer;
    bool nfc;
  };
  static const std::vector<Fixed>* fixed = [] {
    auto* v = new std::vector<Fixed>();
    for (const char* pattern : {kLlama3Pattern, kQwen2Pattern})
      for (bool nfc : {false, true}) v->push_back({text::Tokenizer::from_json(fuzz_tokenizer_json(pattern, nfc)), nfc});
    return v;
  }();
  const bool valid = valid_utf8(text);
  for (const Fixed& f : *fixed) {
    std::vector<std::int32_t> ids;
    try {
      ids = f.tokenizer.encode(text, /*add_special_tokens=*/false);
    } catch (const InputError&) {
      if (valid) finding("valid UTF-8 refused", text);
      continue;
    }
    if (!valid) finding("invalid UTF-8 accepted", text);
    for (std::int32_t id : ids)
      if (id < 0 || static_cast<std::size_t>(id) >= f.tokenizer.vocab_size()) finding("id out of range", text);
    const std::string back = f.tokenizer.decode(ids);
    // Added tokens are cut out before normalizing, so with NFC the text between them is normalized piecewise (as
    // in `tokenizers`): a combining mark after "<|...|>" stays uncomposed. The whole-text NFC oracle skips those.
    if (f.nfc && text.find("<|") != std::string_view::npos) continue;
    if (back != (f.nfc ? nfc_of(text) : std::string(text))) finding("decode(encode(text)) differs", text);
  }

  static const text::Tokenizer* sentencepiece =
      new text::Tokenizer(text::Tokenizer::from_json(fuzz_sentencepiece_json()));
  std::vector<std::int32_t> ids;
  try {
    ids = sentencepiece->encode(text, /*add_special_tokens=*/false);
  } catch (const InputError&) {
    if (valid) finding("valid UTF-8 refused (SentencePiece)", text);
    return;
  }
  if (!valid) finding("invalid UTF-8 accepted (SentencePiece)", text);
  for (std::int32_t id : ids)
    if (id < 0 || static_cast<std::size_t>(id) >= sentencepiece->vocab_size()) finding("id out of range", text);
  const std::string back = sentencepiece->decode(ids);
  // "▁" decodes to a space, and the legacy normalizer puts one after each added token: those texts do not come back.
  for (const char* lossy : {"\u2581", "<s>", "</s>", "<unk>"})
    if (text.find(lossy) != std::string_view::npos) return;
  if (back != text) finding("decode(encode(text)) differs (SentencePiece)", text);
}

inline void run_tokenizer_json(std::string_view json_text) {
  try {
    const nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return;
    const text::Tokenizer tokenizer = text::Tokenizer::from_json(j);
    for (const char* sample : {"the cat's 123 été", "<|begin_of_text|>x\n\n  y", ""}) {
      try {
        tokenizer.decode(tokenizer.encode(sample, true));
      } catch (const InputError&) {
      }
    }
  } catch (const InputError&) {
  }
}

inline void run_tokenizer_input(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) run_text(rest);
  else run_tokenizer_json(rest);
}

}  // namespace abmll::fuzz
