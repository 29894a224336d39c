// Strict parsing of safetensors headers and index files (see safetensors_format.h for what is checked).
//
// The header is parsed with nlohmann's SAX interface rather than into a json document: a hostile 100 MB header of
// tiny values would otherwise cost gigabytes of nodes, and a document silently keeps the last of duplicate keys.
// The handler accepts only the shape of a valid header, so it fails at the first unexpected value and only valid
// tensor entries are ever stored.
#include "io/safetensors_format.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <limits>
#include <set>
#include <tuple>

#include "util/error.h"

namespace abmll::io {
namespace {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  std::size_t size;
};

constexpr std::array<DTypeInfo, 19> kDTypes = {{
    {DType::BOOL, "BOOL", 1},       {DType::U8, "U8", 1},           {DType::I8, "I8", 1},
    {DType::U16, "U16", 2},         {DType::I16, "I16", 2},         {DType::U32, "U32", 4},
    {DType::I32, "I32", 4},         {DType::U64, "U64", 8},         {DType::I64, "I64", 8},
    {DType::F16, "F16", 2},         {DType::BF16, "BF16", 2},       {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},         {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::F8_E4M3FNUZ, "F8_E4M3FNUZ", 1}, {DType::F8_E5M2FNUZ, "F8_E5M2FNUZ", 1},
    {DType::F8_E8M0, "F8_E8M0", 1}, {DType::C64, "C64", 8},
}};

const DTypeInfo& info(DType dtype) {
  for (const auto& i : kDTypes)
    if (i.dtype == dtype) return i;
  throw Error(fmt::format("internal: unknown DType {}", static_cast<int>(dtype)));
}

// Messages from nlohmann quote the offending input; keep them short and printable.
std::string short_printable(std::string_view text, std::size_t max_bytes = 200) {
  std::string out;
  for (unsigned char c : text.substr(0, max_bytes))
    out += (c < 0x20 || c >= 0x7F) ? fmt::format("\\x{:02x}", c) : std::string(1, static_cast<char>(c));
  if (text.size() > max_bytes) out += "...";
  return out;
}

// SAX handler accepting exactly: { "name": {"dtype": S, "shape": [U...], "data_offsets": [U, U]}, ...,
// "__metadata__": {S: S, ...} }. Throws InputError (prefixed by the caller) at the first deviation.
class HeaderHandler : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::vector<TensorEntry> entries;
  std::map<std::string, std::string> metadata;

  bool null() override {
    // "__metadata__": null means no metadata to the reference implementation (an Option in Rust); accept it.
    if (state_ == State::root && key_ == "__metadata__") {
      if (seen_metadata_) throw InputError("duplicate key '__metadata__'");
      seen_metadata_ = true;
      return true;
    }
    return scalar("null");
  }
  bool boolean(bool) override { return scalar("a boolean"); }
  bool number_integer(number_integer_t) override { return scalar("a negative integer"); }
  bool number_float(number_float_t, const string_t&) override { return scalar("a non-integer number"); }
  bool binary(binary_t&) override { return scalar("binary data"); }

  bool number_unsigned(number_unsigned_t value) override {
    if (state_ == State::shape) {
      if (current_.shape.size() >= kMaxRank) fail_tensor(fmt::format("shape has more than {} dimensions", kMaxRank));
      if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail_tensor(fmt::format("shape dimension {} does not fit in a signed 64-bit integer", value));
      current_.shape.push_back(static_cast<std::int64_t>(value));
      return true;
    }
    if (state_ == State::offsets) {
      if (offsets_.size() >= 2) fail_tensor("data_offsets must hold exactly 2 integers [begin, end]");
      offsets_.push_back(value);
      return true;
    }
    return scalar("an integer");
  }

  bool string(string_t& value) override {
    if (state_ == State::metadata) {
      if (!metadata.emplace(key_, value).second)
        throw InputError(fmt::format("__metadata__: duplicate key {}", quote_name(key_)));
      return true;
    }
    if (state_ == State::tensor && key_ == "dtype") {
      auto dtype = dtype_from_name(value);
      if (!dtype) fail_tensor(fmt::format("unknown or unsupported dtype {}", quote_name(value)));
      current_.dtype = *dtype;
      return true;
    }
    return scalar("a string");
  }

