// Listing a checkpoint's tensors for `abmll inspect` (see inspect.h).
#include "io/inspect.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

#include "io/safetensors_format.h"
#include "io/tensor_store.h"

namespace abmll::io {
namespace {

// Names come from untrusted files: escape control bytes so a name cannot rewrite the terminal.
std::string printable(std::string_view text) {
  std::string out;
  for (unsigned char c : text)
    out += (c < 0x20 || c == 0x7F) ? fmt::format("\\x{:02x}", c) : std::string(1, static_cast<char>(c));
  return out;
}

// "1.5 B", "7.0 M": a count at a glance.
std::string human_count(std::uint64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{:.2f} B", n / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.2f} M", n / 1e6);
  if (n >= 1'000) return fmt::format("{:.2f} K", n / 1e3);
  return std::to_string(n);
}

std::string human_bytes(std::uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.2f} {}", v, units[u]);
}

}  // namespace

bool natural_less(const std::string& a, const std::string& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      // Compare the digit runs as numbers: skip leading zeros, then longer is larger, then lexicographic.
      std::size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      std::size_t is = i, js = j;
      while (is + 1 < ie && a[is] == '0') ++is;
      while (js + 1 < je && b[js] == '0') ++js;
      std::string_view da(a.data() + is, ie - is), db(b.data() + js, je - js);
      if (da.size() != db.size()) return da.size() < db.size();
      if (da != db) return da < db;
      i = ie, j = je;
    } else {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
      ++i, ++j;
    }
  }
  if ((a.size() - i) != (b.size() - j)) return (a.size() - i) < (b.size() - j);
  return a < b;  // equal up to leading zeros: any fixed tie-break
}

InspectListing inspect_checkpoint(const std::filesystem::path& path) { return inspect_store(TensorStore::open(path)); }

InspectListing inspect_store(const TensorStore& store) {
  InspectListing listing;
  listing.source = store.source().string();
  listing.kind = store.kind() == TensorStore::Kind::sharded ? "sharded" : "file";
  for (const auto& file : store.files()) listing.files.push_back(file.path().filename().string());
  listing.metadata = store.metadata();
  for (const auto& file : store.files()) {
    for (const auto& e : file.entries()) {
      listing.rows.push_back({e.name, std::string(dtype_name(e.dtype)), e.shape, e.numel(), e.bytes(),
                              file.path().filename().string()});
      // Sums of validated sizes: each is below the file size, so these cannot overflow in practice.
      listing.total_parameters += e.numel();
      listing.total_bytes += e.bytes();
    }
  }
  std::sort(listing.rows.begin(), listing.rows.end(),
            [](const InspectRow& a, const InspectRow& b) { return natural_less(a.name, b.name); });
  return listing;
}

std::string render_text(const InspectListing& listing) {
  const bool sharded = listing.kind == "sharded";
  std::vector<std::array<std::string, 6>> cells;
  cells.push_back({"name", "dtype", "shape", "parameters", "bytes", "file"});
  for (const auto& r : listing.rows)
    cells.push_back({printable(r.name), r.dtype, format_shape(r.shape), std::to_string(r.parameters),
                     std::to_string(r.bytes), printable(r.file)});
  std::array<std::size_t, 6> width{};
  for (const auto& row : cells)
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());

  std::string out = fmt::format("{} ({}", printable(listing.source), sharded ? "sharded checkpoint, " : "file");
  if (sharded) out += fmt::format("{} shards", listing.files.size());
  out += ")\n";
  for (const auto& [key, value] : listing.metadata)
    out += fmt::format("metadata: {} = {}\n", printable(key), printable(value));
  for (const auto& row : cells) {
    // name, dtype and shape left-aligned; counts right-aligned; the file column only for sharded checkpoints.
    out += fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>{}}  {:>{}}", row[0], width[0], row[1], width[1], row[2],
                       width[2], row[3], width[3], row[4], width[4]);
    if (sharded) out += "  " + row[5];
    out += "\n";
  }
  out += fmt::format("{} tensor{}, {} parameters ({}), {} bytes ({})\n", listing.rows.size(),
                     listing.rows.size() == 1 ? "" : "s",
                     listing.total_parameters, human_count(listing.total_parameters), listing.total_bytes,
                     human_bytes(listing.total_bytes));
  return out;
}

nlohmann::json render_json(const InspectListing& listing) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& r : listing.rows)
    tensors.push_back({{"name", r.name}, {"dtype", r.dtype}, {"shape", r.shape}, {"parameters", r.parameters},
                       {"bytes", r.bytes}, {"file", r.file}});
  return {{"source", listing.source},
          {"kind", listing.kind},
          {"files", listing.files},
          {"metadata", listing.metadata},
          {"tensors", std::move(tensors)},
          {"total_parameters", listing.total_parameters},
          {"total_bytes", listing.total_bytes}};
}

}  // namespace abmll::io
