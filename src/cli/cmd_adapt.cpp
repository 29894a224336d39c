// `abmll adapt`: infers a new task's adapter posterior phi from its support set, starting from a meta-trained
// prior theta. Flags are final; the inference itself arrives with the ABMLL layer.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/error.h"

namespace abmll::cli {
namespace {

struct AdaptFlags {
  ConfigFlags config;
  std::string checkpoint, task, out;
};

}  // namespace

Command register_adapt(CLI::App& root) {
  auto flags = std::make_shared<AdaptFlags>();
  CLI::App* cmd = root.add_subcommand("adapt", "Infer a task's adapter posterior from its few shots");
  add_config_flags(*cmd, flags->config);
  cmd->add_option("--checkpoint", flags->checkpoint, "Meta-training checkpoint holding theta")->type_name("FILE");
  cmd->add_option("--task", flags->task, "Task to adapt to (name in the data folder)");
  cmd->add_option("-o,--out", flags->out, "Output folder for phi and its PEFT adapter")->type_name("DIR");
  return {cmd, [flags] {
            if (!load_config(flags->config)) return 0;
            throw Error("`abmll adapt` is not implemented in this build yet (the config is valid)");
            return 1;
          }};
}

}  // namespace abmll::cli
