// safetensors reading and writing: round trips for every dtype, zero-copy loading, the writer's layout and
// refusals, sharded checkpoints and model folders, and the `inspect` listing. Malformed files are in
// test_safetensors_malformed.cpp; the comparison with the Python library in tests/python/test_safetensors_oracle.py
// (which drives the hidden [oracle] test at the end of this file).
#include <catch2/catch.hpp>

#include <ATen/Context.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/empty.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/inspect.h"
#include "io/safetensors_file.h"
#include "io/safetensors_writer.h"
#include "io/tensor_store.h"
#include "test_support.h"
#include "util/error.h"

namespace fs = std::filesystem;
using namespace abmll::io;
using abmll::test::ScratchDir;

namespace {

// A tensor of `dtype` whose bytes follow a fixed pattern (0/1 for BOOL, any byte otherwise: NaNs and
// infinities included, which is why tensors are compared by bytes).
at::Tensor patterned(DType dtype, std::vector<std::int64_t> shape, int seed) {
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(to_scalar_type(dtype)));
  auto* p = static_cast<std::uint8_t*>(t.data_ptr());
  const std::size_t n = static_cast<std::size_t>(t.numel()) * dtype_size(dtype);
  for (std::size_t i = 0; i < n; ++i)
    p[i] = dtype == DType::BOOL ? (i * 7 + seed) % 2 : static_cast<std::uint8_t>(i * 131 + seed * 17 + 7);
  return t;
}

bool same_bytes(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  at::Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.numel() * ca.element_size()) == 0;
}

bool inside_mapping(const SafetensorsFile& file, const at::Tensor& t) {
  auto* p = static_cast<const std::uint8_t*>(t.data_ptr());
  return p >= file.mapping_begin() && p + t.numel() * t.element_size() <= file.mapping_begin() + file.mapping_size();
}

