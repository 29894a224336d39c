// Progress of a long loop on stderr: a redrawn bar when stderr is a terminal, plain log lines every few seconds
// otherwise (batch jobs, CI), so logs stay readable and small.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace abmll {

// "42s", "3m07s", "2h05m"; "?" for a negative or absurd value (an unknown estimate).
std::string format_duration(double seconds);

class Progress {
 public:
  // `total` steps; `label` names the loop ("meta-train"). Plain lines are written every `plain_every_steps` steps
  // (0: never for that reason) and whenever `plain_interval_s` seconds have passed since the last one.
  Progress(std::string label, std::int64_t total, double plain_interval_s = 10.0, std::int64_t plain_every_steps = 0);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `done` steps completed; `status` is a short free text (e.g. "loss 1.23").
  void update(std::int64_t done, std::string_view status = "");
  // Final line (always written).
  void finish(std::string_view status = "");

 private:
  std::string line(std::int64_t done, std::string_view status) const;

  using Clock = std::chrono::steady_clock;
  std::string label_;
  std::int64_t total_;
  double plain_interval_s_;
  std::int64_t plain_every_steps_;
  bool terminal_;
  bool finished_ = false;
  std::int64_t done_ = 0;
  Clock::time_point start_, last_draw_;
};

}  // namespace abmll
