// `abmll inspect PATH [--json]`: lists the tensors of a .safetensors file, a sharded checkpoint (its
// *.safetensors.index.json) or a model folder: name, dtype, shape, parameters, bytes, and the totals. A text table
// by default, a JSON object with --json; both to stdout.
#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "io/inspect.h"

namespace abmll::cli {
namespace {

struct InspectFlags {
  std::string path;
  bool json = false;
};

}  // namespace

Command register_inspect(CLI::App& root) {
  auto flags = std::make_shared<InspectFlags>();
  CLI::App* cmd = root.add_subcommand("inspect", "List the tensors of a safetensors file, sharded checkpoint or model "
                                                 "folder");
  cmd->add_option("path", flags->path, "A .safetensors file, a *.safetensors.index.json, or a model folder")
      ->type_name("PATH")
      ->required();
  cmd->add_flag("--json", flags->json, "Print a JSON object instead of a table");
  return {cmd, [flags] {
            io::InspectListing listing = io::inspect_checkpoint(flags->path);
            if (flags->json)
              std::cout << io::render_json(listing).dump(2) << '\n';
            else
              std::cout << io::render_text(listing);
            std::cout.flush();
            return 0;
          }};
}

}  // namespace abmll::cli