// Requires `body` to throw an InputError containing every fragment.
template <class F>
void require_input_error(F&& body, const std::vector<std::string>& fragments) {
  try {
    body();
    FAIL("no error");
  } catch (const abmll::InputError& e) {
    INFO("message: " << e.what());
    for (const auto& f : fragments) CHECK(std::string(e.what()).find(f) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("safetensors: every dtype round-trips through the writer and the reader", "[safetensors]") {
  ScratchDir dir;
  NamedTensors tensors;
  int seed = 0;
  for (DType dtype : all_dtypes()) tensors.emplace_back(std::string(dtype_name(dtype)), patterned(dtype, {3, 5}, ++seed));
  tensors.emplace_back("scalar", patterned(DType::F64, {}, 1));
  tensors.emplace_back("empty", patterned(DType::BF16, {0, 4}, 1));
  tensors.emplace_back("transposed", patterned(DType::F32, {4, 6}, 2).t());  // not contiguous
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "ünïcode"}};
  write_safetensors(dir / "all.safetensors", tensors, metadata);

  auto file = SafetensorsFile::open(dir / "all.safetensors");
  CHECK(file.metadata() == metadata);
  CHECK(file.names().size() == tensors.size());
  for (const auto& [name, expected] : tensors) {
    INFO("tensor " << name);
    at::Tensor got = file.tensor(name);
    CHECK(file.entry(name).shape == expected.sizes().vec());
    CHECK(same_bytes(got, expected));
    // The writer orders tensors by element size, so every one is aligned and none is copied.
    if (got.numel() > 0) CHECK(inside_mapping(file, got));
  }
}

TEST_CASE("safetensors: tensors are views of the mapping and outlive the file object", "[safetensors]") {
  ScratchDir dir;
  const std::int64_t n = 16 * 1024 * 1024;  // 64 MiB of F32
  write_safetensors(dir / "big.safetensors", {{"big", at::arange(n, at::kFloat)}, {"small", at::arange(3, at::kInt)}});
  at::Tensor big;
  {
    auto file = SafetensorsFile::open(dir / "big.safetensors");
    big = file.tensor("big");
    CHECK(inside_mapping(file, big));  // no copy of the 64 MiB
    CHECK(file.mapping_size() > static_cast<std::size_t>(n) * 4);
  }
  // The file object is gone; the tensor keeps the mapping alive.
  CHECK(big[n - 1].item<float>() == static_cast<float>(n - 1));
  CHECK(big[12345].item<float>() == 12345.0f);
  // Writes touch a private copy of the page, never the file.
  big.fill_(-1.0f);
  CHECK(big[7].item<float>() == -1.0f);
  auto again = SafetensorsFile::open(dir / "big.safetensors");
  CHECK(again.tensor("big")[7].item<float>() == 7.0f);
}

TEST_CASE("safetensors: the writer pads the header and refuses what the format cannot hold", "[safetensors]") {
  ScratchDir dir;
  const fs::path path = dir / "w.safetensors";
  write_safetensors(path, {{"a", at::arange(3, at::kByte)}, {"b", at::arange(2, at::kDouble)}}, {{"k", "v"}});
  const std::string bytes = abmll::test::read_text(path);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  CHECK(bytes.size() == 8 + n + 3 + 16);
  const std::string header = bytes.substr(8, n);
  CHECK(header.find_last_not_of(' ') < header.size());
  CHECK(nlohmann::json::parse(header)["b"]["data_offsets"] == nlohmann::json::array({0, 16}));  // 8-byte first

  // Writing again replaces the file.
  write_safetensors(path, {{"c", at::arange(2, at::kLong)}});
  CHECK(SafetensorsFile::open(path).names() == std::vector<std::string>{"c"});

  auto x = at::arange(2, at::kFloat);
  CHECK_THROWS_WITH(write_safetensors(path, {{"x", x}, {"x", x}}), Catch::Contains("duplicate tensor name 'x'"));
  CHECK_THROWS_WITH(write_safetensors(path, {{"__metadata__", x}}), Catch::Contains("reserved"));
  CHECK_THROWS_WITH(write_safetensors(path, {{"z", at::arange(2, at::kDouble).to(at::kComplexDouble)}}),
                    Catch::Contains("tensor 'z'") && Catch::Contains("cannot store"));
  CHECK_THROWS_WITH(write_safetensors(path, {{"u", at::Tensor()}}), Catch::Contains("undefined"));
  CHECK(SafetensorsFile::open(path).names() == std::vector<std::string>{"c"});  // failed writes left it alone

  // Lazy views (conjugate, negative) are written with their true values.
  at::Tensor z = patterned(DType::C64, {3}, 5);
  write_safetensors(path, {{"zc", z.conj()}, {"zn", z.neg()}});
  auto back = SafetensorsFile::open(path);
  CHECK(same_bytes(back.tensor("zc"), z.conj().resolve_conj()));
  CHECK(same_bytes(back.tensor("zn"), z.neg().resolve_neg()));
}

TEST_CASE("safetensors: device tensors are written from a CPU copy", "[safetensors][cuda]") {
  if (!at::hasCUDA()) {
    WARN("skipped: no CUDA device");
    return;
  }
  ScratchDir dir;
  at::Tensor cpu = patterned(DType::BF16, {4, 8}, 9);
  write_safetensors(dir / "gpu.safetensors", {{"g", cpu.to(at::kCUDA).t()}});
  CHECK(same_bytes(SafetensorsFile::open(dir / "gpu.safetensors").tensor("g"), cpu.t()));
}

namespace {

// Two shards and an index, as Hugging Face writes them: shard 1 {layers.2.w, layers.10.w}, shard 2 {embed}.
void write_sharded(const fs::path& dir, const std::string& weight_map_json) {
  write_safetensors(dir / "model-00001-of-00002.safetensors",
                    {{"layers.2.w", patterned(DType::BF16, {2, 3}, 1)}, {"layers.10.w", patterned(DType::F32, {4}, 2)}},
                    {{"format", "pt"}});
  write_safetensors(dir / "model-00002-of-00002.safetensors", {{"embed", patterned(DType::I64, {5, 2}, 3)}});
  abmll::test::write_text(dir / "model.safetensors.index.json",
                          R"({"metadata": {"total_size": 108}, "weight_map": )" + weight_map_json + "}");
}

const std::string kWeightMap = R"({"layers.2.w": "model-00001-of-00002.safetensors",
  "layers.10.w": "model-00001-of-00002.safetensors", "embed": "model-00002-of-00002.safetensors"})";

}  // namespace

