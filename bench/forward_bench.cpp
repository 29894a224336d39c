// abmll_bench: times the decoder's forward pass (hidden states and logits at every position, as `abmll logits` and
// transformers' forward compute them) on random token ids, for scripts/bench/forward.py. Not a test.
//
//   abmll_bench --model DIR [--dtype float32|bfloat16] [--batch 4] [--seq 256] [--warmup 2] [--runs 5]
//               [--seed 0] [--profile STEM]
// prints one JSON line: {"seconds": [per run...], "threads": N, "dtype": "..."}. With --profile, one more forward
// after the timed ones runs under the operator profiler (util/step_profiler.h), written to STEM.ops.tsv and
// STEM.trace.json.
#include <CLI/CLI.hpp>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/ops/randint.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "model/decoder.h"
#include "util/cached_memory.h"
#include "util/error.h"
#include "util/step_profiler.h"

int main(int argc, char** argv) {
  abmll::keep_freed_memory_for_reuse(abmll::kReusedBlockLimit);  // as abmll's commands run
  CLI::App app("Times the abmll decoder's forward pass");
  std::string model, dtype = "float32";
  int64_t batch = 4, seq = 256, warmup = 2, runs = 5, seed = 0;
  std::string profile;
  app.add_option("--model", model, "Hugging Face model folder")->required();
  app.add_option("--dtype", dtype, "float32 or bfloat16")->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--seq", seq)->capture_default_str();
  app.add_option("--warmup", warmup)->capture_default_str();
  app.add_option("--runs", runs)->capture_default_str();
  app.add_option("--seed", seed)->capture_default_str();
  app.add_option("--profile", profile, "also profile one forward: STEM.ops.tsv (time per operator), STEM.trace.json");
  CLI11_PARSE(app, argc, argv);
  try {
    abmll::model::WeightOptions options;
    if (dtype == "bfloat16") options.dtype = at::kBFloat16;
    else if (dtype == "float32") options.dtype = at::kFloat;
    else throw abmll::InputError("--dtype: '" + dtype + "' is not float32 or bfloat16");
    c10::InferenceMode inference;
    const auto decoder = abmll::model::Decoder::load(model, options);
    at::manual_seed(static_cast<uint64_t>(seed));
    const at::Tensor ids = at::randint(decoder.config().vocab_size, {batch, seq}, at::kLong);
    auto forward = [&] {
      const at::Tensor logits = decoder.logits(decoder.forward(ids, at::Tensor()));
      (void)logits.sum().item<float>();  // forces completion (and keeps the work from being dead)
    };
    std::vector<double> seconds;
    for (int64_t i = 0; i < warmup + runs; ++i) {
      const auto start = std::chrono::steady_clock::now();
      forward();
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
      if (i >= warmup) seconds.push_back(took.count());
    }
    if (!profile.empty()) {
      abmll::StepProfiler profiler(c10::Device(c10::kCPU));
      forward();
      profiler.finish(profile);
    }
    std::cout << nlohmann::json{{"seconds", seconds}, {"threads", at::get_num_threads()}, {"dtype", dtype}}.dump()
              << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "abmll_bench: " << e.what() << "\n";
    return abmll::exit_code_for(e);
  }
}
