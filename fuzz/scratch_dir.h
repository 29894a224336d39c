// A folder of this fuzzing process's own for the files an input is written to (targets that read files), removed
// at exit.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace abmll::fuzz {

inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const char* base = std::getenv("TMPDIR");
    auto path = std::filesystem::path(base && *base ? base : "/tmp") /
                ("abmll-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    std::atexit([] { std::error_code ec; std::filesystem::remove_all(scratch_dir(), ec); });
    return path;
  }();
  return dir;
}

}  // namespace abmll::fuzz
