// Reading task files line by line, and the one policy for their problems: a malformed line is an InputError
// naming "file:line: problem" (exit code 2), or, under ReaderOptions::skip_malformed, a skipped line, counted and
// reported in one warning per file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "data/task.h"

namespace abmll::data {

struct Line {
  std::int64_t number = 0;  // 1-based
  std::string text;         // without the line break ("\n" or "\r\n")
};

// The non-empty lines of a text file (a UTF-8 byte-order mark is dropped). Throws InputError when the file cannot
// be read.
std::vector<Line> read_lines(const std::filesystem::path& path);

// Collects the problems found in a task's files under the skip policy.
class ProblemLog {
 public:
  explicit ProblemLog(bool skip_malformed) : skip_(skip_malformed) {}
  // Throws InputError("file:line: problem") unless skipping; otherwise counts the line as skipped.
  void report(const SourceLine& where, std::string_view problem);
  // Reports invalid UTF-8 in `text` (returns false) or returns true.
  bool check_utf8(const SourceLine& where, std::string_view text);
  // Logs one warning per file with skipped lines ("file: skipped N malformed lines; first, line L: problem") and
  // returns the total skipped. Call once, after the last report().
  std::int64_t finish();

 private:
  struct FileCount {
    std::int64_t skipped = 0;
    std::string first;
  };
  bool skip_ = false;
  std::map<std::string, FileCount> files_;
};

// Whitespace trimmed from both ends (ASCII space, tab, CR, LF).
std::string_view trim(std::string_view s);

}  // namespace abmll::data
