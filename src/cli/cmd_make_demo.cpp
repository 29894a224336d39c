// `abmll make-demo`: writes the embedded default (a tiny Llama model folder and synthetic few-shot tasks, see
// demo/demo_assets.h) that configs/demo.yaml and ./scripts/demo.sh use.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "demo/demo_assets.h"
#include "util/log.h"

namespace abmll::cli {

Command register_make_demo(CLI::App& root) {
  auto options = std::make_shared<demo::DemoAssetsOptions>();
  auto out = std::make_shared<std::string>("runs/demo");
  CLI::App* cmd = root.add_subcommand("make-demo", "Write the built-in tiny model and synthetic tasks of the demo");
  cmd->add_option("-o,--out", *out, "Folder for model/ and data/")->type_name("DIR")->capture_default_str();
  cmd->add_option("--seed", options->seed, "Seed of the model's weights and the tasks")->capture_default_str();
  return {cmd, [options, out] {
            options->out = *out;
            const demo::DemoAssets assets = demo::write_demo_assets(*options);
            log::info("wrote model {} and tasks {} (partition {})", assets.model_dir.string(),
                      assets.data_dir.string(), assets.partition.string());
            return 0;
          }};
}

}  // namespace abmll::cli
