// One fuzzing input, run through the torch-free safetensors parsers. Shared by the libFuzzer target
// (safetensors_header_fuzz.cpp) and the regression test over tests/data/safetensors_corpus, so that every saved
// input is replayed exactly as the fuzzer ran it.
//
// Each input is used three ways:
//  1. as a whole file;
//  2. as a bare header (all but the last 2 bytes) behind a correct 8-byte length, in a file that claims
//     `extra` more bytes of data (the last 2 bytes, little-endian) than are allocated: the parser promises to read
//     only 8 + N bytes, and AddressSanitizer reports any read of the data section. (The fuzzer rarely guesses
//     a matching length prefix, so this mode is what reaches the JSON validation.)
//  3. as the text of a *.safetensors.index.json.
// abmll::InputError is the only acceptable failure; anything else escapes and is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "io/safetensors_format.h"
#include "util/error.h"

namespace abmll::fuzz {

inline void run_safetensors_input(const std::uint8_t* data, std::size_t size) {
  try {
    io::parse_safetensors_header(data, size, "fuzz");
  } catch (const InputError&) {
  }

  if (size >= 2) {
    const std::size_t n = size - 2;
    const std::size_t extra = data[n] | (static_cast<std::size_t>(data[n + 1]) << 8);
    auto file = std::make_unique<std::uint8_t[]>(8 + n);  // exactly the length prefix and the header
    for (int i = 0; i < 8; ++i) file[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(n) >> (8 * i));
    if (n > 0) std::memcpy(file.get() + 8, data, n);
    try {
      io::parse_safetensors_header(file.get(), 8 + n + extra, "fuzz");
    } catch (const InputError&) {
    }
  }

  try {
    io::parse_safetensors_index(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const InputError&) {
  }
}

}  // namespace abmll::fuzz