  bool start_object(std::size_t) override {
    switch (state_) {
      case State::start: state_ = State::root; return true;
      case State::root:
        if (key_ == "__metadata__") {
          if (seen_metadata_) throw InputError("duplicate key '__metadata__'");
          seen_metadata_ = true;
          state_ = State::metadata;
        } else {
          current_ = TensorEntry{};
          current_.name = key_;
          offsets_.clear();
          seen_fields_ = 0;
          state_ = State::tensor;
        }
        return true;
      default: return scalar("an object");
    }
  }

  bool key(string_t& value) override {
    key_ = value;
    if (state_ == State::tensor) {
      unsigned bit = key_ == "dtype" ? 1u : key_ == "shape" ? 2u : key_ == "data_offsets" ? 4u : 0u;
      if (bit == 0) fail_tensor(fmt::format("unknown field {}", quote_name(key_)));
      if (seen_fields_ & bit) fail_tensor(fmt::format("duplicate field {}", quote_name(key_)));
      seen_fields_ |= bit;
    }
    return true;
  }

  bool end_object() override {
    if (state_ == State::metadata) {
      state_ = State::root;
    } else if (state_ == State::tensor) {
      if (seen_fields_ != 7) fail_tensor("needs the fields dtype, shape and data_offsets");
      current_.data_begin = offsets_[0];
      current_.data_end = offsets_[1];
      entries.push_back(std::move(current_));
      state_ = State::root;
    } else {  // the root object
      state_ = State::done;
    }
    return true;
  }

  bool start_array(std::size_t) override {
    if (state_ == State::tensor && key_ == "shape") {
      state_ = State::shape;
      return true;
    }
    if (state_ == State::tensor && key_ == "data_offsets") {
      state_ = State::offsets;
      return true;
    }
    return scalar("an array");
  }

  bool end_array() override {
    if (state_ == State::offsets && offsets_.size() != 2)
      fail_tensor("data_offsets must hold exactly 2 integers [begin, end]");
    state_ = State::tensor;
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 5: ..."; drop the tag.
    std::string_view what = e.what();
    if (auto pos = what.find("] "); pos != std::string_view::npos) what.remove_prefix(pos + 2);
    throw InputError(fmt::format("header is not valid JSON (byte {}): {}", position, short_printable(what)));
  }

 private:
  enum class State { start, root, metadata, tensor, shape, offsets, done };

  // A value of the wrong kind where the header does not allow it.
  bool scalar(std::string_view what) {
    switch (state_) {
      case State::start: throw InputError(fmt::format("header must be a JSON object, not {}", what));
      case State::root:
        if (key_ == "__metadata__") throw InputError(fmt::format("__metadata__ must be an object, not {}", what));
        fail_tensor(fmt::format("must be an object, not {}", what));
      case State::metadata:
        throw InputError(fmt::format("__metadata__: value of {} must be a string, not {}", quote_name(key_), what));
      case State::tensor: fail_tensor(fmt::format("field {} must not be {}", quote_name(key_), what));
      case State::shape: fail_tensor(fmt::format("shape must hold non-negative integers, not {}", what));
      case State::offsets: fail_tensor(fmt::format("data_offsets must hold non-negative integers, not {}", what));
      case State::done: break;
    }
    throw InputError(fmt::format("unexpected {} in header", what));
  }

  [[noreturn]] void fail_tensor(const std::string& problem) {
    throw InputError(fmt::format("tensor {}: {}", quote_name(current_name()), problem));
  }
  const std::string& current_name() const { return state_ == State::root ? key_ : current_.name; }

  State state_ = State::start;
  std::string key_;
  TensorEntry current_;
  std::vector<std::uint64_t> offsets_;
  unsigned seen_fields_ = 0;  // bits: 1 dtype, 2 shape, 4 data_offsets
  bool seen_metadata_ = false;
};

