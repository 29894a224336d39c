// The "normalizer" stage of a tokenizer.json: rewrites text before it is split, e.g. Qwen2's NFC. Supported types:
// NFC, NFD, NFKC, NFKD (Unicode normal forms, via utf8proc) and a Sequence of them; null means none.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace abmll::text {

class Normalizer {
 public:
  enum class Form { nfc, nfd, nfkc, nfkd };

  // From the tokenizer.json "normalizer" value (null gives the identity). Throws InputError naming an unsupported
  // type.
  static Normalizer from_json(const nlohmann::json& j);

  bool empty() const { return forms_.empty(); }
  // `text` (valid UTF-8) with every form applied in order.
  std::string apply(std::string_view text) const;

 private:
  std::vector<Form> forms_;
};

}  // namespace abmll::text
