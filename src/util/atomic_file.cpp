#include "util/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>

#include "util/error.h"

namespace abmll {
namespace {

std::string errno_text() { return std::strerror(errno); }

void fsync_directory(const std::filesystem::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // Some file systems do not allow opening directories; the rename itself has happened.
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

AtomicFile::AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
  std::error_code ec;
  if (target_.has_parent_path()) std::filesystem::create_directories(target_.parent_path(), ec);
  if (ec) throw Error("cannot create folder " + target_.parent_path().string() + ": " + ec.message());
  // Unique name in the same directory (rename is atomic only within one file system).
  std::random_device rd;
  for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
    temp_ = target_;
    temp_ += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 1000000);
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  }
  if (fd_ < 0) throw Error("cannot create " + temp_.string() + ": " + errno_text());
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_.c_str());
  }
}

void AtomicFile::write(const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error("cannot write " + temp_.string() + ": " + errno_text());
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) throw Error("AtomicFile::commit called twice for " + target_.string());
  if (::fsync(fd_) != 0) throw Error("cannot fsync " + temp_.string() + ": " + errno_text());
  if (::close(fd_) != 0) {
    fd_ = -1;
    ::unlink(temp_.c_str());
    throw Error("cannot close " + temp_.string() + ": " + errno_text());
  }
  fd_ = -1;
  if (::rename(temp_.c_str(), target_.c_str()) != 0) {
    std::string why = errno_text();
    ::unlink(temp_.c_str());
    throw Error("cannot rename " + temp_.string() + " to " + target_.string() + ": " + why);
  }
  fsync_directory(target_.parent_path());
}

void write_file_atomic(const std::filesystem::path& path, std::string_view text) {
  AtomicFile file(path);
  file.write(text);
  file.commit();
}

}  // namespace abmll
