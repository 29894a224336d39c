// Malformed safetensors files: each is written byte by byte and must be refused with an abmll::InputError whose
// message names the file, the tensor where there is one, and the problem. Also unusual but valid files (empty,
// zero-size tensors, scalars, misaligned tensors), and the fuzzing corpus (tests/data/safetensors_corpus), each of
// whose files must parse or be refused cleanly.
#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "../fuzz/safetensors_fuzz_input.h"
#include "io/safetensors_file.h"
#include "io/safetensors_format.h"
#include "test_support.h"
#include "util/error.h"

namespace fs = std::filesystem;
using abmll::InputError;
using abmll::io::SafetensorsFile;
using abmll::test::ScratchDir;

namespace {

// The bytes of a safetensors file: the 8-byte little-endian `length` (by default the header's size), the header,
// then `data_bytes` bytes of data (0, 1, 2, ...).
std::string raw_file(const std::string& header, std::size_t data_bytes, std::uint64_t length = ~0ull) {
  if (length == ~0ull) length = header.size();
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((length >> (8 * i)) & 0xFF);
  out += header;
  for (std::size_t i = 0; i < data_bytes; ++i) out += static_cast<char>(i & 0xFF);
  return out;
}

// Writes `bytes` to `dir`/bad.safetensors and requires opening it to throw an InputError containing every fragment
// and the file's name. Any other exception fails the test.
void require_refused(const ScratchDir& dir, const std::string& bytes, const std::vector<std::string>& fragments) {
  const fs::path path = dir / "bad.safetensors";
  abmll::test::write_text(path, bytes);
  try {
    SafetensorsFile::open(path);
    FAIL("opening the malformed file succeeded");
  } catch (const InputError& e) {
    std::string message = e.what();
    INFO("message: " << message);
    CHECK(message.find("bad.safetensors") != std::string::npos);
    for (const auto& fragment : fragments) CHECK(message.find(fragment) != std::string::npos);
  }
}

const std::string kGood = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

}  // namespace

TEST_CASE("safetensors: truncated and tiny files are refused", "[safetensors]") {
  ScratchDir dir;
  require_refused(dir, "", {"0 bytes", "too few"});
  require_refused(dir, std::string("\x05\x00\x00", 3), {"3 bytes", "too few"});
  require_refused(dir, raw_file("{" + kGood + "}", 0, 200), {"header length 200", "exceeds the file size"});
  // The header promises 8 bytes of data; only 5 are there.
  require_refused(dir, raw_file("{" + kGood + "}", 5), {"tensor 'a'", "data_offsets [0, 8)", "out of bounds", "5 bytes"});
}

TEST_CASE("safetensors: huge header lengths are refused before any allocation", "[safetensors]") {
  ScratchDir dir;
  require_refused(dir, raw_file("{}", 0, 100'000'001), {"header length 100000001", "exceeds the limit"});
  require_refused(dir, raw_file("{}", 0, 1ull << 40), {"exceeds the limit"});
  require_refused(dir, raw_file("{}", 0, ~0ull - 1), {"exceeds the limit"});  // 8 + N would wrap around
}

TEST_CASE("safetensors: headers that are not valid UTF-8 JSON objects are refused", "[safetensors]") {
  ScratchDir dir;
  require_refused(dir, raw_file(R"({"a": )", 0), {"not valid JSON"});
  require_refused(dir, raw_file(R"({} x)", 0), {"not valid JSON"});
  require_refused(dir, raw_file("[]", 0), {"must start with '{'"});
  require_refused(dir, raw_file(" {}", 0), {"must start with '{'"});
  require_refused(dir, raw_file("", 0), {"must start with '{'"});
  require_refused(dir, raw_file("{\"\xff\":1}", 0), {"not valid UTF-8", "byte 2"});
  require_refused(dir, raw_file("{\"\xc0\xaf\":1}", 0), {"not valid UTF-8"});      // overlong '/'
  require_refused(dir, raw_file("{\"\xed\xa0\x80\":1}", 0), {"not valid UTF-8"});  // a surrogate
  require_refused(dir, raw_file("{\"\xf4\x90\x80\x80\":1}", 0), {"not valid UTF-8"});  // above U+10FFFF
  require_refused(dir, raw_file(R"({"\ud800":1})", 0), {"not valid JSON"});  // escaped lone surrogate
  require_refused(dir, raw_file(std::string("{\0}", 3), 0), {"not valid JSON"});
}

