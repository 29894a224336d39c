// The finished tasks of an `abmll evaluate` run, kept as they finish so that an interrupted evaluation (SIGINT,
// SIGTERM, a preempted cluster job) resumes where it stopped: REPORT.tasks.jsonl beside the report, one line per
// finished task {"fingerprint", "index", "task", "result"}, appended and flushed (io::MetricsLog). Each task's
// result depends on the run's settings alone (its episode, adaptation noise and posterior draws come from its own
// seeded streams), so a resumed evaluation reports exactly what an uninterrupted one would. The fingerprint ties a
// line to those settings: the resolved config, the kind of device, and the checkpoint's path and bytes; lines of
// another fingerprint are dropped on resume. The caller removes the file once the report is written. `abmll predict`
// records its chunks of queries the same way.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "eval/evaluation_summary.h"
#include "io/metrics_log.h"

namespace abmll::meta {

// A digest of what an evaluation's results depend on (hex, 16 digits): the resolved config but for the run keys
// that leave results alone (which device index, timeouts, logging), the device as DeviceChoice describes it (the
// GPU's model, or the CPU and its thread count: not its index, so that a GPU rank's record serves a resume on
// another GPU of the same kind), and the path and content of the `files` results depend on (evaluate's checkpoint,
// an empty path for none; predict's adapted file and queries).
std::string evaluation_fingerprint(const nlohmann::json& resolved_config, const std::string& device_description,
                                   const std::vector<std::filesystem::path>& files);

class EvaluationProgress {
 public:
  // The record at `path` (record_path(report) for an evaluation). With `resume`, keeps the finished units (tasks;
  // `abmll predict`: chunks of queries) of `fingerprint` and says how many, naming them `unit`; otherwise starts
  // empty.
  EvaluationProgress(std::filesystem::path path, std::string fingerprint, bool resume, std::string unit = "task");

  // REPORT.tasks.jsonl beside the report at `report`.
  static std::filesystem::path record_path(const std::filesystem::path& report);

  // The result of task `index` (its position among the held-out tasks) named `task`, when a resumed run had it.
  const eval::TaskResult* finished(std::size_t index, const std::string& task) const;
  // Records task `index`'s result (flushed before returning).
  void record(std::size_t index, const eval::TaskResult& result);

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::string fingerprint_;
  std::map<std::size_t, eval::TaskResult> finished_;
  std::optional<io::MetricsLog> log_;
};

}  // namespace abmll::meta
