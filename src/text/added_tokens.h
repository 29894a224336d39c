// The "added_tokens" of a tokenizer.json (special tokens such as <|begin_of_text|>, <|im_start|>, and any other
// tokens added after training). They are found in the text before anything else runs, leftmost first and longest
// among those starting at the same place, and become their ids directly; the text between them goes through
// normalization, pre-tokenization and BPE. Tokens with normalized=false are matched in the raw text, those with
// normalized=true in the normalized text. Flags: lstrip/rstrip make a match absorb the whitespace before/after it;
// single_word drops a match that touches a word character on either side.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace abmll::text {

class Normalizer;

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

// A piece of text after the added tokens are cut out: either plain text or one added token.
struct Segment {
  std::string text;            // the text (plain) or the matched span (token)
  std::optional<int32_t> id;   // set for an added token
};

class AddedTokens {
 public:
  // From the tokenizer.json "added_tokens" array. `normalizer` is applied to the content of normalized tokens, as
  // they are looked for in normalized text. A token whose content the model vocabulary already has takes the
  // model's id (`model_id`), as the reference library does, whatever id the file gives it.
  static AddedTokens from_json(const nlohmann::json& j, const Normalizer& normalizer,
                               const std::function<std::optional<int32_t>(std::string_view)>& model_id);

  // Cuts `text` into plain segments and added tokens: raw-matched tokens first, then `normalizer` on each plain
  // segment, then normalized-matched tokens. Plain segments come out normalized.
  std::vector<Segment> split(std::string_view text, const Normalizer& normalizer) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* find(int32_t id) const;
  const AddedToken* find(std::string_view content) const;

 private:
  // Tokens matched in one pass, bucketed by first byte, each bucket longest first (so the first hit is longest).
  struct Matcher {
    struct Entry {
      std::string pattern;
      std::size_t token;  // index into tokens_
    };
    std::array<std::vector<Entry>, 256> by_first_byte;
    bool empty = true;
    void add(std::string pattern, std::size_t token);
    void finish();
  };
  void split_with(const Matcher& matcher, std::string_view text, std::vector<Segment>& out) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, std::size_t> by_id_;
  std::unordered_map<std::string, std::size_t> by_content_;
  Matcher raw_, normalized_;
};

}  // namespace abmll::text
