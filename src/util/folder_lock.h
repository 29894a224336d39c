// An exclusive lock on a folder for one command, for the life of the object: flock on FOLDER/.abmll-COMMAND.lock,
// which names its holder (host and pid). It keeps two processes of a command from writing one folder at once: a
// meta-train resumed while another still runs in its folder (a requeued cluster job whose predecessor has not
// exited, a second shell) would interleave their metrics and checkpoints; two evaluations with reports in one
// folder, their predictions. Commands that write different files share a folder (an evaluation's report in a run
// folder while the run goes on). The kernel releases the lock when the process ends, however it ends.
#pragma once

#include <filesystem>
#include <string_view>

namespace abmll {

class FolderLock {
 public:
  // Takes `command`'s lock on `folder`, creating the folder if needed. InputError naming the folder, the command and
  // the holder when another process has it; Error when the lock file cannot be made. On a file system that refuses
  // locks, warns and holds none.
  FolderLock(const std::filesystem::path& folder, std::string_view command);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace abmll
