// Unit tests of the tokenizer.json tokenizer (src/text): the byte-level alphabet, merge parsing in both forms, the
// merge order, pre-tokenizer splits, added tokens, the template, decoding, and errors for unsupported or malformed
// files. Parity with the reference library on real and trained vocabularies is tested in
// tests/python/test_tokenizer_parity.py.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "test_support.h"
#include "text/byte_level.h"
#include "text/pre_tokenizer.h"
#include "text/tokenizer.h"
#include "text/utf8.h"
#include "util/error.h"

using abmll::text::Tokenizer;
using nlohmann::json;
using Ids = std::vector<int32_t>;

namespace {

const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string bl(std::string_view bytes) { return abmll::text::byte_level::encode(bytes); }

// A byte-level tokenizer whose vocab is the 256 byte characters (id = byte value) plus `extra` tokens (ids from
// 256 on, given as raw bytes), with `merges` given as raw-byte pairs. Llama-3's pre-tokenizer and decoder.
json make_tokenizer(const std::vector<std::string>& extra, const std::vector<std::pair<std::string, std::string>>& merges,
                    bool pair_form = true) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[bl(std::string(1, static_cast<char>(b)))] = b;
  int next = 256;
  for (const auto& t : extra) vocab[bl(t)] = next++;
  json merge_list = json::array();
  for (const auto& [a, b] : merges) {
    if (pair_form) merge_list.push_back(json::array({bl(a), bl(b)}));
    else merge_list.push_back(bl(a) + " " + bl(b));
  }
  return json{
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         json::array({{{"type", "Split"}, {"pattern", {{"Regex", kLlama3Pattern}}}, {"behavior", "Isolated"},
                       {"invert", false}},
                      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                       {"use_regex", false}}})}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"fuse_unk", false},
        {"byte_fallback", false}, {"ignore_merges", false}, {"vocab", vocab}, {"merges", merge_list}}}};
}

