// Opening checkpoints: single files, sharded checkpoints and model folders (see tensor_store.h).
#include "io/tensor_store.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "util/error.h"

namespace abmll::io {
namespace fs = std::filesystem;
namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string read_index_text(const fs::path& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) throw InputError(fmt::format("{}: cannot read: {}", path.string(), ec.message()));
  if (size > kMaxHeaderSize)
    throw InputError(fmt::format("{}: index has {} bytes, more than the limit of {}", path.string(), size,
                                 kMaxHeaderSize));
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) throw Error(fmt::format("{}: cannot read", path.string()));
  return text.str();
}

// The checkpoint inside a model folder (see TensorStore::open).
fs::path find_in_folder(const fs::path& folder) {
  if (fs::is_regular_file(folder / "model.safetensors")) return folder / "model.safetensors";
  if (fs::is_regular_file(folder / "model.safetensors.index.json")) return folder / "model.safetensors.index.json";
  std::vector<std::string> found;
  for (const auto& item : fs::directory_iterator(folder))
    if (item.is_regular_file() && item.path().extension() == ".safetensors") found.push_back(item.path().filename());
  std::sort(found.begin(), found.end());
  if (found.size() == 1) return folder / found.front();
  if (found.empty())
    throw InputError(fmt::format("{}: folder holds no model.safetensors, model.safetensors.index.json or other "
                                 "*.safetensors file", folder.string()));
  throw InputError(fmt::format("{}: folder holds {} .safetensors files ({}) but neither model.safetensors nor "
                               "model.safetensors.index.json; pass one file or an index",
                               folder.string(), found.size(), fmt::join(found, ", ")));
}

}  // namespace

TensorStore TensorStore::open(const fs::path& path) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (!fs::exists(status)) throw InputError(fmt::format("{}: no such file or folder", path.string()));
  const fs::path target = fs::is_directory(status) ? find_in_folder(path) : path;

  TensorStore store;
  store.source_ = target;
  if (!ends_with(target.filename().string(), ".json")) {
    store.kind_ = Kind::file;
    store.files_.push_back(SafetensorsFile::open(target));
    for (const auto& e : store.files_[0].entries()) store.where_.emplace(e.name, 0);
    store.metadata_ = store.files_[0].metadata();
    return store;
  }

  // A sharded checkpoint.
  store.kind_ = Kind::sharded;
  const std::string index_name = target.string();
  SafetensorsIndex index = parse_safetensors_index(read_index_text(target), index_name);
  store.metadata_ = std::move(index.metadata);
  std::map<std::string, std::vector<std::string>> listed;  // shard -> tensors the index puts there (sorted)
  for (const auto& [tensor, shard] : index.weight_map) listed[shard].push_back(tensor);

  // First every shard and every listed tensor, then each shard's contents against the index (so that a missing
  // tensor is reported as such, not as a misplaced one of another shard).
  const fs::path folder = target.parent_path();
  for (const auto& [shard, tensors] : listed) {
    const fs::path shard_path = folder / shard;
    if (!fs::is_regular_file(shard_path))
      throw InputError(fmt::format("{}: shard {} (listed for tensor {}) does not exist", index_name,
                                   quote_name(shard), quote_name(tensors.front())));
    store.files_.push_back(SafetensorsFile::open(shard_path));
    for (const auto& tensor : tensors) {
      if (!store.files_.back().has(tensor))
        throw InputError(fmt::format("{}: tensor {} is listed in shard {}, which does not hold it", index_name,
                                     quote_name(tensor), quote_name(shard)));
      store.where_.emplace(tensor, store.files_.size() - 1);
    }
  }
  for (const auto& file : store.files_) {
    const std::string shard = file.path().filename().string();
    for (const auto& e : file.entries()) {
      auto it = index.weight_map.find(e.name);
      if (it == index.weight_map.end())
        throw InputError(fmt::format("{}: tensor {} of shard {} is not listed in the index", index_name,
                                     quote_name(e.name), quote_name(shard)));
      if (it->second != shard)
        throw InputError(fmt::format("{}: tensor {} is in shard {}, but the index puts it in shard {} (a tensor "
                                     "must be in exactly one shard)",
                                     index_name, quote_name(e.name), quote_name(shard), quote_name(it->second)));
    }
  }
  return store;
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& [name, slot] : where_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

std::size_t TensorStore::file_of(std::string_view name) const {
  auto it = where_.find(std::string(name));
  if (it == where_.end())
    throw InputError(fmt::format("{}: no tensor {}", source_.string(), quote_name(name)));
  return it->second;
}

StoreEntry TensorStore::entry(std::string_view name) const {
  const SafetensorsFile& file = files_[file_of(name)];
  return {file.entry(name), file.path()};
}

at::Tensor TensorStore::tensor(std::string_view name) const { return files_[file_of(name)].tensor(name); }

}  // namespace abmll::io
