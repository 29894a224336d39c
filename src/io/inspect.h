// `abmll inspect`: the listing of a checkpoint's tensors (name, dtype, shape, parameters, bytes, file) with totals,
// rendered as a text table or as JSON. Reads headers only: no tensor data is touched.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace abmll::io {

class TensorStore;

struct InspectRow {
  std::string name;
  std::string dtype;                 // safetensors name ("BF16")
  std::vector<std::int64_t> shape;
  std::uint64_t parameters = 0;      // elements
  std::uint64_t bytes = 0;
  std::string file;                  // file name of the .safetensors holding it
};

struct InspectListing {
  std::string source;                // the file or index opened
  std::string kind;                  // "file" or "sharded"
  std::vector<std::string> files;    // file names of the .safetensors files
  std::vector<InspectRow> rows;      // in natural name order ("layers.2" before "layers.10")
  std::uint64_t total_parameters = 0;
  std::uint64_t total_bytes = 0;
  std::map<std::string, std::string> metadata;
};

// Lists the checkpoint at `path` (file, index or model folder; see TensorStore::open).
InspectListing inspect_checkpoint(const std::filesystem::path& path);
InspectListing inspect_store(const TensorStore& store);

// A table with one line per tensor, then the totals. Ends with a newline.
std::string render_text(const InspectListing& listing);
// {"source", "kind", "files", "metadata", "tensors": [{"name", "dtype", "shape", "parameters", "bytes", "file"}],
//  "total_parameters", "total_bytes"}.
nlohmann::json render_json(const InspectListing& listing);

// Orders names with digit runs compared as numbers, so "layers.2.w" < "layers.10.w".
bool natural_less(const std::string& a, const std::string& b);

}  // namespace abmll::io
