// Atomic file replacement: write to a temporary file beside the target, fsync it, rename it over the target and
// fsync the directory. A reader sees either the old file or the complete new one, never a partial write, even if
// the process dies or the machine loses power half-way.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string_view>

namespace abmll {

// An open temporary file that becomes `target` on commit(); destroyed without commit(), it is removed.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // fsync, rename over the target, fsync the directory. Throws abmll::Error on any failure.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  int fd_ = -1;
};

// Writes `text` to `path` atomically (creating parent folders).
void write_file_atomic(const std::filesystem::path& path, std::string_view text);

}  // namespace abmll