TEST_CASE("safetensors: sharded checkpoints load through their index or their folder", "[safetensors]") {
  ScratchDir dir;
  write_sharded(dir.path(), kWeightMap);
  for (const fs::path& path : {dir / "model.safetensors.index.json", dir.path()}) {
    auto store = TensorStore::open(path);
    CHECK(store.kind() == TensorStore::Kind::sharded);
    CHECK(store.files().size() == 2);
    CHECK(store.names() == std::vector<std::string>{"embed", "layers.10.w", "layers.2.w"});
    CHECK(store.metadata().at("total_size") == "108");
    CHECK(store.entry("embed").file.filename() == "model-00002-of-00002.safetensors");
    CHECK(store.entry("layers.2.w").entry.dtype == DType::BF16);
    CHECK(same_bytes(store.tensor("embed"), patterned(DType::I64, {5, 2}, 3)));
    CHECK(same_bytes(store.tensor("layers.10.w"), patterned(DType::F32, {4}, 2)));
    require_input_error([&] { store.tensor("nope"); }, {"no tensor 'nope'"});
  }
}

TEST_CASE("safetensors: inconsistent sharded checkpoints are refused", "[safetensors]") {
  ScratchDir dir;
  const std::string s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
  auto refused = [&](const std::string& weight_map, const std::vector<std::string>& fragments) {
    write_sharded(dir.path(), weight_map);
    auto fragments_with_index = fragments;
    fragments_with_index.push_back("model.safetensors.index.json");
    require_input_error([&] { TensorStore::open(dir / "model.safetensors.index.json"); }, fragments_with_index);
  };
  refused(R"({"layers.2.w": ")" + s1 + R"(", "layers.10.w": ")" + s1 + R"(", "embed": "missing.safetensors"})",
          {"shard 'missing.safetensors'", "does not exist", "tensor 'embed'"});
  refused(R"({"layers.2.w": ")" + s1 + R"(", "layers.10.w": ")" + s1 + R"(", "embed": "../)" + s2 + R"("})",
          {"not a plain file name"});
  refused(R"({"layers.2.w": ")" + s1 + R"(", "layers.10.w": ")" + s1 + R"(", "embed": "/etc/passwd"})",
          {"not a plain file name"});
  refused(R"({"layers.2.w": ")" + s1 + R"(", "layers.10.w": ")" + s2 + R"(", "embed": ")" + s2 + R"("})",
          {"tensor 'layers.10.w' is listed in shard", "which does not hold it"});
  refused(R"({"layers.2.w": ")" + s1 + R"(", "embed": ")" + s2 + R"("})",
          {"tensor 'layers.10.w'", "is not listed in the index"});
  refused(R"({"layers.2.w": ")" + s1 + R"(", "layers.2.w": ")" + s1 + R"(", "layers.10.w": ")" + s1 +
              R"(", "embed": ")" + s2 + R"("})",
          {"duplicate key 'layers.2.w'"});
  refused(R"(["not", "an", "object"])", {"\"weight_map\""});
  refused(R"({"embed": 3})", {"tensor 'embed'", "shard must be a file name"});

  // A tensor in two shards: shard 2 also holds layers.2.w, which the index puts in shard 1.
  write_sharded(dir.path(), kWeightMap);
  write_safetensors(dir / s2, {{"embed", patterned(DType::I64, {5, 2}, 3)}, {"layers.2.w", patterned(DType::U8, {1}, 1)}});
  require_input_error([&] { TensorStore::open(dir.path()); },
                      {"tensor 'layers.2.w' is in shard '" + s2 + "', but the index puts it in shard '" + s1 + "'"});
  // A malformed shard is refused with the shard's name.
  abmll::test::write_text(dir / s2, "garbage!garbage!");
  require_input_error([&] { TensorStore::open(dir.path()); }, {s2, "header length"});
}

