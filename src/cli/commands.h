// The subcommands of `abmll`. Each registers its flags on the root CLI11 app and returns a Command whose run()
// is called by main after a successful parse. Commands parse flags and configs into plain structs, call one
// function of the core library, and leave error reporting and exit codes to main.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace abmll::cli {

struct Command {
  CLI::App* app = nullptr;    // the subcommand, owned by the root app
  std::function<int()> run;   // returns the exit code; throws abmll::Error for failures
};

Command register_meta_train(CLI::App& root);
Command register_adapt(CLI::App& root);
Command register_predict(CLI::App& root);
Command register_evaluate(CLI::App& root);
Command register_calibrate(CLI::App& root);
Command register_inspect(CLI::App& root);
Command register_make_demo(CLI::App& root);
Command register_tokenize(CLI::App& root);
Command register_logits(CLI::App& root);
Command register_report(CLI::App& root);

}  // namespace abmll::cli
