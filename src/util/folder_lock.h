// An exclusive lock on a folder for the life of the object: flock on FOLDER/.abmll.lock, which names its holder
// (host and pid). It keeps two processes from writing one run folder at once: a run resumed while another still
// runs in it (a requeued cluster job whose predecessor has not exited, a second shell) would interleave their
// metrics and checkpoints. The kernel releases the lock when the process ends, however it ends.
#pragma once

#include <filesystem>
#include <string_view>

namespace abmll {

class FolderLock {
 public:
  // Takes the lock, creating the folder if needed. InputError naming the folder, `command` and the holder when
  // another process has it; Error when the lock file cannot be made.
  FolderLock(const std::filesystem::path& folder, std::string_view command);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace abmll