// Checks one entry against the data section: begin <= end <= data_size, and end - begin = dtype size x elements.
void check_entry(const TensorEntry& e, std::uint64_t data_size) {
  auto where = [&] { return fmt::format("tensor {}: ", quote_name(e.name)); };
  if (e.data_begin > e.data_end)
    throw InputError(where() + fmt::format("data_offsets [{}, {}) end before they begin", e.data_begin, e.data_end));
  if (e.data_end > data_size)
    throw InputError(where() + fmt::format("data_offsets [{}, {}) are out of bounds: the data section has {} bytes",
                                           e.data_begin, e.data_end, data_size));
  std::uint64_t bytes = dtype_size(e.dtype);
  for (std::int64_t d : e.shape) {
    if (__builtin_mul_overflow(bytes, static_cast<std::uint64_t>(d), &bytes))
      throw InputError(where() + fmt::format("dtype {} x shape {} overflows 64 bits", dtype_name(e.dtype),
                                             format_shape(e.shape)));
  }
  if (bytes != e.bytes())
    throw InputError(where() + fmt::format("data_offsets [{}, {}) do not match dtype {} x shape {} = {} bytes",
                                           e.data_begin, e.data_end, dtype_name(e.dtype), format_shape(e.shape),
                                           bytes));
}

// Checks that the entries, sorted by offset, tile [0, data_size) exactly; names are unique.
void check_layout(std::vector<TensorEntry>& entries, std::uint64_t data_size) {
  std::vector<const TensorEntry*> by_name;
  for (const auto& e : entries) by_name.push_back(&e);
  std::sort(by_name.begin(), by_name.end(), [](auto* a, auto* b) { return a->name < b->name; });
  for (std::size_t i = 1; i < by_name.size(); ++i)
    if (by_name[i]->name == by_name[i - 1]->name)
      throw InputError(fmt::format("duplicate tensor name {}", quote_name(by_name[i]->name)));

  std::sort(entries.begin(), entries.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return std::tie(a.data_begin, a.data_end) < std::tie(b.data_begin, b.data_end);
  });
  std::uint64_t covered = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (e.data_begin > covered)
      throw InputError(fmt::format("bytes [{}, {}) of the data section belong to no tensor (a hole before tensor {})",
                                   covered, e.data_begin, quote_name(e.name)));
    if (e.data_begin < covered)
      throw InputError(fmt::format("tensor {}: data_offsets [{}, {}) overlap tensor {} [{}, {})", quote_name(e.name),
                                   e.data_begin, e.data_end, quote_name(entries[i - 1].name),
                                   entries[i - 1].data_begin, entries[i - 1].data_end));
    covered = e.data_end;
  }
  if (covered != data_size)
    throw InputError(fmt::format("bytes [{}, {}) at the end of the data section belong to no tensor", covered,
                                 data_size));
}

}  // namespace

const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> all = [] {
    std::vector<DType> v;
    for (const auto& i : kDTypes) v.push_back(i.dtype);
    return v;
  }();
  return all;
}

std::string_view dtype_name(DType dtype) { return info(dtype).name; }
std::size_t dtype_size(DType dtype) { return info(dtype).size; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& i : kDTypes)
    if (i.name == name) return i.dtype;
  return std::nullopt;
}

std::uint64_t TensorEntry::numel() const {
  std::uint64_t n = 1;
  for (std::int64_t d : shape) n *= static_cast<std::uint64_t>(d);
  return n;
}

