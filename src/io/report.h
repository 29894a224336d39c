// The JSON report every subcommand writes: what was run (command, resolved config, git commit, library versions,
// machine, device), how long each phase took, and the results. Written atomically; `schema_version` changes when
// the layout changes incompatibly, so scripts reading reports can check it.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace abmll {

inline constexpr int kReportSchemaVersion = 1;

class Report {
 public:
  // `command`: the subcommand ("meta-train"); `argv`: the command line, recorded as given.
  Report(std::string command, std::vector<std::string> argv);

  void set_config(nlohmann::json resolved_config) { config_ = std::move(resolved_config); }
  void set_device(std::string device, std::string description);
  // A result field (metrics, paths of outputs...). Overwrites an earlier value of the same key.
  void set_result(const std::string& key, nlohmann::json value) { results_[key] = std::move(value); }
  void add_timing(const std::string& phase, double seconds) { timings_[phase] = seconds; }
  // Write the results as top-level fields instead of under "results" (for small reports read with `jq .ece`).
  void put_results_at_top_level() { results_at_top_level_ = true; }

  nlohmann::json to_json() const;
  void write(const std::filesystem::path& path) const;

 private:
  std::string command_;
  std::vector<std::string> argv_;
  std::string created_utc_;
  std::chrono::steady_clock::time_point start_;
  nlohmann::json config_ = nlohmann::json::object();
  nlohmann::json device_ = nlohmann::json::object();
  nlohmann::json results_ = nlohmann::json::object();
  nlohmann::json timings_ = nlohmann::json::object();
  bool results_at_top_level_ = false;
};

// Versions of abmll and the libraries it was built with.
nlohmann::json build_description();

}  // namespace abmll
