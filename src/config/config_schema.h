// The one table of config keys. Each key is declared once, with its YAML path, type, default, help and validation;
// parsing, `--set key=value` overrides, `--help-config`, the resolved-config echo and report JSON all come from it.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <string>
#include <vector>

#include "config/experiment_config.h"

namespace YAML {
class Node;
}

namespace abmll {

struct ConfigKey {
  std::string path;          // dotted YAML path, e.g. "outer.lr"
  std::string type;          // for help: "int", "float", "bool", "string", "list of strings", "one of a|b|c"
  std::string help;
  std::string default_text;  // the default as it would be written in YAML; empty for required keys
  bool required = false;     // must be given (no sensible default)
  bool is_text = false;      // a free-text string: `--set` takes its value literally instead of reading YAML
  // Parses `node` into the config and validates it. Throws InputError with the problem only (no location: the
  // loader adds file and line).
  std::function<void(ExperimentConfig&, const YAML::Node&)> assign;
  // The key's current value, for echoing and reports.
  std::function<nlohmann::json(const ExperimentConfig&)> value;
  // Sets the key's default (required keys: an empty value).
  std::function<void(ExperimentConfig&)> reset;
};

// All keys, in the order they are documented.
const std::vector<ConfigKey>& config_keys();

// A config holding every key's default (required keys left empty).
ExperimentConfig default_experiment_config();

}  // namespace abmll
