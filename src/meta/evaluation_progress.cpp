#include "meta/evaluation_progress.h"

#include <fmt/format.h>

#include <cstdint>
#include <fstream>
#include <utility>

#include "util/error.h"
#include "util/json_fields.h"
#include "util/log.h"

namespace abmll::meta {
namespace {

// FNV-1a, 64 bits: enough to tell settings apart (not a defence against forged files, which are trusted no more
// than any other input: a line that does not parse is dropped).
struct Fnv1a {
  std::uint64_t state = 1469598103934665603ULL;
  void add(std::string_view bytes) {
    for (unsigned char c : bytes) state = (state ^ c) * 1099511628211ULL;
    state = (state ^ 0xff) * 1099511628211ULL;  // separator, so that ("ab", "c") and ("a", "bc") differ
  }
};

}  // namespace

std::string evaluation_fingerprint(const nlohmann::json& resolved_config, const std::string& device_description,
                                   const std::vector<std::filesystem::path>& files) {
  nlohmann::json settings = resolved_config;
  if (settings.contains("run") && settings["run"].is_object()) {
    for (const char* key : {"device", "dist_timeout_s", "log_every", "checkpoint_every", "benchmark"})
      settings["run"].erase(key);
  }
  Fnv1a h;
  h.add(settings.dump());
  h.add(device_description);
  for (const std::filesystem::path& file : files) {
    h.add(file.string());
    if (file.empty()) continue;
    std::ifstream in(file, std::ios::binary);
    if (!in) throw InputError(fmt::format("{}: cannot read", file.string()));
    std::string chunk(1 << 20, '\0');
    while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0)
      h.add(std::string_view(chunk.data(), static_cast<std::size_t>(in.gcount())));
  }
  return fmt::format("{:016x}", h.state);
}

std::filesystem::path EvaluationProgress::record_path(const std::filesystem::path& report) {
  return report.parent_path() / (report.stem().string() + ".tasks.jsonl");
}

EvaluationProgress::EvaluationProgress(std::filesystem::path path, std::string fingerprint, bool resume,
                                       std::string unit)
    : path_(std::move(path)), fingerprint_(std::move(fingerprint)) {
  std::size_t other = 0;
  log_.emplace(path_, [&](const nlohmann::json& line) {
    if (!resume) return false;
    if (!line.contains("fingerprint") || line["fingerprint"] != fingerprint_) {
      ++other;
      return false;
    }
    try {
      eval::TaskResult r = eval::task_result_from_json(line.at("result"));
      const std::int64_t index = integer_field(line, "index");
      if (index < 0 || r.task != line.at("task").get<std::string>() || r.queries.empty()) return false;
      finished_[static_cast<std::size_t>(index)] = std::move(r);
      return true;
    } catch (const std::exception&) {  // JSON type errors, InputError: not a line written here; recompute the task
      return false;
    }
  });
  if (resume) {
    log::info("--resume: {} finished {}{} in {}{}", finished_.size(), unit, finished_.size() == 1 ? "" : "s",
              path_.string(),
              other ? fmt::format(" ({} of other settings dropped: the config, device or checkpoint changed)", other)
                    : "");
  }
}

const eval::TaskResult* EvaluationProgress::finished(std::size_t index, const std::string& task) const {
  const auto it = finished_.find(index);
  return it != finished_.end() && it->second.task == task ? &it->second : nullptr;
}

void EvaluationProgress::record(std::size_t index, const eval::TaskResult& result) {
  log_->append({{"fingerprint", fingerprint_},
                {"index", index},
                {"task", result.task},
                {"result", eval::task_result_to_json(result)}});
}

}  // namespace abmll::meta
