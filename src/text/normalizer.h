// The "normalizer" stage of a tokenizer.json: rewrites text before it is split. Supported types: NFC, NFD, NFKC,
// NFKD (Unicode normal forms, via utf8proc), Prepend and Replace (SentencePiece-style tokenizers such as Llama-2's
// and Mistral's: Prepend("▁") then Replace(" " -> "▁"); Gemma's Replace alone) and a Sequence of them; null means
// none. Qwen2 uses NFC.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "text/pattern.h"

namespace abmll::text {

class Normalizer {
 public:
  enum class Form { nfc, nfd, nfkc, nfkd };

  // From the tokenizer.json "normalizer" value (null gives the identity). Throws InputError naming an unsupported
  // type.
  static Normalizer from_json(const nlohmann::json& j);

  bool empty() const { return steps_.empty(); }
  // `text` (valid UTF-8) with every step applied in order.
  std::string apply(std::string_view text) const;

 private:
  struct Step {
    enum class Kind { form, prepend, replace } kind = Kind::form;
    Form form = Form::nfc;
    std::string text;  // prepend: what is put in front; replace: the content matches become
    std::optional<Pattern> pattern;  // replace
  };
  static void add_steps(const nlohmann::json& j, std::vector<Step>& steps);

  std::vector<Step> steps_;
};

}  // namespace abmll::text
