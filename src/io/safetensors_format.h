// The safetensors file format, without torch: dtypes, the parsed header, and the strict header parser.
//
// A safetensors file is: an 8-byte little-endian unsigned N, then N bytes of UTF-8 JSON (the header), then the data
// section. The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end)} (offsets relative to
// the data section) and may hold "__metadata__", a string -> string map. A checkpoint is untrusted input, so the
// parser checks everything the format promises (see parse_safetensors_header) and throws abmll::InputError naming
// the file, the tensor and the problem. This file is torch-free so that the fuzzer can link it alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace abmll::io {

// Element types abmll reads and writes. Sub-byte types (F4, F6_*) are not supported: a file using them is rejected.
enum class DType {
  BOOL, U8, I8, U16, I16, U32, I32, U64, I64,
  F16, BF16, F32, F64,
  F8_E4M3, F8_E5M2, F8_E4M3FNUZ, F8_E5M2FNUZ, F8_E8M0,
  C64,
};

// Every supported dtype, in the order above.
const std::vector<DType>& all_dtypes();
// The name used in the header ("BF16", "F8_E4M3", ...).
std::string_view dtype_name(DType dtype);
// Bytes per element.
std::size_t dtype_size(DType dtype);
// Parses a header dtype name; nullopt if the name is not a supported dtype.
std::optional<DType> dtype_from_name(std::string_view name);

// One tensor of the header. Offsets are relative to the start of the data section, end exclusive.
struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::uint64_t data_begin = 0;
  std::uint64_t data_end = 0;

  std::uint64_t bytes() const { return data_end - data_begin; }
  // Number of elements (product of the shape; 1 for a scalar). Cannot overflow: the parser checked it.
  std::uint64_t numel() const;
};

// A parsed, validated header.
struct SafetensorsHeader {
  std::vector<TensorEntry> entries;               // sorted by data_begin (file order)
  std::map<std::string, std::string> metadata;    // "__metadata__", empty if absent
  std::uint64_t header_size = 0;                  // N, the JSON's length in bytes (padding included)
  std::uint64_t data_offset = 0;                  // 8 + N: where the data section starts in the file
  std::uint64_t data_size = 0;                    // file size - data_offset

  // The entry named `name`, or nullptr.
  const TensorEntry* find(std::string_view name) const;
};

// The largest header accepted (the reference implementation's bound): larger is refused before anything is read.
inline constexpr std::uint64_t kMaxHeaderSize = 100'000'000;
// The largest tensor rank accepted (far above any real model; bounds the work a hostile shape can cause).
inline constexpr std::size_t kMaxRank = 64;

// Parses and validates the header of a safetensors file whose whole content is `data[0, size)`. Only the first
// 8 + N bytes are read; `size` is the file size, against which the offsets are checked. Checks: N <= kMaxHeaderSize
// and 8 + N <= size; the header is valid UTF-8 and a JSON object starting with '{' with no duplicate key at any
// level; "__metadata__" is a string -> string map; each tensor has exactly dtype, shape and data_offsets, a known
// dtype, a shape of non-negative integers, begin <= end within the data section, and end - begin = dtype size x
// elements with no overflow; the tensors, sorted by offset, tile the data section exactly (no overlap, no hole, no
// trailing bytes). Throws abmll::InputError("<source_name>: ...") otherwise.
SafetensorsHeader parse_safetensors_header(const std::uint8_t* data, std::size_t size, std::string_view source_name);

// A sharded checkpoint's index (`*.safetensors.index.json`, as written by Hugging Face).
struct SafetensorsIndex {
  std::map<std::string, std::string> weight_map;  // tensor name -> shard file name (in the index's folder)
  std::map<std::string, std::string> metadata;    // "metadata"; non-string values as their JSON text
};

// Parses an index: a JSON object with "weight_map" (tensor name -> shard file name) and optionally "metadata";
// other keys are ignored. Rejects invalid UTF-8 or JSON, duplicate keys at any level, and shard names that are
// not plain file names (empty, ".", "..", or holding '/', '\\' or NUL). Throws abmll::InputError("<source>: ...").
SafetensorsIndex parse_safetensors_index(std::string_view text, std::string_view source_name);

// Offset of the first byte of `text` that is not valid UTF-8 (overlong forms, surrogates and code points above
// U+10FFFF are invalid), or nullopt if all of it is valid.
std::optional<std::size_t> find_invalid_utf8(std::string_view text);

// `name` quoted for an error message: control and non-ASCII bytes escaped, long names shortened. Names come from
// untrusted files, so they must not garble a terminal or flood a log.
std::string quote_name(std::string_view name);

// "[5, 6]".
std::string format_shape(const std::vector<std::int64_t>& shape);

}  // namespace abmll::io
