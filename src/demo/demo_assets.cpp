#include "demo/demo_assets.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/ones.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "io/safetensors_writer.h"
#include "model/model_config.h"
#include "model/weight_names.h"
#include "text/byte_level.h"
#include "text/post_processor.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/rng.h"

namespace abmll::demo {
namespace {

// Byte-level vocabulary (ids 0..255), two special tokens, then the tokens of kMerges (ids 258...).
constexpr int64_t kBos = 256, kEos = 257;
// Merges that make the answers " yes" and " no" one token each, as in real LLM vocabularies: scored by summed
// log-likelihood, answers of different token counts would otherwise favour the shorter one for every method.
// ("Ġ" is byte-level BPE's spelling of the space byte.)
const std::vector<std::pair<std::string, std::string>> kMerges = {
    {"Ġ", "y"}, {"Ġy", "e"}, {"Ġye", "s"}, {"Ġ", "n"}, {"Ġn", "o"}};
const int64_t kVocab = 258 + static_cast<int64_t>(kMerges.size());

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

// A byte-level BPE tokenizer: one token per byte but for kMerges, <|begin_of_text|> prepended (Llama-3's template).
nlohmann::json tokenizer_json() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[text::byte_level::encode(std::string(1, static_cast<char>(b)))] = b;
  nlohmann::json merges = nlohmann::json::array();
  for (std::size_t i = 0; i < kMerges.size(); ++i) {
    vocab[kMerges[i].first + kMerges[i].second] = 258 + static_cast<int64_t>(i);
    merges.push_back({kMerges[i].first, kMerges[i].second});
  }
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
          {"post_processor", text::bos_template_json("<|begin_of_text|>", static_cast<int32_t>(kBos))},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
                       {"use_regex", true}}},
          {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                     {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                     {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
                     {"vocab", vocab}, {"merges", merges}}}};
}

// Weights at the scale of a trained network rather than of a fresh one: embeddings N(0, 1), every matrix
// N(0, 1/fan_in) (LeCun), norms 1, so activations and logits are O(1) throughout. (transformers' own init,
// N(0, 0.02^2), leaves the logits within about +-1 of each other after the final RMSNorm: no adapter of the layers
// could make such a model confident of any token, which a pretrained LLM's readout is.)
void write_weights(const std::filesystem::path& dir, const model::ModelConfig& config, std::uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  io::NamedTensors tensors;
  for (const auto& spec : model::weight_specs(config)) {
    at::Tensor t;
    if (spec.name.find("norm") != std::string::npos) {
      t = at::ones(spec.shape, at::kFloat);
    } else if (spec.name.find("embed_tokens") != std::string::npos) {
      t = at::empty(spec.shape, at::kFloat).normal_(0.0, 1.0, generator);
    } else {
      const double fan_in = static_cast<double>(spec.shape.back());
      t = at::empty(spec.shape, at::kFloat).normal_(0.0, 1.0 / std::sqrt(fan_in), generator);
    }
    tensors.emplace_back(spec.name, t);
  }
  io::write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
}

// One task's examples: "letter: q" answered "yes" when the letter comes after the task's threshold letter in the
// alphabet, "no" otherwise; half of each (letters drawn uniformly from each side of the threshold).
std::string task_file(Rng& rng, char threshold, int count) {
  const int below = threshold - 'a' + 1;  // letters a..threshold answer "no"
  const int above = 26 - below;
  std::string out;
  for (int i = 0; i < count; ++i) {
    const bool positive = i % 2 == 0;
    const char letter = positive ? static_cast<char>(threshold + 1 + static_cast<int>(rng.below(above)))
                                 : static_cast<char>('a' + static_cast<int>(rng.below(below)));
    out += fmt::format("letter: {}\t{}\n", letter, positive ? "yes" : "no");
  }
  return out;
}

}  // namespace

DemoAssets write_demo_assets(const DemoAssetsOptions& options) {
  if (options.train_tasks < 1 || options.test_tasks < 1 || options.train_tasks + options.test_tasks > 20)
    throw InputError("the demo has 20 threshold letters (d..w): train_tasks and test_tasks must be at least 1 and "
                     "sum to at most 20");
  DemoAssets assets{options.out / "model", options.out / "data", options.out / "data" / "partitions" / "demo.json"};

  const nlohmann::json config_json = model_config_json();
  write_file_atomic(assets.model_dir / "config.json", config_json.dump(2) + "\n");
  write_file_atomic(assets.model_dir / "tokenizer.json", tokenizer_json().dump() + "\n");
  const model::ModelConfig config = model::parse_model_config(config_json, (assets.model_dir / "config.json").string());
  write_weights(assets.model_dir, config, Rng::stream(options.seed, "demo/model").next_u64());

  // Threshold letters d..w (at least three letters on each side) in a seeded order: the first train_tasks for
  // training, the next test_tasks held out, so held-out thresholds fall between and beside the training ones.
  std::vector<char> thresholds;
  for (char c = 'd'; c <= 'w'; ++c) thresholds.push_back(c);
  Rng order = Rng::stream(options.seed, "demo/thresholds");
  order.shuffle(thresholds);
  nlohmann::json partition = {{"train", nlohmann::json::array()}, {"dev", nlohmann::json::array()},
                              {"test", nlohmann::json::array()}};
  for (int t = 0; t < options.train_tasks + options.test_tasks; ++t) {
    const bool held_out = t >= options.train_tasks;
    const std::string name = fmt::format("after_{}", thresholds[t]);
    partition[held_out ? "test" : "train"].push_back(name);
    Rng rng = Rng::stream(options.seed, "demo/task/" + name);
    for (const char* split : {"train", "dev", "test"}) {
      write_file_atomic(assets.data_dir / name / fmt::format("{}_16_100_{}.tsv", name, split),
                        task_file(rng, thresholds[t], options.examples_per_split));
    }
  }
  write_file_atomic(assets.partition, partition.dump(2) + "\n");
  return assets;
}

}  // namespace abmll::demo
