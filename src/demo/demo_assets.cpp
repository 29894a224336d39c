#include "demo/demo_assets.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/ones.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/safetensors_writer.h"
#include "model/model_config.h"
#include "model/weight_names.h"
#include "text/byte_level.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/rng.h"

namespace abmll::demo {
namespace {

// Byte-level vocabulary (ids 0..255) plus two special tokens.
constexpr int64_t kBos = 256, kEos = 257, kVocab = 258;

nlohmann::json model_config_json() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"hidden_size", 64},
          {"intermediate_size", 128},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"head_dim", 16},
          {"hidden_act", "silu"},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 10000.0},
          {"max_position_embeddings", 512},
          {"vocab_size", kVocab},
          {"tie_word_embeddings", false},
          {"attention_bias", false},
          {"mlp_bias", false},
          {"bos_token_id", kBos},
          {"eos_token_id", kEos},
          {"torch_dtype", "float32"}};
}

// A byte-level BPE tokenizer with no merges: one token per byte, <|begin_of_text|> prepended (Llama-3's template).
nlohmann::json tokenizer_json() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[text::byte_level::encode(std::string(1, static_cast<char>(b)))] = b;
  auto special = [](int64_t id, const char* content) {
    return nlohmann::json{{"id", id},         {"content", content}, {"single_word", false}, {"lstrip", false},
                          {"rstrip", false},  {"normalized", false}, {"special", true}};
  };
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", {special(kBos, "<|begin_of_text|>"), special(kEos, "<|end_of_text|>")}},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                             {"use_regex", true}}},
          {"post_processor",
           {{"type", "TemplateProcessing"},
            {"single", {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
            {"pair", {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                      {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                      {{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 1}}}},
                      {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
            {"special_tokens", {{"<|begin_of_text|>", {{"id", "<|begin_of_text|>"}, {"ids", {kBos}},
                                                       {"tokens", {"<|begin_of_text|>"}}}}}}}},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
                       {"use_regex", true}}},
          {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                     {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                     {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
                     {"vocab", vocab}, {"merges", nlohmann::json::array()}}}};
}

// Weights as transformers initialises a Llama: normal(0, 0.02) for matrices and embeddings, ones for norms.
void write_weights(const std::filesystem::path& dir, const model::ModelConfig& config, std::uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  io::NamedTensors tensors;
  for (const auto& spec : model::weight_specs(config)) {
    at::Tensor t;
    if (spec.name.find("norm") != std::string::npos) {
      t = at::ones(spec.shape, at::kFloat);
    } else {
      t = at::empty(spec.shape, at::kFloat).normal_(0.0, 0.02, generator);
    }
    tensors.emplace_back(spec.name, t);
  }
  io::write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
}

// One task's examples: sequences of 6 letters from a..p; "yes" when the key letter occurs. Balanced by design.
std::string task_file(Rng& rng, char key, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    const bool positive = i % 2 == 0;
    std::string letters;
    for (int j = 0; j < 6; ++j) {
      char c;
      do c = static_cast<char>('a' + rng.below(16));
      while (c == key);
      letters += c;
    }
    if (positive) letters[rng.below(letters.size())] = key;
    std::string spaced;
    for (char c : letters) spaced += spaced.empty() ? std::string(1, c) : std::string(" ") + c;
    out += fmt::format("letters: {}\t{}\n", spaced, positive ? "yes" : "no");
  }
  return out;
}

}  // namespace

DemoAssets write_demo_assets(const DemoAssetsOptions& options) {
  if (options.train_tasks + options.test_tasks > 16)
    throw InputError("the demo has 16 key letters: train_tasks + test_tasks must be at most 16");
  DemoAssets assets{options.out / "model", options.out / "data", options.out / "data" / "partitions" / "demo.json"};

  const nlohmann::json config_json = model_config_json();
  write_file_atomic(assets.model_dir / "config.json", config_json.dump(2) + "\n");
  write_file_atomic(assets.model_dir / "tokenizer.json", tokenizer_json().dump() + "\n");
  const model::ModelConfig config = model::parse_model_config(config_json, (assets.model_dir / "config.json").string());
  write_weights(assets.model_dir, config, Rng::stream(options.seed, "demo/model").next_u64());

  // Key letters in a seeded order: the first train_tasks for training, the next test_tasks held out.
  std::vector<char> keys;
  for (char c = 'a'; c < 'a' + 16; ++c) keys.push_back(c);
  Rng order = Rng::stream(options.seed, "demo/keys");
  order.shuffle(keys);
  nlohmann::json partition = {{"train", nlohmann::json::array()}, {"dev", nlohmann::json::array()},
                              {"test", nlohmann::json::array()}};
  for (int t = 0; t < options.train_tasks + options.test_tasks; ++t) {
    const bool held_out = t >= options.train_tasks;
    const std::string name = fmt::format("has_{}", keys[t]);
    partition[held_out ? "test" : "train"].push_back(name);
    Rng rng = Rng::stream(options.seed, "demo/task/" + name);
    for (const char* split : {"train", "dev", "test"}) {
      write_file_atomic(assets.data_dir / name / fmt::format("{}_16_100_{}.tsv", name, split),
                        task_file(rng, keys[t], options.examples_per_split));
    }
  }
  write_file_atomic(assets.partition, partition.dump(2) + "\n");
  return assets;
}

}  // namespace abmll::demo
