// safetensors writing (see safetensors_writer.h). The header is built as JSON, then the tensors' bytes are
// streamed into an AtomicFile straight from each (CPU, contiguous) tensor's memory: no second copy of the data.
#include "io/safetensors_writer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

#include "io/safetensors_file.h"
#include "io/safetensors_format.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace abmll::io {
namespace {

struct Prepared {
  std::string name;
  DType dtype;
  at::Tensor data;  // CPU, contiguous
};

}  // namespace

void write_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  with_context(fmt::format("writing {}", path.string()), [&] {
    std::vector<Prepared> items;
    std::set<std::string_view> seen;
    for (const auto& [name, tensor] : tensors) {
      if (name == "__metadata__") throw Error("the tensor name '__metadata__' is reserved by the format");
      if (!seen.insert(name).second) throw Error(fmt::format("duplicate tensor name {}", quote_name(name)));
      if (!tensor.defined()) throw Error(fmt::format("tensor {} is undefined", quote_name(name)));
      DType dtype = with_context(fmt::format("tensor {}", quote_name(name)),
                                 [&] { return from_scalar_type(tensor.scalar_type()); });
      // resolve_conj/resolve_neg: a lazily conjugated or negated view must be written with its true values.
      items.push_back({name, dtype, tensor.to(at::kCPU).resolve_conj().resolve_neg().contiguous()});
    }
    // Larger elements first (then by name, for a deterministic file): with the data section 8-aligned, each
    // tensor then starts at a multiple of its element size.
    std::stable_sort(items.begin(), items.end(), [](const Prepared& a, const Prepared& b) {
      std::size_t sa = dtype_size(a.dtype), sb = dtype_size(b.dtype);
      return sa != sb ? sa > sb : a.name < b.name;
    });

    nlohmann::json header = nlohmann::json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::uint64_t offset = 0;
    for (const auto& item : items) {
      std::uint64_t bytes = static_cast<std::uint64_t>(item.data.numel()) * dtype_size(item.dtype);
      header[item.name] = {{"dtype", std::string(dtype_name(item.dtype))},
                           {"shape", item.data.sizes().vec()},
                           {"data_offsets", {offset, offset + bytes}}};
      offset += bytes;
    }
    std::string json;
    try {
      json = header.dump();
    } catch (const nlohmann::json::exception&) {
      throw Error("a tensor name or metadata entry is not valid UTF-8");
    }
    json.append((8 - json.size() % 8) % 8, ' ');
    if (json.size() > kMaxHeaderSize)
      throw Error(fmt::format("header of {} bytes exceeds the format's limit of {}", json.size(), kMaxHeaderSize));

    std::uint8_t length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<std::uint8_t>(json.size() >> (8 * i));  // little-endian
    AtomicFile file(path);
    file.write(length, sizeof length);
    file.write(json);
    for (const auto& item : items)
      if (item.data.numel() > 0)
        file.write(item.data.data_ptr(), static_cast<std::size_t>(item.data.numel()) * dtype_size(item.dtype));
    file.commit();
  });
}

}  // namespace abmll::io