TEST_CASE("safetensors: duplicate names and keys are refused", "[safetensors]") {
  ScratchDir dir;
  require_refused(dir, raw_file("{" + kGood + "," + kGood + "}", 8), {"duplicate tensor name 'a'"});
  require_refused(dir, raw_file(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8),
                  {"tensor 'a'", "duplicate field 'dtype'"});
  require_refused(dir, raw_file(R"({"__metadata__":{},"__metadata__":{}})", 0), {"duplicate key '__metadata__'"});
  require_refused(dir, raw_file(R"({"__metadata__":{"k":"1","k":"2"}})", 0), {"__metadata__", "duplicate key 'k'"});
}

TEST_CASE("safetensors: entries of the wrong form are refused", "[safetensors]") {
  ScratchDir dir;
  auto entry = [](const std::string& body) { return "{\"w\":{" + body + "}}"; };
  require_refused(dir, raw_file(entry(R"("dtype":"F7","shape":[2],"data_offsets":[0,8])"), 8),
                  {"tensor 'w'", "unknown or unsupported dtype 'F7'"});
  require_refused(dir, raw_file(entry(R"("dtype":"F4","shape":[2],"data_offsets":[0,1])"), 1),
                  {"tensor 'w'", "unsupported dtype 'F4'"});
  require_refused(dir, raw_file(entry(R"("dtype":"F32","shape":[2])"), 8), {"tensor 'w'", "needs the fields"});
  require_refused(dir, raw_file(entry(R"("dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1)"), 8),
                  {"tensor 'w'", "unknown field 'x'"});
  require_refused(dir, raw_file(entry(R"("dtype":"F32","shape":[-2],"data_offsets":[0,8])"), 8),
                  {"tensor 'w'", "shape must hold non-negative integers", "negative"});
  require_refused(dir, raw_file(entry(R"("dtype":"F32","shape":[2.0],"data_offsets":[0,8])"), 8),
                  {"tensor 'w'", "non-integer"});
  require_refused(dir, raw_file(entry(R"("dtype":"F32","shape":["2"],"data_offsets":[0,8])"), 8),
                  {"tensor 'w'", "shape must hold non-negative integers, not a string"});
  require_refused(dir, raw_file(entry(R"("dtype":"F32","shape":[[2]],"data_offsets":[0,8])"), 8),
                  {"tensor 'w'", "not an array"});
  require_refused(dir, raw_file(entry(R"("dtype":"F32","shape":[2],"data_offsets":[0])"), 8),
                  {"tensor 'w'", "exactly 2 integers"});
  require_refused(dir, raw_file(entry(R"("dtype":"F32","shape":[2],"data_offsets":[0,8,8])"), 8),
                  {"tensor 'w'", "exactly 2 integers"});
  require_refused(dir, raw_file(entry(R"("dtype":32,"shape":[2],"data_offsets":[0,8])"), 8),
                  {"tensor 'w'", "field 'dtype' must not be an integer"});
  require_refused(dir, raw_file(R"({"w":[1,2]})", 0), {"tensor 'w'", "must be an object, not an array"});
  require_refused(dir, raw_file(R"({"__metadata__":{"k":1}})", 0), {"__metadata__", "'k' must be a string"});
  require_refused(dir, raw_file(R"({"__metadata__":"x"})", 0), {"__metadata__ must be an object"});
  std::string deep = "{\"w\":{\"shape\":" + std::string(10000, '[') + std::string(10000, ']') + "}}";
  require_refused(dir, raw_file(deep, 0), {"tensor 'w'", "not an array"});
  std::string rank65 = "[1";
  for (int i = 0; i < 64; ++i) rank65 += ",1";
  require_refused(dir, raw_file(entry(R"("dtype":"F32","shape":)" + rank65 + R"(],"data_offsets":[0,4])"), 4),
                  {"tensor 'w'", "more than 64 dimensions"});
}

TEST_CASE("safetensors: sizes that overflow or do not match are refused", "[safetensors]") {
  ScratchDir dir;
  auto entry = [](const std::string& body) { return "{\"w\":{" + body + "}}"; };
  require_refused(dir, raw_file(entry(R"("dtype":"F32","shape":[5,6],"data_offsets":[0,100])"), 100),
                  {"tensor 'w'", "data_offsets [0, 100) do not match dtype F32 x shape [5, 6] = 120 bytes"});
  require_refused(dir,
                  raw_file(entry(R"("dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0])"), 0),
                  {"tensor 'w'", "overflows 64 bits"});
  // 4 bytes x 2^32 x 2^32 x 16 is 2^70, which wraps to exactly 0 = the offsets' size: only an overflow check sees it.
  require_refused(dir, raw_file(entry(R"("dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0])"), 0),
                  {"tensor 'w'", "overflows 64 bits"});
  require_refused(dir, raw_file(entry(R"("dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0])"), 0),
                  {"tensor 'w'", "does not fit in a signed 64-bit integer"});
  require_refused(dir, raw_file(entry(R"("dtype":"U8","shape":[1],"data_offsets":[1,0])"), 1),
                  {"tensor 'w'", "end before they begin"});
  require_refused(dir, raw_file(entry(R"("dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,0])"), 1),
                  {"tensor 'w'", "end before they begin"});
  require_refused(dir, raw_file(entry(R"("dtype":"U8","shape":[1],"data_offsets":[7,8])"), 4),
                  {"tensor 'w'", "out of bounds"});
  require_refused(dir, raw_file(entry(R"("dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551616])"), 1),
                  {"tensor 'w'", "non-integer"});  // beyond 64 bits: parsed as a float
}

TEST_CASE("safetensors: overlaps, holes and uncovered bytes are refused", "[safetensors]") {
  ScratchDir dir;
  auto u8 = [](const char* name, int begin, int end) {
    return fmt::format(R"("{}":{{"dtype":"U8","shape":[{}],"data_offsets":[{},{}]}})", name, end - begin, begin, end);
  };
  // The header object of some entries (joined by fmt: GCC 12 warns falsely on "{" + std::string&&).
  auto obj = [](const std::vector<std::string>& entries) { return fmt::format("{{{}}}", fmt::join(entries, ",")); };
  require_refused(dir, raw_file(obj({u8("a", 0, 8), u8("b", 4, 12)}), 12),
                  {"tensor 'b'", "data_offsets [4, 12) overlap tensor 'a' [0, 8)"});
  require_refused(dir, raw_file(obj({u8("a", 0, 8), u8("b", 0, 8)}), 8), {"overlap"});
  require_refused(dir, raw_file(obj({u8("a", 0, 4), u8("b", 8, 12)}), 12),
                  {"bytes [4, 8) of the data section belong to no tensor", "tensor 'b'"});
  require_refused(dir, raw_file(obj({u8("b", 2, 4)}), 4), {"bytes [0, 2)", "belong to no tensor"});
  require_refused(dir, raw_file(obj({u8("a", 0, 4)}), 8),
                  {"bytes [4, 8) at the end of the data section belong to no tensor"});
  require_refused(dir, raw_file("{}", 3), {"bytes [0, 3) at the end"});
}

TEST_CASE("safetensors: names in messages are escaped and shortened", "[safetensors]") {
  ScratchDir dir;
  std::string long_name(5000, 'x');
  require_refused(dir, raw_file("{\"" + long_name + "\":1}", 0), {"'xxxx", "(5000 bytes)"});
  require_refused(dir, raw_file(R"({"a\u001b[2Jb":1})", 0), {"'a\\x1b[2Jb'"});
}

TEST_CASE("safetensors: unusual valid files load", "[safetensors]") {
  ScratchDir dir;
  const fs::path path = dir / "ok.safetensors";
  SECTION("no tensors") {
    abmll::test::write_text(path, raw_file("{}      ", 0));
    CHECK(SafetensorsFile::open(path).names().empty());
    abmll::test::write_text(path, raw_file(R"({"__metadata__":null})", 0));
    CHECK(SafetensorsFile::open(path).metadata().empty());
  }
  SECTION("zero-size tensors, a scalar, padding, metadata, a non-ASCII name") {
    abmll::test::write_text(
        path, raw_file(R"({"e":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},)"
                       R"("s":{"dtype":"I32","shape":[],"data_offsets":[0,4]},)"
                       R"("z":{"dtype":"BF16","shape":[0],"data_offsets":[0,0]},)"
                       R"("gewicht.ä":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},)"
                       R"("__metadata__":{"format":"pt"}}     )", 6));
    auto file = SafetensorsFile::open(path);
    CHECK(file.names().size() == 4);
    CHECK(file.metadata().at("format") == "pt");
    CHECK(file.tensor("e").sizes().vec() == std::vector<std::int64_t>{0, 3});
    CHECK(file.tensor("s").dim() == 0);
    CHECK(file.tensor("s").item<std::int32_t>() == 0x03020100);  // little-endian bytes 0, 1, 2, 3
    CHECK(file.tensor("gewicht.ä").sum().item<std::int64_t>() == 4 + 5);
  }
  SECTION("a misaligned tensor is copied, with the right values") {
    // I8 x 3 at [0, 3), then F32 x 2 at [3, 11): the F32 data is not 4-aligned in memory.
    std::string header = R"({"b":{"dtype":"I8","shape":[3],"data_offsets":[0,3]},)"
                         R"("f":{"dtype":"F32","shape":[2],"data_offsets":[3,11]}})";
    header.append((8 - header.size() % 8) % 8, ' ');
    std::string bytes = raw_file(header, 3);
    float values[2] = {1.5f, -2.25f};
    bytes.append(reinterpret_cast<const char*>(values), sizeof values);
    abmll::test::write_text(path, bytes);
    auto file = SafetensorsFile::open(path);
    at::Tensor f = file.tensor("f");
    CHECK(reinterpret_cast<std::uintptr_t>(f.data_ptr()) % 4 == 0);
    CHECK(f[0].item<float>() == 1.5f);
    CHECK(f[1].item<float>() == -2.25f);
    at::Tensor b = file.tensor("b");  // 1-byte elements are always aligned: a view of the mapping
    CHECK(static_cast<const std::uint8_t*>(b.data_ptr()) == file.mapping_begin() + 8 + header.size());
  }
}

TEST_CASE("safetensors: every file of the fuzzing corpus parses or is refused cleanly", "[safetensors]") {
  const fs::path corpus = fs::path(ABMLL_TEST_DATA) / "safetensors_corpus";
  REQUIRE(fs::is_directory(corpus));
  std::size_t files = 0, refused = 0;
  for (const auto& item : fs::directory_iterator(corpus)) {
    if (!item.is_regular_file()) continue;
    ++files;
    INFO("corpus file: " << item.path().filename().string());
    const std::string bytes = abmll::test::read_text(item.path());
    // Exactly what the fuzzer ran (raw file, bare header, index): only InputError may come out of it.
    CHECK_NOTHROW(abmll::fuzz::run_safetensors_input(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                                     bytes.size()));
    // The memory-mapped reader on the same bytes as a file, touching every tensor's data.
    try {
      auto file = SafetensorsFile::open(item.path());
      for (const auto& name : file.names()) CHECK(file.tensor(name).clone().numel() >= 0);  // clone: reads every byte, any dtype
    } catch (const InputError& e) {
      ++refused;
      CHECK(std::string(e.what()).find(item.path().filename().string()) != std::string::npos);
    }
  }
  CHECK(files >= 10);
  CHECK(refused > 0);
  CHECK(refused < files);
}
