// Writing safetensors files, atomically (a reader sees the old file or the complete new one).
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace abmll::io {

// Name -> tensor, in any order (the file's layout does not depend on it). From a std::map `m`: {m.begin(), m.end()}.
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Writes `tensors` (any device, any layout: device tensors are copied to the CPU, non-contiguous ones made
// contiguous) and `metadata` as "__metadata__" to `path`, replacing it atomically and creating parent folders.
// The header is padded with spaces so the data section starts 8-byte aligned, and tensors are laid out by
// decreasing element size, so every tensor is aligned to its element size and loads without a copy.
// Throws abmll::Error for duplicate or reserved ("__metadata__") names, or a dtype safetensors cannot store.
void write_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace abmll::io
