// The "decoder" stage of a tokenizer.json: turns a sequence of token strings back into text. Supported: ByteLevel
// (each token's characters mapped back to bytes, the bytes read as UTF-8 with invalid parts replaced by U+FFFD) and
// null (tokens joined with spaces, as the reference does).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace abmll::text {

class Decoder {
 public:
  // Throws InputError naming an unsupported type.
  static Decoder from_json(const nlohmann::json& j);

  std::string decode(const std::vector<const std::string*>& tokens) const;

 private:
  bool byte_level_ = false;
};

}  // namespace abmll::text
