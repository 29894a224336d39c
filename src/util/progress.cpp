#include "util/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fmt/format.h>

#include "util/log.h"

namespace abmll {

std::string format_duration(double seconds) {
  if (seconds < 0 || seconds > 1e7) return "?";
  auto s = static_cast<long long>(seconds + 0.5);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
}

Progress::Progress(std::string label, std::int64_t total, double plain_interval_s, std::int64_t plain_every_steps)
    : label_(std::move(label)),
      total_(std::max<std::int64_t>(total, 1)),
      plain_interval_s_(plain_interval_s),
      plain_every_steps_(plain_every_steps),
      terminal_(::isatty(STDERR_FILENO)),
      start_(Clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (terminal_ && !finished_ && done_ > 0) std::fputc('\n', stderr);  // leave the last bar on its own line
}

std::string Progress::line(std::int64_t done, std::string_view status) const {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double rate = elapsed > 0 ? done / elapsed : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : -1;
  return fmt::format("{} {}/{} ({:.0f}%) {:.2f} it/s, elapsed {}, eta {}{}{}", label_, done, total_,
                     100.0 * done / total_, rate, format_duration(elapsed), format_duration(eta),
                     status.empty() ? "" : " | ", status);
}

void Progress::update(std::int64_t done, std::string_view status) {
  done_ = done;
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (terminal_) {
    if (since < 0.1 && done < total_) return;
    const int width = 24;
    const int filled = static_cast<int>(width * std::min<std::int64_t>(done, total_) / total_);
    std::string bar = std::string(filled, '#') + std::string(width - filled, '.');
    std::string text = fmt::format("\r[{}] {}", bar, line(done, status));
    std::fprintf(stderr, "%s\033[K", text.c_str());
    std::fflush(stderr);
  } else {
    // The last step's line is finish()'s.
    const bool due = plain_every_steps_ > 0 && done % plain_every_steps_ == 0;
    if (done >= total_ || (!due && since < plain_interval_s_)) return;
    log::info("{}", line(done, status));
  }
  last_draw_ = now;
}

void Progress::finish(std::string_view status) {
  if (terminal_) std::fprintf(stderr, "\r\033[K");
  log::info("{}", line(done_, status));
  finished_ = true;
}

}  // namespace abmll
