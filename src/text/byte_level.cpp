// The byte <-> character table of byte-level BPE. See byte_level.h.
#include "text/byte_level.h"

#include "text/utf8.h"

namespace abmll::text::byte_level {

namespace {

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> to_utf8;  // to_char as UTF-8, so encode() only appends
  std::array<int, 324> to_byte{};        // indexed by code point (all < 256 + 68); -1 where not in the alphabet
};

bool printable(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

const Tables& tables() {
  static const Tables t = [] {
    Tables t;
    t.to_byte.fill(-1);
    char32_t next_extra = 256;
    for (int b = 0; b < 256; ++b) {
      char32_t cp = printable(b) ? static_cast<char32_t>(b) : next_extra++;
      t.to_char[b] = cp;
      utf8::append(t.to_utf8[b], cp);
      t.to_byte[cp] = b;
    }
    return t;
  }();
  return t;
}

}  // namespace

char32_t byte_to_char(unsigned char b) { return tables().to_char[b]; }

std::optional<unsigned char> char_to_byte(char32_t cp) {
  const auto& t = tables();
  if (cp >= t.to_byte.size() || t.to_byte[cp] < 0) return std::nullopt;
  return static_cast<unsigned char>(t.to_byte[cp]);
}

std::string encode(std::string_view bytes) {
  const auto& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += t.to_utf8[static_cast<unsigned char>(c)];
  return out;
}

bool decode(std::string_view chars, std::string& out) {
  out.clear();
  std::size_t pos = 0;
  while (pos < chars.size()) {
    auto b = char_to_byte(utf8::next(chars, pos));
    if (!b) return false;
    out += static_cast<char>(*b);
  }
  return true;
}

}  // namespace abmll::text::byte_level
