// Reading a safetensors file without copying: the file is memory-mapped once and each tensor is a view of the
// mapping. A tensor keeps the mapping alive (through its deleter), so tensors stay valid after the SafetensorsFile
// that produced them is gone.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors_format.h"

namespace abmll::io {

// A read-only, validated, memory-mapped safetensors file. Cheap to copy (shares the mapping). Thread-safe for
// concurrent reads.
class SafetensorsFile {
 public:
  // Maps and validates `path`. Throws abmll::InputError naming the file for a malformed file, abmll::Error when
  // the file cannot be opened or mapped.
  static SafetensorsFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  // Tensor names in file (offset) order.
  std::vector<std::string> names() const;
  bool has(std::string_view name) const;
  // The entry named `name`; throws abmll::InputError if the file has no such tensor.
  const TensorEntry& entry(std::string_view name) const;
  const std::vector<TensorEntry>& entries() const { return header_->entries; }
  // "__metadata__" (empty if the file has none).
  const std::map<std::string, std::string>& metadata() const { return header_->metadata; }

  // The tensor `name` on the CPU, viewing the mapping (no copy) when its data is aligned to its element size.
  // Writable: the mapping is private, so writes go to private copies of the pages, never to the file.
  at::Tensor tensor(std::string_view name) const;

  // Address and size of the whole mapping (for tests of zero-copy loading).
  const std::uint8_t* mapping_begin() const;
  std::size_t mapping_size() const;

 private:
  struct Mapping;
  std::filesystem::path path_;
  std::shared_ptr<Mapping> mapping_;
  std::shared_ptr<const SafetensorsHeader> header_;
};

// The at::ScalarType of a safetensors dtype, and back (throws abmll::Error for a type safetensors cannot store).
c10::ScalarType to_scalar_type(DType dtype);
DType from_scalar_type(c10::ScalarType type);

}  // namespace abmll::io
