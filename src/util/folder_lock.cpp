#include "util/folder_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "util/error.h"
#include "util/log.h"

namespace abmll {
namespace {

std::string host_name() {
  char name[256] = {};
  return ::gethostname(name, sizeof(name) - 1) == 0 ? std::string(name) : std::string("?");
}

}  // namespace

FolderLock::FolderLock(const std::filesystem::path& folder, std::string_view command) {
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  const std::filesystem::path path = folder / fmt::format(".abmll-{}.lock", command);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(fmt::format("cannot create {}: {}", path.string(), std::strerror(errno)));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int why = errno;
    char holder[512] = {};
    const ssize_t n = ::pread(fd_, holder, sizeof(holder) - 1, 0);
    std::string who = n > 0 ? std::string(holder, static_cast<std::size_t>(n)) : std::string("unknown");
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    ::close(fd_);
    fd_ = -1;
    if (why == EWOULDBLOCK)
      throw InputError(fmt::format("{}: another abmll {} is using this folder ({}); wait for it to end or stop it",
                                   folder.string(), command, who));
    // Some cluster file systems refuse locks (Lustre mounted without flock: ENOSYS, ENOLCK, EOPNOTSUPP). The lock
    // guards against a mistake; it must not keep a run from starting.
    log::warn("{}: the file system does not lock files ({}); not guarding the folder against a second {}",
              path.string(), std::strerror(why), command);
    return;
  }
  const std::string me = fmt::format("{} on host {}, pid {}\n", command, host_name(), ::getpid());
  // The note only improves the message a second process shows; the lock holds without it.
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, me.data(), me.size(), 0);
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

}  // namespace abmll
