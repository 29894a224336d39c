// Pieces shared by the subcommands: the config flags (--config, --set, --help-config) and the run folder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/experiment_config.h"

namespace CLI {
class App;
}

namespace abmll::cli {

struct ConfigFlags {
  std::string config_file;             // --config (optional: every key can come from --set)
  std::vector<std::string> overrides;  // --set key=value, in order
  bool help_config = false;            // --help-config: list every key and stop
  bool print_config = false;           // --print-config: print the resolved config as YAML and stop
};

// Adds --config, --set, --help-config and --print-config to `command`.
void add_config_flags(CLI::App& command, ConfigFlags& flags);

// The resolved config, or nullopt once it has printed what was asked for instead of a run: the key list
// (--help-config), or the resolved config as YAML (--print-config; it checks the file and the overrides like a run
// would, but touches no model, data or output folder).
std::optional<ExperimentConfig> load_config(const ConfigFlags& flags);

// Token ids written "1,2,3", "1 2 3" or "[1, 2, 3]" (--ids). InputError for anything else or no ids at all.
std::vector<int64_t> parse_id_list(const std::string& text);

// The command line as given, for reports.
std::vector<std::string> command_line();
void set_command_line(int argc, char** argv);

// The output folder: --out if given, else runs/<config file stem>/<command>.
std::filesystem::path output_folder(const std::string& out_flag, const ConfigFlags& flags,
                                    const std::string& command);

}  // namespace abmll::cli
