#include "io/report.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <ctime>

#include "util/atomic_file.h"
#include "util/build_info.h"
#include "util/device.h"

#ifdef ABMLL_HAVE_CUDA
#include "device_query.h"
#endif

namespace abmll {
namespace {

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

}  // namespace

nlohmann::json build_description() {
  nlohmann::json libraries = {
      {"libtorch", build_info::torch_version()},
      {"fmt", fmt::format("{}.{}.{}", FMT_VERSION / 10000, FMT_VERSION / 100 % 100, FMT_VERSION % 100)},
      {"nlohmann_json", fmt::format("{}.{}.{}", NLOHMANN_JSON_VERSION_MAJOR, NLOHMANN_JSON_VERSION_MINOR,
                                    NLOHMANN_JSON_VERSION_PATCH)},
      {"pcre2", fmt::format("{}.{}", PCRE2_MAJOR, PCRE2_MINOR)},
      {"compiler", __VERSION__},
  };
#ifdef ABMLL_HAVE_CUDA
  libraries["cuda_runtime_compiled"] = cuda::compiled_runtime_version();
#endif
  return {{"version", build_info::version()},
          {"git_commit", build_info::git_commit()},
          {"cuda_kernels", build_info::cuda_kernels_built()},
          {"libraries", libraries}};
}

Report::Report(std::string command, std::vector<std::string> argv)
    : command_(std::move(command)),
      argv_(std::move(argv)),
      created_utc_(utc_now()),
      start_(std::chrono::steady_clock::now()) {}

void Report::set_device(std::string device, std::string description) {
  device_ = {{"name", std::move(device)}, {"description", std::move(description)}};
}

nlohmann::json Report::to_json() const {
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  nlohmann::json timings = timings_;
  timings["total_seconds"] = wall;
  nlohmann::json report = {{"schema_version", kReportSchemaVersion},
                            {"command", command_},
                            {"argv", argv_},
                            {"created_utc", created_utc_},
                            {"abmll", build_description()},
                            {"machine", describe_machine()},
                            {"device", device_},
                            {"config", config_},
                            {"timings", timings}};
  if (results_at_top_level_) {
    report.update(results_);
  } else {
    report["results"] = results_;
  }
  return report;
}

void Report::write(const std::filesystem::path& path) const { write_file_atomic(path, to_json().dump(2) + "\n"); }

}  // namespace abmll
