#include "data/lines.h"

#include <fmt/format.h>

#include <fstream>

#include "text/utf8.h"
#include "util/error.h"
#include "util/log.h"

namespace abmll::data {

std::vector<Line> read_lines(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open for reading", path.string()));
  std::vector<Line> lines;
  std::string text;
  std::int64_t number = 0;
  while (std::getline(in, text)) {
    ++number;
    if (number == 1 && text.starts_with("\xEF\xBB\xBF")) text.erase(0, 3);
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.empty()) continue;
    lines.push_back({number, std::move(text)});
  }
  if (in.bad()) throw InputError(fmt::format("{}: read error after line {}", path.string(), number));
  return lines;
}

void ProblemLog::report(const SourceLine& where, std::string_view problem) {
  if (!skip_) throw InputError(fmt::format("{}: {}", to_string(where), problem));
  FileCount& count = files_[where.file.string()];
  if (count.skipped == 0) count.first = fmt::format("line {}: {}", where.line, problem);
  ++count.skipped;
}

bool ProblemLog::check_utf8(const SourceLine& where, std::string_view text) {
  std::size_t bad = text::utf8::find_invalid(text);
  if (bad == std::string_view::npos) return true;
  report(where, fmt::format("invalid UTF-8 at byte {} of the line", bad + 1));
  return false;
}

std::int64_t ProblemLog::finish() {
  std::int64_t total = 0;
  for (const auto& [file, count] : files_) {
    log::warn("{}: skipped {} malformed line{}; first, {}", file, count.skipped, count.skipped == 1 ? "" : "s",
              count.first);
    total += count.skipped;
  }
  files_.clear();
  return total;
}

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n";
  std::size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  std::size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

}  // namespace abmll::data