json added_token(int id, const std::string& content, bool special = true) {
  return {{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", !special}, {"special", special}};
}

std::vector<std::string> pre_tokenize(const std::string& pattern, const std::string& text) {
  json j = {{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}};
  std::vector<std::string> pieces;
  abmll::text::PreTokenizer::from_json(j).split(text, true, pieces);
  return pieces;
}

using abmll::test::input_error_of;

}  // namespace

TEST_CASE("tokenizer: byte-level alphabet maps every byte to one printable character and back", "[tokenizer]") {
  using namespace abmll::text::byte_level;
  CHECK(byte_to_char(' ') == U'\u0120');   // 'Ġ'
  CHECK(byte_to_char('\n') == U'\u010A');  // 'Ċ'
  CHECK(byte_to_char('A') == U'A');
  CHECK(byte_to_char(0xAD) == U'\u0143');  // the soft hyphen is the last remapped byte
  CHECK(byte_to_char(0xFF) == U'\u00FF');
  CHECK_FALSE(char_to_byte(U'\u0144').has_value());
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  std::string back;
  REQUIRE(decode(encode(all), back));
  CHECK(back == all);
  CHECK_FALSE(decode("\xE4\xB8\xAD", back));  // '中' is not in the alphabet
}

TEST_CASE("tokenizer: lossy UTF-8 repair replaces each maximal invalid subpart once", "[tokenizer]") {
  using abmll::text::utf8::to_valid_lossy;
  CHECK(to_valid_lossy("ok") == "ok");
  CHECK(to_valid_lossy("a\xE4\xB8") == "a\xEF\xBF\xBD");               // truncated 3-byte character: one U+FFFD
  CHECK(to_valid_lossy("\xFF\xFE") == "\xEF\xBF\xBD\xEF\xBF\xBD");      // two invalid bytes: two
  CHECK(to_valid_lossy("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate: three
  CHECK(abmll::text::utf8::find_invalid("a\xC3") == 1);
}

TEST_CASE("tokenizer: merges in the \"a b\" and [\"a\", \"b\"] forms give the same tokenizer", "[tokenizer]") {
  std::vector<std::string> extra = {"he", "ll", "hell", "hello", " w", " wor"};
  std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {" ", "w"}, {" w", "o"}, {" wo", "r"}};
  extra.push_back(" wo");
  auto pairs = Tokenizer::from_json(make_tokenizer(extra, merges, true));
  auto strings = Tokenizer::from_json(make_tokenizer(extra, merges, false));
  Ids expected = {*pairs.token_to_id(bl("hello")), *pairs.token_to_id(bl(" wor")), 'l', 'd'};
  CHECK(pairs.encode("hello world") == expected);
  CHECK(strings.encode("hello world") == expected);
  CHECK(pairs.decode(expected) == "hello world");
}

TEST_CASE("tokenizer: BPE merges the lowest rank first and the leftmost pair among equals", "[tokenizer]") {
  // "aaa": both pairs are (a, a); the left one merges first.
  auto t = Tokenizer::from_json(make_tokenizer({"aa"}, {{"a", "a"}}));
  CHECK(t.encode("aaa") == Ids{256, 'a'});
  // "abc": (b, c) has the lower rank, so "a" + "bc" even though "ab" exists.
  auto u = Tokenizer::from_json(make_tokenizer({"bc", "ab", "abc"}, {{"b", "c"}, {"a", "b"}, {"a", "bc"}}));
  CHECK(u.encode("abc") == Ids{258});
  CHECK(u.encode("abab") == Ids{257, 257});
  // Same word twice: the second comes from the cache and must agree.
  CHECK(u.encode("abc abc") == u.encode("abc abc"));
}

TEST_CASE("tokenizer: ignore_merges takes a piece that is in the vocab whole", "[tokenizer]") {
  // "abc" is in the vocab but no merge builds it.
  json j = make_tokenizer({"ab", "abc"}, {{"a", "b"}});
  CHECK(Tokenizer::from_json(j).encode("abc") == Ids{256, 'c'});
  j["model"]["ignore_merges"] = true;
  CHECK(Tokenizer::from_json(j).encode("abc") == Ids{257});
}

TEST_CASE("tokenizer: Llama-3's Split regex: contractions, digit groups, look-ahead on whitespace", "[tokenizer]") {
  CHECK(pre_tokenize(kLlama3Pattern, "I'M  fine1234567!!\n\nok") ==
        std::vector<std::string>{"I", "'M", " ", " fine", "123", "456", "7", "!!\n\n", "ok"});
  CHECK(pre_tokenize(kLlama3Pattern, "caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87   ") ==
        std::vector<std::string>{"caf\xC3\xA9", " \xE4\xB8\xAD\xE6\x96\x87", "   "});
  CHECK(pre_tokenize(kLlama3Pattern, "").empty());
}

TEST_CASE("tokenizer: Split behaviors and invert", "[tokenizer]") {
  auto split = [](const std::string& behavior, bool invert) {
    json j = {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}};
    std::vector<std::string> pieces;
    abmll::text::PreTokenizer::from_json(j).split("a-b--c", true, pieces);
    return pieces;
  };
  using V = std::vector<std::string>;
  CHECK(split("Isolated", false) == V{"a", "-", "b", "-", "-", "c"});
  CHECK(split("Removed", false) == V{"a", "b", "c"});
  CHECK(split("MergedWithPrevious", false) == V{"a-", "b-", "-", "c"});
  CHECK(split("MergedWithNext", false) == V{"a", "-b", "-", "-c"});
  CHECK(split("Contiguous", false) == V{"a", "-", "b", "--", "c"});
  CHECK(split("Removed", true) == V{"-", "-", "-"});
}

TEST_CASE("tokenizer: Digits puts numeric characters apart, one by one or in runs", "[tokenizer]") {
  auto split = [](bool individual) {
    const json j = {{"type", "Digits"}, {"individual_digits", individual}};
    std::vector<std::string> pieces;
    abmll::text::PreTokenizer::from_json(j).split("x86 \u00bd2024", true, pieces);  // "½" is numeric too (No)
    return pieces;
  };
  using V = std::vector<std::string>;
  CHECK(split(true) == V{"x", "8", "6", " ", "\u00bd", "2", "0", "2", "4"});
  CHECK(split(false) == V{"x", "86", " ", "\u00bd2024"});
}

TEST_CASE("tokenizer: added tokens are split out first, longest match, and skipped on request when decoding", "[tokenizer]") {
  json j = make_tokenizer({"ab"}, {{"a", "b"}});
  j["added_tokens"] = json::array({added_token(300, "<|im_start|>"), added_token(301, "<|im"),
                                   added_token(302, "<|end_of_text|>")});
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<|end_of_text|>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"pair", json::array()},
      {"special_tokens", {{"<|end_of_text|>", {{"id", "<|end_of_text|>"}, {"ids", {302}}, {"tokens", {"<|end_of_text|>"}}}}}}};
  auto t = Tokenizer::from_json(j);
  CHECK(t.encode("ab<|im_start|>ab<|im", false) == Ids{256, 300, 256, 301});
  CHECK(t.encode("ab") == Ids{302, 256});
  CHECK(t.decode({302, 256, 300, 'c'}) == "<|end_of_text|>ab<|im_start|>c");
  CHECK(t.decode({302, 256, 300, 'c'}, true) == "abc");
  CHECK(t.token_to_id("<|im_start|>") == 300);
  CHECK(t.id_to_token(301) == "<|im");
  CHECK(t.vocab_size() == 260);
  CHECK(input_error_of([&] { t.decode({999}); }).find("999") != std::string::npos);
}

