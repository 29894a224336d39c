// Memory-mapped safetensors reading (see safetensors_file.h).
//
// The mapping is MAP_PRIVATE with PROT_READ | PROT_WRITE: tensors handed out are ordinary writable tensors (an
// in-place op on a weight must not segfault), and copy-on-write keeps every write away from the file. Pages are
// read lazily by the kernel, so opening a 15 GB checkpoint costs only the header. A file truncated by another
// process while mapped still raises SIGBUS on access; nothing portable prevents that.
#include "io/safetensors_file.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <fmt/format.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "util/error.h"

namespace abmll::io {

struct SafetensorsFile::Mapping {
  std::uint8_t* data = nullptr;
  std::size_t size = 0;
  std::unordered_map<std::string, std::size_t> by_name;  // tensor name -> index into the header's entries

  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (data) ::munmap(data, size);
  }
};

namespace {

// Closes a file descriptor on every path out of open().
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

std::string errno_text() { return std::strerror(errno); }

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  const std::string name = path.string();
  FdGuard fd{::open(name.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) {
    const int err = errno;
    std::string why = errno_text();
    if (err == ENOENT) throw InputError(fmt::format("{}: no such file", name));
    throw Error(fmt::format("{}: cannot open: {}", name, why));
  }
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) throw Error(fmt::format("{}: cannot stat: {}", name, errno_text()));
  if (!S_ISREG(st.st_mode)) throw InputError(fmt::format("{}: not a regular file", name));
  const auto size = static_cast<std::size_t>(st.st_size);

  auto mapping = std::make_shared<Mapping>();
  if (size < 8) {
    // Too small to map usefully (and mmap of 0 bytes fails): let the parser produce its error from the bytes.
    std::uint8_t small[8] = {};
    if (size > 0 && ::pread(fd.fd, small, size, 0) != static_cast<ssize_t>(size))
      throw Error(fmt::format("{}: cannot read: {}", name, errno_text()));
    parse_safetensors_header(small, size, name);
    throw Error(fmt::format("{}: internal: a {}-byte file passed header validation", name, size));
  }
  void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.fd, 0);
  if (addr == MAP_FAILED) throw Error(fmt::format("{}: cannot memory-map {} bytes: {}", name, size, errno_text()));
  mapping->data = static_cast<std::uint8_t*>(addr);
  mapping->size = size;

  SafetensorsFile file;
  file.path_ = path;
  file.header_ = std::make_shared<const SafetensorsHeader>(parse_safetensors_header(mapping->data, size, name));
  for (std::size_t i = 0; i < file.header_->entries.size(); ++i)
    mapping->by_name.emplace(file.header_->entries[i].name, i);
  file.mapping_ = std::move(mapping);
  return file;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(header_->entries.size());
  for (const auto& e : header_->entries) out.push_back(e.name);
  return out;
}

bool SafetensorsFile::has(std::string_view name) const {
  return mapping_->by_name.count(std::string(name)) != 0;
}

const TensorEntry& SafetensorsFile::entry(std::string_view name) const {
  auto it = mapping_->by_name.find(std::string(name));
  if (it == mapping_->by_name.end())
    throw InputError(fmt::format("{}: no tensor {}", path_.string(), quote_name(name)));
  return header_->entries[it->second];
}

at::Tensor SafetensorsFile::tensor(std::string_view name) const {
  const TensorEntry& e = entry(name);
  const auto options = at::TensorOptions().dtype(to_scalar_type(e.dtype));
  if (e.numel() == 0) return at::empty(e.shape, options);

  std::uint8_t* data = mapping_->data + header_->data_offset + e.data_begin;
  // The format does not align tensors (offsets are packed back to back; only the data section starts 8-aligned),
  // and ATen's kernels assume element-aligned data (vectorized loads are undefined behaviour otherwise). A
  // misaligned tensor is therefore copied into fresh, aligned memory; files written by abmll or by the Python
  // library order tensors by decreasing element size, so this is rare.
  if (reinterpret_cast<std::uintptr_t>(data) % dtype_size(e.dtype) != 0) {
    at::Tensor copy = at::empty(e.shape, options);
    std::memcpy(copy.data_ptr(), data, e.bytes());
    return copy;
  }
  // The deleter owns a reference to the mapping: the pages stay mapped while any view of them lives.
  return at::from_blob(data, e.shape, [keep = mapping_](void*) {}, options);
}

const std::uint8_t* SafetensorsFile::mapping_begin() const { return mapping_->data; }
std::size_t SafetensorsFile::mapping_size() const { return mapping_->size; }

c10::ScalarType to_scalar_type(DType dtype) {
  switch (dtype) {
    case DType::BOOL: return at::kBool;
    case DType::U8: return at::kByte;
    case DType::I8: return at::kChar;
    case DType::U16: return at::kUInt16;
    case DType::I16: return at::kShort;
    case DType::U32: return at::kUInt32;
    case DType::I32: return at::kInt;
    case DType::U64: return at::kUInt64;
    case DType::I64: return at::kLong;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::F32: return at::kFloat;
    case DType::F64: return at::kDouble;
    case DType::F8_E4M3: return at::kFloat8_e4m3fn;
    case DType::F8_E5M2: return at::kFloat8_e5m2;
    case DType::F8_E4M3FNUZ: return at::kFloat8_e4m3fnuz;
    case DType::F8_E5M2FNUZ: return at::kFloat8_e5m2fnuz;
    case DType::F8_E8M0: return at::kFloat8_e8m0fnu;
    case DType::C64: return at::kComplexFloat;
  }
  throw Error(fmt::format("internal: unknown DType {}", static_cast<int>(dtype)));
}

DType from_scalar_type(c10::ScalarType type) {
  for (DType d : all_dtypes())
    if (to_scalar_type(d) == type) return d;
  throw Error(fmt::format("safetensors cannot store tensors of type {}", c10::toString(type)));
}

}  // namespace abmll::io
