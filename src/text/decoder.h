// The "decoder" stage of a tokenizer.json: turns a sequence of token strings back into text. Each step maps the
// list of strings to a new list, as the reference library's decode_chain does, and the last list is concatenated.
// Supported steps:
//   ByteLevel     each token's characters mapped back to bytes, all bytes read as one UTF-8 text (invalid parts
//                 replaced by U+FFFD); Llama-3 and Qwen2;
//   Replace       a literal or regex pattern replaced in each token ("▁" -> " ");
//   ByteFallback  runs of "<0xXX>" tokens turned into their bytes' text (one U+FFFD per byte when not UTF-8);
//   Fuse          all tokens joined into one;
//   Strip         up to `start` leading and `stop` trailing `content` characters removed from each token;
//   Metaspace     "▁" read as a space, dropped from the first token unless prepend_scheme is "never";
//   Sequence      the steps in order.
// Llama-2's and Mistral's files use Sequence[Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0)]. With no
// decoder the tokens are joined with spaces, as the reference does.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "text/pattern.h"

namespace abmll::text {

class Decoder {
 public:
  // Throws InputError naming an unsupported type.
  static Decoder from_json(const nlohmann::json& j);

  std::string decode(const std::vector<const std::string*>& tokens) const;

 private:
  struct Step {
    enum class Kind { byte_level, replace, byte_fallback, fuse, strip, metaspace } kind = Kind::fuse;
    std::optional<Pattern> pattern;  // replace
    std::string text;                // replace: the content; strip: the character; metaspace: the replacement
    std::size_t start = 0, stop = 0;  // strip
    bool drop_first = true;           // metaspace: drop the replacement from the first token
  };
  static void add_steps(const nlohmann::json& j, std::vector<Step>& steps);
  static void apply(const Step& step, std::vector<std::string>& tokens);

  std::vector<Step> steps_;
  bool none_ = true;  // no decoder: join with spaces
};

}  // namespace abmll::text