TEST_CASE("tokenizer: lstrip, rstrip and single_word flags of added tokens", "[tokenizer]") {
  json j = make_tokenizer({}, {});
  auto mask = added_token(300, "<mask>");
  mask["lstrip"] = true;
  mask["rstrip"] = true;
  auto word = added_token(301, "cat");
  word["single_word"] = true;
  j["added_tokens"] = json::array({mask, word});
  auto t = Tokenizer::from_json(j);
  CHECK(t.encode("a  <mask>  b") == Ids{'a', 300, 'b'});
  CHECK(t.encode("cat concat") == Ids{301, ' ', 'c', 'o', 'n', 'c', 'a', 't'});
}

TEST_CASE("tokenizer: NFC normalizer composes text; half a character decodes to U+FFFD", "[tokenizer]") {
  json j = make_tokenizer({"\xC3\xA9"}, {{"\xC3", "\xA9"}});
  j["normalizer"] = {{"type", "NFC"}};
  auto t = Tokenizer::from_json(j);
  CHECK(t.encode("e\xCC\x81") == Ids{256});  // e + combining acute -> é
  CHECK(t.decode({256}) == "\xC3\xA9");
  CHECK(t.decode({0xC3}) == "\xEF\xBF\xBD");  // half a character decodes to U+FFFD
}

TEST_CASE("tokenizer: invalid UTF-8 to encode is an input error", "[tokenizer]") {
  auto t = Tokenizer::from_json(make_tokenizer({}, {}));
  CHECK(input_error_of([&] { t.encode("ab\xFF"); }).find("not valid UTF-8") != std::string::npos);
}

