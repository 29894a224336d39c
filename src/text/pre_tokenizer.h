// The "pre_tokenizer" stage of a tokenizer.json: cuts normalized text into pieces ("words") that BPE encodes
// independently. Supported: Split (a regex or literal pattern, any behavior, invert), Digits (numeric characters
// apart, one by one or in runs: Cohere's Sequence[Digits(individual), ByteLevel]), ByteLevel (optional prefix space
// and GPT-2 regex, then every byte mapped to its byte-level character), Metaspace (spaces become "▁", one is put in
// front always, only at the start of the input, or never, then optionally a split before each "▁") and a Sequence of
// them. Llama-3 and Qwen2 use Sequence[Split(model regex, Isolated), ByteLevel(use_regex=false)]; Mistral's and
// Llama-2's newer files Metaspace(prepend_scheme first, split false); Gemma's Split(" ", MergedWithPrevious).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "text/pattern.h"

namespace abmll::text {

class PreTokenizer {
 public:
  // How a Split step treats the pieces its pattern matches (the tokenizers library's SplitDelimiterBehavior).
  enum class Behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };
  // Where Metaspace puts a "▁" in front of a piece that does not begin with one.
  enum class Prepend { always, first, never };

  // From the tokenizer.json "pre_tokenizer" value (null: the whole text is one piece). Throws InputError naming an
  // unsupported type, behavior or bad pattern.
  static PreTokenizer from_json(const nlohmann::json& j);

  // Metaspace's prepend_scheme in a pre-tokenizer or decoder entry (default "always"), with the older
  // add_prefix_space flag read as the reference reads it. Throws InputError for another scheme, or a false
  // add_prefix_space beside a scheme other than "never", naming `component` in the message.
  static Prepend metaspace_prepend(const nlohmann::json& j, std::string_view component);

  // Splits `text` (valid UTF-8) into non-empty pieces, appended to `pieces` in order. `at_input_start`: `text`
  // begins the input (no added token before it), which Metaspace's prepend_scheme "first" asks.
  void split(std::string_view text, bool at_input_start, std::vector<std::string>& pieces) const;

 private:
  // A piece with whether it begins the input (the reference's "original offset 0").
  struct Piece {
    std::string text;
    bool at_input_start = false;
  };
  struct Step {
    enum class Kind { split, byte_level, metaspace } kind = Kind::split;
    // split
    std::optional<Pattern> pattern;
    Behavior behavior = Behavior::isolated;
    bool invert = false;
    // byte_level
    bool add_prefix_space = false;
    bool use_regex = false;
    // metaspace
    std::string replacement;
    Prepend prepend = Prepend::always;
    bool split_on_replacement = true;
  };
  static void add_steps(const nlohmann::json& j, std::vector<Step>& steps);
  static void apply_split(const Step& step, const Piece& piece, std::vector<Piece>& out);
  static void apply_byte_level(const Step& step, const Piece& piece, std::vector<Piece>& out);
  static void apply_metaspace(const Step& step, const Piece& piece, std::vector<Piece>& out);

  std::vector<Step> steps_;
};

}  // namespace abmll::text