TEST_CASE("safetensors: model folders", "[safetensors]") {
  ScratchDir dir;
  require_input_error([&] { TensorStore::open(dir / "absent"); }, {"absent", "no such file or folder"});
  require_input_error([&] { TensorStore::open(dir.path()); }, {"holds no model.safetensors"});
  write_safetensors(dir / "adapter.safetensors", {{"a", at::arange(2, at::kFloat)}});
  CHECK(TensorStore::open(dir.path()).source().filename() == "adapter.safetensors");
  write_safetensors(dir / "other.safetensors", {{"b", at::arange(2, at::kFloat)}});
  require_input_error([&] { TensorStore::open(dir.path()); },
                      {"2 .safetensors files", "adapter.safetensors, other.safetensors"});
  write_safetensors(dir / "model.safetensors", {{"m", at::arange(2, at::kFloat)}}, {{"format", "pt"}});
  auto store = TensorStore::open(dir.path());
  CHECK(store.kind() == TensorStore::Kind::file);
  CHECK(store.names() == std::vector<std::string>{"m"});
  CHECK(store.metadata().at("format") == "pt");
}

TEST_CASE("safetensors: inspect lists tensors in natural order with totals", "[safetensors]") {
  ScratchDir dir;
  write_sharded(dir.path(), kWeightMap);
  InspectListing listing = inspect_checkpoint(dir.path());
  CHECK(listing.kind == "sharded");
  REQUIRE(listing.rows.size() == 3);
  CHECK(listing.rows[0].name == "embed");
  CHECK(listing.rows[1].name == "layers.2.w");
  CHECK(listing.rows[2].name == "layers.10.w");
  CHECK(listing.rows[1].dtype == "BF16");
  CHECK(listing.rows[1].parameters == 6);
  CHECK(listing.rows[1].bytes == 12);
  CHECK(listing.total_parameters == 10 + 6 + 4);
  CHECK(listing.total_bytes == 80 + 12 + 16);

  const std::string text = render_text(listing);
  CHECK_THAT(text, Catch::Contains("sharded checkpoint, 2 shards"));
  CHECK_THAT(text, Catch::Contains("layers.2.w"));
  CHECK_THAT(text, Catch::Contains("[2, 3]"));
  CHECK_THAT(text, Catch::Contains("3 tensors, 20 parameters (20), 108 bytes (108 B)"));
  const nlohmann::json json = render_json(listing);
  CHECK(json["total_parameters"] == 20);
  CHECK(json["tensors"][2]["name"] == "layers.10.w");
  CHECK(json["tensors"][2]["file"] == "model-00001-of-00002.safetensors");
  CHECK(json["tensors"][0]["shape"] == nlohmann::json::array({5, 2}));
  CHECK(json["metadata"]["total_size"] == "108");

  CHECK(natural_less("a2", "a10"));
  CHECK_FALSE(natural_less("a10", "a2"));
  CHECK(natural_less("layers.9.x", "layers.10.a"));
  CHECK(natural_less("a", "a0"));
  CHECK_FALSE(natural_less("x", "x"));
}

// Driven by tests/python/test_safetensors_oracle.py, never by ctest directly: reads every *.safetensors under
// $ABMLL_ORACLE_DIR/in (written by the Python library), and for each file writes
//  - out/<name>.json: per tensor its dtype, shape and bytes (hex), as abmll read them;
//  - out/<name>: the same tensors and metadata written back by abmll's writer.
TEST_CASE("safetensors: oracle helper", "[.][oracle]") {
  const char* root = std::getenv("ABMLL_ORACLE_DIR");
  REQUIRE(root != nullptr);
  const fs::path in = fs::path(root) / "in", out = fs::path(root) / "out";
  fs::create_directories(out);
  std::size_t files = 0;
  for (const auto& item : fs::directory_iterator(in)) {
    if (item.path().extension() != ".safetensors") continue;
    ++files;
    auto file = SafetensorsFile::open(item.path());
    nlohmann::json dump = nlohmann::json::object();
    NamedTensors tensors;
    for (const auto& name : file.names()) {
      at::Tensor t = file.tensor(name);
      const auto* p = static_cast<const std::uint8_t*>(t.data_ptr());
      std::string hex;
      for (std::int64_t i = 0; i < t.numel() * t.element_size(); ++i) hex += fmt::format("{:02x}", p[i]);
      dump[name] = {{"dtype", std::string(dtype_name(file.entry(name).dtype))}, {"shape", t.sizes().vec()},
                    {"hex", hex}};
      tensors.emplace_back(name, t);
    }
    abmll::test::write_text(out / (item.path().filename().string() + ".json"), dump.dump());
    write_safetensors(out / item.path().filename(), tensors, file.metadata());
  }
  CHECK(files > 0);
}
