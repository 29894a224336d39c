// Byte-level decoding. See decoder.h.
#include "text/decoder.h"

#include <nlohmann/json.hpp>

#include "text/byte_level.h"
#include "text/utf8.h"
#include "util/error.h"

namespace abmll::text {

Decoder Decoder::from_json(const nlohmann::json& j) {
  Decoder d;
  if (j.is_null()) return d;
  const std::string type = j.at("type").get<std::string>();
  if (type != "ByteLevel") throw InputError("decoder type '" + type + "' is not supported (supported: ByteLevel)");
  d.byte_level_ = true;
  return d;
}

std::string Decoder::decode(const std::vector<const std::string*>& tokens) const {
  std::string out;
  if (!byte_level_) {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += *tokens[i];
    }
    return out;
  }
  // A token with a character outside the byte alphabet (an added token like "<my token>") is taken as its UTF-8.
  std::string bytes, token_bytes;
  for (const std::string* token : tokens) {
    if (byte_level::decode(*token, token_bytes)) bytes += token_bytes;
    else bytes += *token;
  }
  return utf8::to_valid_lossy(bytes);
}

}  // namespace abmll::text
