// The tensors of a checkpoint, wherever they live: one .safetensors file, a sharded checkpoint
// (`*.safetensors.index.json` naming one shard per tensor), or a model folder holding either. Tensors are views
// of the memory-mapped files (see SafetensorsFile).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/safetensors_file.h"

namespace abmll::io {

// Where a tensor lives and what it is.
struct StoreEntry {
  TensorEntry entry;            // name, dtype, shape, offsets within its file's data section
  std::filesystem::path file;   // the .safetensors file holding it
};

class TensorStore {
 public:
  enum class Kind { file, sharded };

  // Opens `path`: a .safetensors file; an index file (read as an index when its name ends in ".json"); or a folder
  // holding model.safetensors, else model.safetensors.index.json, else exactly one *.safetensors file. For an
  // index, every shard must be a plain file name in the index's folder and exist, every listed tensor must be in
  // its shard, and every tensor of a shard must be listed for that shard (so no tensor is in two shards).
  // Throws abmll::InputError naming the file and the problem.
  static TensorStore open(const std::filesystem::path& path);

  Kind kind() const { return kind_; }
  // The file opened: the .safetensors file or the index (not the folder).
  const std::filesystem::path& source() const { return source_; }
  // The .safetensors files, in shard order.
  const std::vector<SafetensorsFile>& files() const { return files_; }

  // Tensor names, sorted.
  std::vector<std::string> names() const;
  std::size_t size() const { return where_.size(); }
  bool has(std::string_view name) const { return where_.count(std::string(name)) != 0; }
  // Throws abmll::InputError naming the checkpoint if there is no tensor `name`.
  StoreEntry entry(std::string_view name) const;
  at::Tensor tensor(std::string_view name) const;

  // A single file's "__metadata__", or an index's "metadata" (for example {"total_size": "..."}).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::size_t file_of(std::string_view name) const;

  Kind kind_ = Kind::file;
  std::filesystem::path source_;
  std::vector<SafetensorsFile> files_;
  std::unordered_map<std::string, std::size_t> where_;  // tensor name -> index into files_
  std::map<std::string, std::string> metadata_;
};

}  // namespace abmll::io
