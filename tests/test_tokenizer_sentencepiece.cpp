// Unit tests of the SentencePiece-style pieces of the tokenizer.json tokenizer (Llama-2, Mistral, Gemma): the Prepend
// and Replace normalizers, the Metaspace pre-tokenizer and its prepend schemes, the byte fallback and <unk> handling of
// BPE, and the Replace, ByteFallback, Fuse, Strip and Metaspace decoders; continuations in context, and prompts fitted
// to a length counting them so. Expected values are those of the reference `tokenizers` library on the same files;
// tests/python/test_tokenizer_parity.py compares whole vocabularies (trained and Mistral's real ones).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "data/episode.h"
#include "text/tokenizer.h"

using abmll::text::Tokenizer;
using nlohmann::json;
using Tokens = std::vector<std::string>;

namespace {

const char* const kMeta = "\u2581";  // "▁", SentencePiece's space

// <unk>, <s>, </s> (ids 0-2, special added tokens), the "<0xXX>" tokens of `bytes` in order, then the pieces "▁",
// "a", "b", "c", "▁a", "▁ab", "ab", with merges (▁, a), (▁a, b), (a, b) in that order.
json make_spm(json normalizer, json pre_tokenizer, json decoder, int first_byte = 0, bool fuse_unk = true) {
  json vocab = json::object();
  for (const char* special : {"<unk>", "<s>", "</s>"}) vocab[special] = vocab.size();
  for (int b = first_byte; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = vocab.size();
  }
  const std::string m = kMeta;
  for (const std::string& piece : {m, std::string("a"), std::string("b"), std::string("c"), m + "a", m + "ab",
                                   std::string("ab")})
    vocab[piece] = vocab.size();
  json added = json::array();
  for (const char* special : {"<unk>", "<s>", "</s>"})
    added.push_back({{"id", vocab[special]}, {"content", special}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  return json{{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added},
              {"normalizer", normalizer}, {"pre_tokenizer", pre_tokenizer}, {"post_processor", nullptr},
              {"decoder", decoder},
              {"model",
               {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"}, {"fuse_unk", fuse_unk},
                {"byte_fallback", true}, {"ignore_merges", false}, {"vocab", vocab},
                {"merges",
                 json::array({json::array({m, "a"}), json::array({m + "a", "b"}), json::array({"a", "b"})})}}}};
}

const json kLegacyNormalizer = {
    {"type", "Sequence"},
    {"normalizers",
     json::array({{{"type", "Prepend"}, {"prepend", kMeta}},
                  {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kMeta}}})}};
const json kLlamaDecoder = {
    {"type", "Sequence"},
    {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", kMeta}}}, {"content", " "}},
                              {{"type", "ByteFallback"}},
                              {{"type", "Fuse"}},
                              {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};

json metaspace(const char* scheme, bool split) {
  return {{"type", "Metaspace"}, {"replacement", kMeta}, {"prepend_scheme", scheme}, {"split", split}};
}

// The token strings `text` encodes to, without the template's tokens.
Tokens tokens_of(const Tokenizer& t, const std::string& text) {
  Tokens out;
  for (int32_t id : t.encode(text, false)) out.push_back(*t.id_to_token(id));
  return out;
}

std::vector<int32_t> ids_of(const Tokenizer& t, const Tokens& tokens) {
  std::vector<int32_t> ids;
  for (const auto& token : tokens) ids.push_back(*t.token_to_id(token));
  return ids;
}

const std::string m = kMeta;

}  // namespace

TEST_CASE("sentencepiece: the legacy normalizer puts a space in front of each text between added tokens",
          "[tokenizer]") {
  auto t = Tokenizer::from_json(make_spm(kLegacyNormalizer, nullptr, kLlamaDecoder));
  CHECK(tokens_of(t, "ab ab") == Tokens{m + "ab", m + "ab"});
  CHECK(tokens_of(t, "<s>ab") == Tokens{"<s>", m + "ab"});
  CHECK(tokens_of(t, " ") == Tokens{m, m});
  CHECK(tokens_of(t, "").empty());  // nothing is put in front of empty text
}

TEST_CASE("sentencepiece: Metaspace's prepend schemes; 'first' only at the start of the input", "[tokenizer]") {
  auto with = [](const char* scheme) {
    return Tokenizer::from_json(make_spm(nullptr, metaspace(scheme, false), nullptr));
  };
  auto first = with("first"), always = with("always"), never = with("never");
  CHECK(tokens_of(first, "<s>ab") == Tokens{"<s>", "ab"});
  CHECK(tokens_of(first, "ab<s>ab") == Tokens{m + "ab", "<s>", "ab"});
  CHECK(tokens_of(always, "ab<s>ab") == Tokens{m + "ab", "<s>", m + "ab"});
  CHECK(tokens_of(never, "ab<s>ab") == Tokens{"ab", "<s>", "ab"});
  CHECK(tokens_of(never, " ab") == Tokens{m + "ab"});  // the space itself still becomes "▁"
  CHECK(tokens_of(first, " ab") == Tokens{m + "ab"});  // text that begins with "▁" gets none more

  auto split = Tokenizer::from_json(make_spm(nullptr, metaspace("always", true), nullptr));
  CHECK(tokens_of(split, "ab ab  c") == Tokens{m + "ab", m + "ab", m, m, "c"});
}

TEST_CASE("sentencepiece: byte fallback, and the legacy decoder gives the text back", "[tokenizer]") {
  auto t = Tokenizer::from_json(make_spm(kLegacyNormalizer, nullptr, kLlamaDecoder));
  CHECK(tokens_of(t, "\xC3\xA9") == Tokens{m, "<0xC3>", "<0xA9>"});  // "é" is not a piece: its two bytes
  CHECK(t.decode(t.encode("\xC3\xA9", false)) == "\xC3\xA9");
  CHECK(t.decode(t.encode("ab ab", false)) == "ab ab");
  // Byte tokens that are not UTF-8 decode to one U+FFFD each.
  CHECK(t.decode(ids_of(t, {"<0xC3>"})) == "\xEF\xBF\xBD");
  CHECK(t.decode(ids_of(t, {"<0xE5>", "<0x8F>", "a"})) == "\xEF\xBF\xBD\xEF\xBF\xBD" "a");
}

TEST_CASE("sentencepiece: unknown characters become <unk> (fused or not), held back past byte tokens",
          "[tokenizer]") {
  // Byte tokens only for bytes >= 0x80: an unknown ASCII character has no fallback.
  auto unfused = Tokenizer::from_json(make_spm(nullptr, nullptr, nullptr, 0x80, false));
  auto fused = Tokenizer::from_json(make_spm(nullptr, nullptr, nullptr, 0x80, true));
  CHECK(tokens_of(unfused, "xa") == Tokens{"<unk>", "a"});
  // As in the reference, a held <unk> comes out after the byte tokens that follow it.
  CHECK(tokens_of(unfused, "xx\xC3\xA9") == Tokens{"<unk>", "<0xC3>", "<0xA9>", "<unk>"});
  CHECK(tokens_of(unfused, "x\xC3\xA9x") == Tokens{"<0xC3>", "<0xA9>", "<unk>", "<unk>"});
  CHECK(tokens_of(fused, "xx\xC3\xA9") == Tokens{"<0xC3>", "<0xA9>", "<unk>"});
}

TEST_CASE("sentencepiece: Strip and Metaspace decoders", "[tokenizer]") {
  json fuse_strip = {{"type", "Sequence"},
                     {"decoders", json::array({{{"type", "Fuse"}},
                                               {{"type", "Strip"}, {"content", "a"}, {"start", 1}, {"stop", 2}}})}};
  auto strip = Tokenizer::from_json(make_spm(nullptr, nullptr, fuse_strip));
  CHECK(strip.decode(ids_of(strip, {"a", "b", "a", "a"})) == "b");

  auto decoder = [](const char* scheme) {
    return json{{"type", "Metaspace"}, {"replacement", kMeta}, {"prepend_scheme", scheme}};
  };
  auto always = Tokenizer::from_json(make_spm(nullptr, nullptr, decoder("always")));
  auto never = Tokenizer::from_json(make_spm(nullptr, nullptr, decoder("never")));
  CHECK(always.decode(ids_of(always, {m + "ab", m + "ab"})) == "ab ab");
  CHECK(never.decode(ids_of(never, {m + "ab", m + "ab"})) == " ab ab");
}

TEST_CASE("sentencepiece: a continuation is tokenized in its context, not with a space token of its own",
          "[tokenizer]") {
  auto legacy = Tokenizer::from_json(make_spm(kLegacyNormalizer, nullptr, kLlamaDecoder));
  const std::vector<int32_t> prompt = legacy.encode("ab", true);
  CHECK(tokens_of(legacy, " ab") == Tokens{m, m + "ab"});  // alone: "▁▁ab"
  CHECK(legacy.encode_continuation("ab", prompt, " ab") == ids_of(legacy, {m + "ab"}));
  // When the prompt's own ids change in context, the continuation is encoded alone.
  CHECK(legacy.encode_continuation("a", legacy.encode("a", true), "b") == ids_of(legacy, {m, "b"}));
}

TEST_CASE("sentencepiece: prompts are fitted to max_length counting the options in their context", "[tokenizer]") {
  auto legacy = Tokenizer::from_json(make_spm(kLegacyNormalizer, nullptr, kLlamaDecoder));
  // "ab ab" is 2 tokens and " ab" after it 1 ("▁ab"; alone it would be 2, "▁" "▁ab"): 3 tokens fit it whole.
  abmll::data::ScoredPrompt p = abmll::data::fit_prompt({}, "", "ab ab", {" ab"}, &legacy, 3);
  CHECK_FALSE(p.truncated);
  CHECK(p.prompt == "ab ab");
  // With 2, the prompt is cut from the left: " ab" is "▁" "▁ab" and its option 1 more; "ab" and its option fit.
  p = abmll::data::fit_prompt({}, "", "ab ab", {" ab"}, &legacy, 2);
  CHECK(p.truncated);
  CHECK(p.prompt == "ab");
  // Demonstrations likewise: "ab" + " " + "ab ab" is 3 tokens, + 1.
  p = abmll::data::fit_prompt({"ab"}, " ", "ab ab", {" ab"}, &legacy, 4);
  CHECK(p.demos == 1);
  p = abmll::data::fit_prompt({"ab"}, " ", "ab ab", {" ab"}, &legacy, 3);
  CHECK((p.demos == 0 && p.prompt == "ab ab"));
}
