#include "io/metrics_log.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/atomic_file.h"
#include "util/error.h"

namespace abmll::io {

MetricsLog::MetricsLog(std::filesystem::path path, std::int64_t keep_through_step)
    : MetricsLog(std::move(path), [keep_through_step](const nlohmann::json& j) {
        return keep_through_step >= 0 && j.contains("step") && j["step"].is_number_integer() &&
               j["step"].get<std::int64_t>() <= keep_through_step;
      }) {}

MetricsLog::MetricsLog(std::filesystem::path path, const std::function<bool(const nlohmann::json&)>& keep)
    : path_(std::move(path)) {
  std::string kept;
  if (std::filesystem::exists(path_)) {
    std::ifstream in(path_);
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // no newline after it: a torn last line
      const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && keep(j)) kept += line + "\n";
    }
  }
  write_file_atomic(path_, kept);
  file_ = std::fopen(path_.c_str(), "ab");
  if (!file_) throw Error("cannot open " + path_.string() + ": " + std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::append(const nlohmann::json& line) {
  const std::string text = line.dump() + "\n";
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() || std::fflush(file_) != 0)
    throw Error("cannot write " + path_.string() + ": " + std::strerror(errno));
}

}  // namespace abmll::io
