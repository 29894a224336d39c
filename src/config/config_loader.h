// Reads an experiment config from a YAML file plus `--set key=value` overrides into an ExperimentConfig, and
// writes it back out (resolved YAML for the run folder, JSON for reports, help text for --help-config).
// Every error is an InputError naming the file and line (or the override) and the problem.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/experiment_config.h"

namespace abmll {

// Defaults, then the file (if any), then each override "a.b=value" in order (the value is read as YAML, so lists
// are written `[q_proj, v_proj]`, except for string keys, which take the text as it is). Checks that required keys
// were given.
ExperimentConfig load_experiment_config(const std::optional<std::filesystem::path>& file,
                                        const std::vector<std::string>& overrides);

// The whole resolved config as YAML that load_experiment_config reads back to the same config.
std::string config_to_yaml(const ExperimentConfig& config);

// The resolved config as nested JSON ({"outer": {"lr": ...}, ...}).
nlohmann::json config_to_json(const ExperimentConfig& config);

// Every key with its type, default and help, grouped by section, for `--help-config`.
std::string config_help_text();

}  // namespace abmll
