// The embedded default that needs nothing downloaded: a tiny Llama-architecture model saved as a real Hugging Face
// model folder (config.json, model.safetensors, tokenizer.json; loadable by transformers and tokenizers), and a
// family of synthetic few-shot tasks in CrossFit's file layout with a partition file. Everything is a deterministic
// function of the seed.
//
// The tasks share their format, their labels and what the labels mean, and differ in one parameter of the rule:
// each input is a letter ("letter: q"), and a task answers "yes" when the letter comes after the task's own
// threshold letter in the alphabet, "no" otherwise (half of each). Training and held-out tasks have different
// thresholds, so what carries over is the shared structure (the letters' order, the answer format), and each new
// task's threshold must be inferred from its few shots.
#pragma once

#include <cstdint>
#include <filesystem>

namespace abmll::demo {

struct DemoAssetsOptions {
  std::filesystem::path out;      // creates out/model and out/data
  std::uint64_t seed = 0;
  int train_tasks = 16;
  int test_tasks = 4;
  int examples_per_split = 64;    // in each of train, dev and test files
};

struct DemoAssets {
  std::filesystem::path model_dir, data_dir, partition;
};

DemoAssets write_demo_assets(const DemoAssetsOptions& options);

}  // namespace abmll::demo
