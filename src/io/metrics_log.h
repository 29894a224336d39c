// metrics.jsonl: one JSON object per outer step, appended and flushed as the run goes, so a crash loses at most the
// line being written. On resume the log is cut back to the checkpoint's step (lines of steps that will be redone are
// dropped; a torn last line too), so an interrupted and resumed run ends with the same file as an uninterrupted one.
// The same append-only log serves other resumable records (evaluate's finished tasks), cut back by a predicate.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>

namespace abmll::io {

class MetricsLog {
 public:
  // Opens `path` for appending; with `keep_through_step` >= 0, first keeps only the complete lines whose "step" is
  // at most that (-1: start a new, empty log).
  MetricsLog(std::filesystem::path path, std::int64_t keep_through_step);
  // Opens `path` for appending after keeping only the complete lines (JSON objects) for which `keep` is true.
  MetricsLog(std::filesystem::path path, const std::function<bool(const nlohmann::json&)>& keep);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void append(const nlohmann::json& line);

 private:
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

}  // namespace abmll::io
