// The "pre_tokenizer" stage of a tokenizer.json: cuts normalized text into pieces ("words") that BPE encodes
// independently. Supported: Split (a regex or literal pattern, any behavior, invert), ByteLevel (optional prefix
// space and GPT-2 regex, then every byte mapped to its byte-level character) and a Sequence of them. Llama-3 and
// Qwen2 use Sequence[Split(model regex, Isolated), ByteLevel(use_regex=false)].
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/regex.h"

namespace abmll::text {

class PreTokenizer {
 public:
  // How a Split step treats the pieces its pattern matches (the tokenizers library's SplitDelimiterBehavior).
  enum class Behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

  // From the tokenizer.json "pre_tokenizer" value (null: the whole text is one piece). Throws InputError naming an
  // unsupported type, behavior or bad pattern.
  static PreTokenizer from_json(const nlohmann::json& j);

  // Splits `text` (valid UTF-8) into non-empty pieces, appended to `pieces` in order.
  void split(std::string_view text, std::vector<std::string>& pieces) const;

 private:
  struct Step {
    enum class Kind { split, byte_level } kind = Kind::split;
    // split
    std::shared_ptr<const Regex> regex;  // null for a literal pattern
    std::string literal;
    Behavior behavior = Behavior::isolated;
    bool invert = false;
    // byte_level
    bool add_prefix_space = false;
    bool use_regex = false;
  };
  static void add_steps(const nlohmann::json& j, std::vector<Step>& steps);
  static void apply_split(const Step& step, std::string_view piece, std::vector<std::string>& out);
  static void apply_byte_level(const Step& step, std::string_view piece, std::vector<std::string>& out);

  std::vector<Step> steps_;
};

}  // namespace abmll::text
