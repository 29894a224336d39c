#include "cli/common.h"

#include <CLI/CLI.hpp>

#include <cstdio>

#include "config/config_loader.h"
#include "util/error.h"

namespace abmll::cli {
namespace {
std::vector<std::string>& stored_command_line() {
  static std::vector<std::string> argv;
  return argv;
}
}  // namespace

void add_config_flags(CLI::App& command, ConfigFlags& flags) {
  command.add_option("-c,--config", flags.config_file, "Experiment config (YAML); see configs/")
      ->type_name("FILE");
  command.add_option("--set", flags.overrides, "Override a config key, e.g. --set outer.lr=3e-4 (repeatable)")
      ->type_name("KEY=VALUE")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  command.add_flag("--help-config", flags.help_config, "List every config key with its type, default and help");
  command.add_flag("--print-config", flags.print_config,
                   "Print the resolved config (file, then --set) as YAML and exit, without running");
}

std::optional<ExperimentConfig> load_config(const ConfigFlags& flags) {
  if (flags.help_config) {
    std::fputs(config_help_text().c_str(), stdout);
    return std::nullopt;
  }
  std::optional<std::filesystem::path> file;
  if (!flags.config_file.empty()) file = flags.config_file;
  ExperimentConfig config = load_experiment_config(file, flags.overrides);
  if (flags.print_config) {
    std::fputs(config_to_yaml(config).c_str(), stdout);
    return std::nullopt;
  }
  return config;
}

std::vector<int64_t> parse_id_list(const std::string& text) {
  std::vector<int64_t> ids;
  std::string current;
  auto flush = [&] {
    if (current.empty()) return;
    try {
      std::size_t used = 0;
      long long v = std::stoll(current, &used);
      if (used != current.size()) throw std::invalid_argument(current);
      ids.push_back(v);
    } catch (const std::logic_error&) {
      throw InputError("--ids: '" + current + "' is not a token id");
    }
    current.clear();
  };
  for (char c : text) {
    if (c == ',' || c == ' ' || c == '[' || c == ']' || c == '\n' || c == '\t') flush();
    else current += c;
  }
  flush();
  if (ids.empty()) throw InputError("--ids: '" + text + "' holds no token ids");
  return ids;
}

std::vector<std::string> command_line() { return stored_command_line(); }

void set_command_line(int argc, char** argv) { stored_command_line().assign(argv, argv + argc); }

std::filesystem::path output_folder(const std::string& out_flag, const ConfigFlags& flags,
                                    const std::string& command) {
  if (!out_flag.empty()) return out_flag;
  const std::string stem =
      flags.config_file.empty() ? "default" : std::filesystem::path(flags.config_file).stem().string();
  return std::filesystem::path("runs") / stem / command;
}

}  // namespace abmll::cli
