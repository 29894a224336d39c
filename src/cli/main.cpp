// abmll's entry point: parses the command line, runs the chosen subcommand, and turns errors into messages and
// exit codes (0 success, 2 bad usage or bad input, 1 any other failure, 130 interrupted). The only place that does.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <exception>
#include <iostream>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/build_info.h"
#include "util/cached_memory.h"
#include "util/error.h"
#include "util/log.h"
#include "util/torch_errors.h"

int main(int argc, char** argv) {
  // On a GPU, batches of varying padded length leave the caching allocator's fixed-size segments fragmented (memory
  // reserved but unusable, near the limit an out-of-memory error); expandable segments grow in place instead. Read
  // at the allocator's first use, after this; a user's own setting wins.
  setenv("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True", /*overwrite=*/0);
  abmll::keep_freed_memory_for_reuse(abmll::kReusedBlockLimit);
  namespace cli = abmll::cli;
  cli::set_command_line(argc, argv);
  CLI::App app{
      "abmll: amortized Bayesian meta-learning of LoRA adapters for large language models.\n"
      "Learns a prior over LoRA adapters across many tasks, infers a new task's adapter posterior from a few shots,\n"
      "and reports accuracy and calibration.",
      "abmll"};
  app.require_subcommand(1);
  app.set_version_flag("--version", abmll::build_info::version_line());
  app.footer("Run `abmll <command> --help` for a command's options.");

  std::vector<cli::Command> commands = {
      cli::register_meta_train(app), cli::register_adapt(app),   cli::register_predict(app),
      cli::register_evaluate(app),   cli::register_calibrate(app), cli::register_report(app),
      cli::register_inspect(app),    cli::register_tokenize(app),  cli::register_logits(app),
      cli::register_make_demo(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every other parse failure is bad usage.
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  for (const auto& command : commands) {
    if (!command.app->parsed()) continue;
    try {
      return command.run();
    } catch (const abmll::Error& e) {
      abmll::log::error("{}", e.what());
      return e.exit_code();
    } catch (const std::exception& e) {
      // LibTorch's own errors: the message for the user, its C++ backtrace for a debug log.
      abmll::log::error("{}", abmll::message_of(e));
      abmll::log::debug("{}", e.what());
      return abmll::exit_code_for(e);
    }
  }
  return 2;  // unreachable: require_subcommand(1)
}