const TensorEntry* SafetensorsHeader::find(std::string_view name) const {
  for (const auto& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

SafetensorsHeader parse_safetensors_header(const std::uint8_t* data, std::size_t size, std::string_view source_name) {
  return with_context(std::string(source_name), [&] {
    if (size < 8)
      throw InputError(fmt::format("file has {} bytes, too few for a safetensors header (8-byte length + JSON)", size));
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];  // little-endian
    if (n > kMaxHeaderSize)
      throw InputError(fmt::format("header length {} exceeds the limit of {} bytes", n, kMaxHeaderSize));
    if (n > size - 8)
      throw InputError(fmt::format("header length {} exceeds the file size ({} bytes after the length): truncated?",
                                   n, size - 8));
    std::string_view json(reinterpret_cast<const char*>(data + 8), n);
    if (auto bad = find_invalid_utf8(json))
      throw InputError(fmt::format("header is not valid UTF-8 (byte {} of the header)", *bad));
    if (json.empty() || json.front() != '{') throw InputError("header must start with '{'");

    SafetensorsHeader header;
    header.header_size = n;
    header.data_offset = 8 + n;
    header.data_size = size - header.data_offset;
    HeaderHandler handler;
    nlohmann::json::sax_parse(json.begin(), json.end(), &handler);
    for (const auto& e : handler.entries) check_entry(e, header.data_size);
    check_layout(handler.entries, header.data_size);
    header.entries = std::move(handler.entries);
    header.metadata = std::move(handler.metadata);
    return header;
  });
}

SafetensorsIndex parse_safetensors_index(std::string_view text, std::string_view source_name) {
  return with_context(std::string(source_name), [&] {
    if (text.size() > kMaxHeaderSize)
      throw InputError(fmt::format("index has {} bytes, more than the limit of {}", text.size(), kMaxHeaderSize));
    if (auto bad = find_invalid_utf8(text)) throw InputError(fmt::format("not valid UTF-8 (byte {})", *bad));
    // A document parse, with a callback that rejects duplicate keys (nlohmann keeps the last one silently) and
    // nesting deeper than an index needs. `keys` holds the keys seen in each open object.
    std::vector<std::set<std::string>> keys;
    auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      using E = nlohmann::json::parse_event_t;
      if (depth > 16) throw InputError("JSON nested deeper than 16 levels");
      if (event == E::object_start) keys.emplace_back();
      if (event == E::object_end) keys.pop_back();
      if (event == E::key && !keys.back().insert(parsed.get<std::string>()).second)
        throw InputError(fmt::format("duplicate key {}", quote_name(parsed.get<std::string>())));
      return true;
    };
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(text.begin(), text.end(), callback);
    } catch (const nlohmann::json::exception& e) {
      std::string_view what = e.what();
      if (auto pos = what.find("] "); pos != std::string_view::npos) what.remove_prefix(pos + 2);
      throw InputError(fmt::format("not valid JSON: {}", short_printable(what)));
    }
    if (!doc.is_object()) throw InputError("must be a JSON object");
    auto map = doc.find("weight_map");
    if (map == doc.end() || !map->is_object()) throw InputError("needs a \"weight_map\" object");

    SafetensorsIndex index;
    for (const auto& [name, shard] : map->items()) {
      if (!shard.is_string())
        throw InputError(fmt::format("weight_map: tensor {}: shard must be a file name string", quote_name(name)));
      const auto& file = shard.get_ref<const std::string&>();
      if (file.empty() || file == "." || file == ".." || file.find_first_of(std::string_view("/\\\0", 3)) !=
          std::string::npos)
        throw InputError(fmt::format("weight_map: tensor {}: shard {} is not a plain file name in the index's folder",
                                     quote_name(name), quote_name(file)));
      index.weight_map.emplace(name, file);
    }
    if (auto meta = doc.find("metadata"); meta != doc.end() && !meta->is_null()) {
      if (!meta->is_object()) throw InputError("\"metadata\" must be an object");
      for (const auto& [key, value] : meta->items())
        index.metadata.emplace(key, value.is_string() ? value.get<std::string>() : value.dump());
    }
    return index;
  });
}

std::optional<std::size_t> find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t n = text.size(), i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) { ++i; continue; }
    std::size_t len;
    std::uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
    else return i;
    if (n - i < len) return i;
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::nullopt;
}

std::string quote_name(std::string_view name) {
  constexpr std::size_t kMax = 120;
  std::string out = "'";
  std::size_t end = std::min(name.size(), kMax);
  // Do not cut a UTF-8 sequence in two: back off to the start of the last code point.
  while (end < name.size() && end > 0 && (static_cast<unsigned char>(name[end]) & 0xC0) == 0x80) --end;
  for (unsigned char c : name.substr(0, end)) {
    if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02x}", c);
    else if (c == '\'' || c == '\\') out += std::string("\\") + static_cast<char>(c);
    else out += static_cast<char>(c);
  }
  out += end < name.size() ? fmt::format("'... ({} bytes)", name.size()) : "'";
  return out;
}

std::string format_shape(const std::vector<std::int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

}  // namespace abmll::io