TEST_CASE("tokenizer: unsupported components are errors naming them", "[tokenizer]") {
  auto message_for = [](const char* key, json value) {
    json j = make_tokenizer({}, {});
    j[key] = std::move(value);
    return input_error_of([&] { Tokenizer::from_json(j); });
  };
  CHECK_THAT(message_for("pre_tokenizer", {{"type", "Whitespace"}}),
             Catch::Contains("pre_tokenizer type 'Whitespace' is not supported (supported: Sequence, Split, Digits, "
                             "ByteLevel, Metaspace)"));
  CHECK_THAT(message_for("pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "ab"}}),
             Catch::Contains("replacement must be one character, got 'ab'"));
  CHECK_THAT(message_for("pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "_"}, {"add_prefix_space", false}}),
             Catch::Contains("add_prefix_space is false but prepend_scheme is 'always'"));
  CHECK_THAT(message_for("pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "_"}, {"prepend_scheme", "last"}}),
             Catch::Contains("pre_tokenizer Metaspace prepend_scheme 'last' is not one of always, first, never"));
  CHECK_THAT(message_for("decoder", {{"type", "Metaspace"}, {"replacement", "_"}, {"add_prefix_space", false},
                                     {"prepend_scheme", "first"}}),
             Catch::Contains("decoder Metaspace add_prefix_space is false but prepend_scheme is 'first'"));
  CHECK_THAT(message_for("normalizer", {{"type", "Replace"}, {"pattern", {{"String", ""}}}, {"content", "x"}}),
             Catch::Contains("normalizer Replace has an empty String pattern"));
  CHECK_THAT(message_for("decoder", {{"type", "Replace"}, {"pattern", {{"Glob", "*"}}}, {"content", "x"}}),
             Catch::Contains("decoder Replace pattern must be {\"String\": ...} or {\"Regex\": ...}"));
  CHECK_THAT(message_for("decoder", {{"type", "Strip"}, {"content", ""}, {"start", 1}, {"stop", 0}}),
             Catch::Contains("decoder Strip content must be one character"));
  CHECK_THAT(message_for("normalizer", {{"type", "Lowercase"}}), Catch::Contains("normalizer type 'Lowercase'"));
  CHECK_THAT(message_for("decoder", {{"type", "WordPiece"}}), Catch::Contains("decoder type 'WordPiece'"));
  CHECK_THAT(message_for("post_processor", {{"type", "BertProcessing"}}),
             Catch::Contains("post_processor type 'BertProcessing'"));
  CHECK_THAT(message_for("model", {{"type", "WordPiece"}, {"vocab", json::object()}}),
             Catch::Contains("model type 'WordPiece' is not supported"));
  CHECK_THAT(message_for("truncation", {{"max_length", 8}}), Catch::Contains("truncation"));
}

TEST_CASE("tokenizer: malformed tokenizer.json files are input errors naming the file and the problem", "[tokenizer]") {
  abmll::test::ScratchDir dir;
  auto path = dir / "tokenizer.json";

  abmll::test::write_text(path, "{\"model\": ");
  auto message = input_error_of([&] { Tokenizer::from_file(path); });
  CHECK_THAT(message, Catch::Contains(path.string()) && Catch::Contains("not valid JSON"));

  json j = make_tokenizer({"ab"}, {{"a", "b"}});
  j["model"]["merges"].push_back(json::array({"x", "zz"}));
  abmll::test::write_text(path, j.dump());
  message = input_error_of([&] { Tokenizer::from_file(path); });
  CHECK_THAT(message, Catch::Contains(path.string()) && Catch::Contains("'zz' that is not in the vocab"));

  j = make_tokenizer({}, {});
  j["model"]["merges"] = json::array({"a"});
  abmll::test::write_text(path, j.dump());
  CHECK_THAT(input_error_of([&] { Tokenizer::from_file(path); }), Catch::Contains("not two tokens"));

  j = make_tokenizer({}, {});
  j["model"]["vocab"]["x"] = "seven";
  abmll::test::write_text(path, j.dump());
  CHECK_THAT(input_error_of([&] { Tokenizer::from_file(path); }),
             Catch::Contains("model vocab id of 'x' is \"seven\", not an integer"));
  j["model"]["vocab"]["x"] = 2.5;  // a float is not converted to an id
  abmll::test::write_text(path, j.dump());
  CHECK_THAT(input_error_of([&] { Tokenizer::from_file(path); }), Catch::Contains("is 2.5, not an integer"));

  j = make_tokenizer({}, {});
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  abmll::test::write_text(path, j.dump());
  CHECK_THAT(input_error_of([&] { Tokenizer::from_file(path); }), Catch::Contains("does not compile"));

  CHECK_THAT(input_error_of([&] { Tokenizer::from_file(dir / "missing.json"); }), Catch::Contains("cannot open"));
}
