#include "util/log.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>


namespace abmll::log {
namespace {

using Clock = std::chrono::steady_clock;

const Clock::time_point& start_time() {
  static const Clock::time_point start = Clock::now();
  return start;
}

Level initial_level() {
  const char* env = std::getenv("ABMLL_LOG_LEVEL");
  if (!env) return Level::info;
  if (!std::strcmp(env, "debug")) return Level::debug;
  if (!std::strcmp(env, "warn")) return Level::warn;
  if (!std::strcmp(env, "error")) return Level::error;
  return Level::info;
}

Level& current_level() {
  static Level level = initial_level();
  return level;
}

std::mutex& write_mutex() {
  static std::mutex m;
  return m;
}

std::string& line_tag() {
  static std::string tag;
  return tag;
}

}  // namespace

void set_level(Level level) { current_level() = level; }
bool level_from_environment() { return std::getenv("ABMLL_LOG_LEVEL") != nullptr; }
void set_tag(std::string tag) {
  std::lock_guard<std::mutex> lock(write_mutex());
  line_tag() = std::move(tag);
}
Level level() { return current_level(); }

double elapsed_seconds() { return std::chrono::duration<double>(Clock::now() - start_time()).count(); }

void write(Level level, std::string_view message) {
  static const bool color = ::isatty(STDERR_FILENO) && !std::getenv("NO_COLOR");
  const char* tag = "";
  const char* on = "";
  switch (level) {
    case Level::debug: tag = "debug: "; on = "\033[2m"; break;
    case Level::info: break;
    case Level::warn: tag = "warning: "; on = "\033[33m"; break;
    case Level::error: tag = "error: "; on = "\033[31m"; break;
  }
  std::lock_guard<std::mutex> lock(write_mutex());
  std::string line = fmt::format("[{:8.1f}s] {}{}{}{}{}\n", elapsed_seconds(), line_tag(), color ? on : "", tag,
                                 color && *on ? "\033[0m" : "", message);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace abmll::log
