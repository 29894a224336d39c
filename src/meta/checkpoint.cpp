#include "meta/checkpoint.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <regex>

#include "io/safetensors_file.h"
#include "util/error.h"
#include "util/log.h"

namespace abmll::meta {
namespace {

constexpr const char* kFormatKey = "abmll.format";
constexpr const char* kFormatName = "abmll-checkpoint";
constexpr const char* kVersionKey = "abmll.format_version";
constexpr const char* kStepKey = "abmll.step";

// `text` as a non-negative integer, or nullopt when it is anything else.
std::optional<std::int64_t> parse_count(const std::string& text) {
  try {
    std::size_t used = 0;
    const std::int64_t value = std::stoll(text, &used);
    if (used == text.size() && value >= 0) return value;
  } catch (const std::logic_error&) {  // not a number, or out of range
  }
  return std::nullopt;
}

}  // namespace

std::int64_t Checkpoint::count(const std::string& key) const {
  const auto it = metadata.find(key);
  const std::optional<std::int64_t> value = it == metadata.end() ? std::nullopt : parse_count(it->second);
  if (!value)
    throw InputError(fmt::format("{}: no valid {} in the checkpoint's metadata",
                                 source.empty() ? std::string("checkpoint") : source.string(), key));
  return *value;
}

const at::Tensor& Checkpoint::tensor(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  throw InputError(fmt::format("{}: checkpoint has no tensor '{}' (written by a different method or config?)",
                               source.empty() ? std::string("checkpoint") : source.string(), name));
}

std::filesystem::path checkpoint_path(const std::filesystem::path& run_dir, std::int64_t step) {
  return run_dir / "checkpoints" / fmt::format("step-{}.safetensors", step);
}

void save_checkpoint(const std::filesystem::path& path, const Checkpoint& checkpoint) {
  std::map<std::string, std::string> metadata = checkpoint.metadata;
  metadata[kFormatKey] = kFormatName;
  metadata[kVersionKey] = std::to_string(kCheckpointFormatVersion);
  metadata[kStepKey] = std::to_string(checkpoint.step);
  io::write_safetensors(path, checkpoint.tensors, metadata);
}

Checkpoint load_checkpoint(const std::filesystem::path& path) {
  const io::SafetensorsFile file = io::SafetensorsFile::open(path);
  const auto& meta = file.metadata();
  auto field = [&](const char* key) -> const std::string& {
    const auto it = meta.find(key);
    if (it == meta.end()) throw InputError(fmt::format("{}: not an abmll checkpoint (no '{}' in its metadata)",
                                                       path.string(), key));
    return it->second;
  };
  if (field(kFormatKey) != kFormatName)
    throw InputError(fmt::format("{}: not an abmll checkpoint ({} is '{}')", path.string(), kFormatKey,
                                 field(kFormatKey)));
  if (field(kVersionKey) != std::to_string(kCheckpointFormatVersion))
    throw InputError(fmt::format("{}: checkpoint format version {} is not the one this abmll reads ({})",
                                 path.string(), field(kVersionKey), kCheckpointFormatVersion));
  Checkpoint checkpoint;
  checkpoint.source = path;
  const std::optional<std::int64_t> step = parse_count(field(kStepKey));
  if (!step)
    throw InputError(fmt::format("{}: invalid step '{}' in the checkpoint's metadata", path.string(), field(kStepKey)));
  checkpoint.step = *step;
  for (const auto& [key, value] : meta)
    if (key.rfind("abmll.", 0) != 0) checkpoint.metadata[key] = value;
  for (const auto& name : file.names()) checkpoint.tensors.emplace_back(name, file.tensor(name));
  return checkpoint;
}

std::optional<Checkpoint> load_latest_checkpoint(const std::filesystem::path& run_dir) {
  const auto dir = run_dir / "checkpoints";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return std::nullopt;
  static const std::regex pattern("step-([0-9]+)\\.safetensors");
  std::vector<std::pair<std::int64_t, std::filesystem::path>> found;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, m, pattern)) found.emplace_back(std::stoll(m[1].str()), entry.path());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [step, path] : found) {
    try {
      Checkpoint c = load_checkpoint(path);
      if (c.step != step)
        throw InputError(fmt::format("{}: holds step {}, but its name says {}", path.string(), c.step, step));
      return c;
    } catch (const InputError& e) {
      log::warn("skipping checkpoint that does not load: {}", e.what());
    }
  }
  return std::nullopt;
}

std::filesystem::path resolve_checkpoint(const std::filesystem::path& given) {
  std::error_code ec;
  if (!std::filesystem::is_directory(given, ec)) return given;
  const std::optional<Checkpoint> latest = load_latest_checkpoint(given);
  if (!latest)
    throw InputError(fmt::format("{}: a folder, but not a meta-training run's: no checkpoints/step-N.safetensors "
                                 "in it loads",
                                 given.string()));
  log::info("{}: using its newest checkpoint, {}", given.string(), latest->source.string());
  return latest->source;
}

}  // namespace abmll::meta
