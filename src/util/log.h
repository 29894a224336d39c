// Logging to stderr. Results never go here: they go to files (JSON) or, where a command says so, to stdout.
// Each line carries the elapsed time since start, so plain logs of long runs (batch jobs) read as a timeline.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace abmll::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

// Lines below this level are dropped (default info; ABMLL_LOG_LEVEL=debug|info|warn|error overrides at start).
void set_level(Level level);
Level level();
// Text put at the start of every line after the time (e.g. "[rank 3] " in distributed runs); empty by default.
void set_tag(std::string tag);
// Whether ABMLL_LOG_LEVEL chose the level.
bool level_from_environment();

void write(Level level, std::string_view message);

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (level() <= Level::debug) write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (level() <= Level::info) write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (level() <= Level::warn) write(Level::warn, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}

// Seconds since the process started logging (the first call of anything in this file).
double elapsed_seconds();

}  // namespace abmll::log
