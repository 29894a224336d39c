// UTF-8 helpers shared by the tokenizer stages: decoding one code point, validation, encoding, and the "lossy"
// conversion that turns arbitrary bytes into valid UTF-8 (what the decoder needs when a token sequence ends inside a
// multi-byte character). Byte offsets everywhere; no allocation except where a string is returned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace abmll::text::utf8 {

// Length in bytes of the character starting with lead byte `b` (1 for continuation or invalid bytes, so that
// callers walking valid text never stall).
inline std::size_t char_length(unsigned char b) {
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) return 2;
  if ((b & 0xF0) == 0xE0) return 3;
  if ((b & 0xF8) == 0xF0) return 4;
  return 1;
}

// Decodes the character at `pos` of valid UTF-8 `s` and advances `pos` past it.
char32_t next(std::string_view s, std::size_t& pos);

// Decodes the character that ends at `end` (exclusive) of valid UTF-8 `s`; `end` must be > 0.
char32_t previous(std::string_view s, std::size_t end);

// Appends the UTF-8 encoding of `cp` to `out`.
void append(std::string& out, char32_t cp);

// Byte offset of the first invalid sequence, or npos when `s` is valid UTF-8 (no surrogates, no overlongs).
std::size_t find_invalid(std::string_view s);

// Whether `s` is exactly one valid UTF-8 character (what tokenizer.json's `char` fields hold).
bool is_one_character(std::string_view s);

// `bytes` with each maximal invalid subsequence replaced by U+FFFD, following the Unicode "maximal subpart"
// practice (the same output as Rust's String::from_utf8_lossy, which the reference tokenizers library uses).
std::string to_valid_lossy(std::string_view bytes);

// Unicode White_Space (Rust's char::is_whitespace).
bool is_whitespace(char32_t cp);

// A "word" character in the sense of regex \w (letters, marks, decimal digits, connector punctuation such as '_').
bool is_word_char(char32_t cp);

}  // namespace abmll::text::utf8
