// The byte-level alphabet of GPT-2-style BPE (used by Llama-3 and Qwen2): each of the 256 byte values is shown as
// one printable Unicode character, so that any byte string becomes a string of "visible" characters the BPE
// vocabulary is written in. Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other
// 68 bytes (controls, space, soft hyphen...) take U+0100, U+0101, ... in byte order (so ' ' is 'Ġ', '\n' is 'Ċ').
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace abmll::text::byte_level {

// Code point that stands for byte `b`.
char32_t byte_to_char(unsigned char b);

// The byte a character stands for, or nothing when `cp` is not in the alphabet.
std::optional<unsigned char> char_to_byte(char32_t cp);

// `bytes` in the byte-level alphabet (UTF-8 encoded): each input byte becomes one character.
std::string encode(std::string_view bytes);

// The bytes a byte-level string stands for; false (and `out` unspecified) when a character is not in the alphabet.
bool decode(std::string_view chars, std::string& out);

}  // namespace abmll::text::byte_level
