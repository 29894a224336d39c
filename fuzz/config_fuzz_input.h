// One fuzzing input, run through the config loader (src/config). Shared by the libFuzzer target (config_fuzz.cpp)
// and the regression test over tests/data/config_corpus, so that every saved input is replayed as the fuzzer ran
// it.
//
// The input's first line is a `--set` override ("key=value"; none when empty) and the rest a YAML config file,
// written under `scratch`. The config loads or is refused with abmll::InputError. A config that loads must survive
// the round trip `abmll` relies on for run folders: its resolved YAML (config_to_yaml) loads back to the same
// config (compared through config_to_json). Anything else (another exception, a broken round trip: abort) is a
// finding.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_loader.h"
#include "util/error.h"

namespace abmll::fuzz {

inline void run_config_input(const std::uint8_t* data, std::size_t size, const std::filesystem::path& scratch) {
  namespace fs = std::filesystem;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string_view override_line = input.substr(0, newline);
  const std::string_view yaml = newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  fs::create_directories(scratch);
  const fs::path file = scratch / "config.yaml";
  std::ofstream(file, std::ios::binary).write(yaml.data(), static_cast<std::streamsize>(yaml.size()));
  std::vector<std::string> overrides;
  if (!override_line.empty()) overrides.emplace_back(override_line);

  ExperimentConfig config;
  try {
    config = load_experiment_config(file, overrides);
  } catch (const InputError&) {
    return;
  }
  const fs::path resolved = scratch / "resolved.yaml";
  std::ofstream(resolved, std::ios::binary) << config_to_yaml(config);
  ExperimentConfig again;
  try {
    again = load_experiment_config(resolved, {});
  } catch (const InputError& e) {
    std::fprintf(stderr, "config fuzz finding: the resolved config does not load back: %s\n", e.what());
    std::abort();
  }
  if (config_to_json(again) != config_to_json(config)) {
    std::fprintf(stderr, "config fuzz finding: the resolved config loads back to another config\n%s\n%s\n",
                 config_to_json(config).dump().c_str(), config_to_json(again).dump().c_str());
    std::abort();
  }
}

}  // namespace abmll::fuzz
