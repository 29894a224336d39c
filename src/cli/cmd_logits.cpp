// `abmll logits --model DIR (--text STR | --ids 1,2,3 [--ids 4,5 ...]) --out FILE.safetensors`: runs the decoder
// of a Hugging Face model folder and writes its logits as float32. One sequence gives `logits` [T, V]; several
// (--ids repeated) are padded into one batch (--padding right|left) and give `logits` [B, T, V] with
// `attention_mask` [B, T] (rows at padding positions are meaningless). `input_ids` is written too. A debugging and
// parity-testing tool: the comparison with transformers drives it (tests/python/test_model_parity.py).
// --adapter DIR applies a PEFT LoRA adapter folder (tests/python/test_lora_parity.py compares with PEFT).
#include <CLI/CLI.hpp>

#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <c10/core/InferenceMode.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "io/safetensors_writer.h"
#include "model/decoder.h"
#include "model/peft_adapter.h"
#include "text/tokenizer.h"
#include "util/device.h"
#include "util/error.h"
#include "util/log.h"

namespace abmll::cli {
namespace {

struct LogitsFlags {
  std::string model;
  std::string text;
  std::vector<std::string> ids;
  std::string padding = "right";
  std::string dtype = "auto";
  std::string device = "cpu";
  std::string out;
  std::string adapter;
  bool no_special = false;
};

std::optional<at::ScalarType> parse_dtype(const std::string& name) {
  if (name == "auto") return std::nullopt;
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  throw InputError("--dtype: '" + name + "' is not one of auto, float32, bfloat16, float16");
}

int run_logits(const LogitsFlags& flags) {
  std::vector<std::vector<int64_t>> sequences;
  if (!flags.text.empty()) {
    const std::filesystem::path dir(flags.model);
    text::Tokenizer tokenizer = text::Tokenizer::from_file(dir / "tokenizer.json");
    std::vector<int64_t> ids;
    for (int32_t id : tokenizer.encode(flags.text, !flags.no_special)) ids.push_back(id);
    if (ids.empty()) throw InputError("--text: the text encodes to no tokens");
    sequences.push_back(std::move(ids));
  } else {
    for (const auto& list : flags.ids) sequences.push_back(parse_id_list(list));
  }
  if (sequences.empty()) throw InputError("logits: --text is empty");
  if (flags.padding != "left" && flags.padding != "right")
    throw InputError("--padding: '" + flags.padding + "' is not left or right");

  // Pad into [B, T]: padding positions hold id 0 and mask 0.
  const int64_t b = static_cast<int64_t>(sequences.size());
  int64_t t = 0;
  for (const auto& s : sequences) t = std::max<int64_t>(t, static_cast<int64_t>(s.size()));
  at::Tensor ids = at::zeros({b, t}, at::kLong), mask = at::zeros({b, t}, at::kLong);
  auto* id_data = ids.data_ptr<int64_t>();
  auto* mask_data = mask.data_ptr<int64_t>();
  for (int64_t i = 0; i < b; ++i) {
    const auto& s = sequences[static_cast<std::size_t>(i)];
    const int64_t n = static_cast<int64_t>(s.size()), start = flags.padding == "left" ? t - n : 0;
    for (int64_t j = 0; j < n; ++j) {
      id_data[i * t + start + j] = s[static_cast<std::size_t>(j)];
      mask_data[i * t + start + j] = 1;
    }
  }

  model::WeightOptions options;
  options.dtype = parse_dtype(flags.dtype);
  options.device = resolve_device(flags.device).name;
  c10::InferenceMode inference;
  const model::Decoder decoder = model::Decoder::load(flags.model, options);
  std::optional<model::BatchedLora> adapter;
  if (!flags.adapter.empty()) adapter = model::load_peft_adapter(flags.adapter, decoder.config(), decoder.device());
  const model::LinearAdapter* hook = adapter ? &*adapter : nullptr;
  at::Tensor logits = decoder.logits(decoder.forward(ids, mask, hook)).to(at::kCPU, at::kFloat);  // [B, T, V]
  io::NamedTensors out;
  if (b == 1) {
    out = {{"logits", logits[0]}, {"input_ids", ids[0]}};
  } else {
    out = {{"logits", logits}, {"input_ids", ids}, {"attention_mask", mask}};
  }
  io::write_safetensors(flags.out, out,
                        {{"model", flags.model}, {"dtype", c10::toString(decoder.dtype())},
                         {"padding", flags.padding}, {"adapter", flags.adapter}});
  log::info("wrote logits [{}{}, {}] to {}", b == 1 ? "" : std::to_string(b) + ", ", t,
            decoder.config().vocab_size, flags.out);
  return 0;
}

}  // namespace

Command register_logits(CLI::App& root) {
  auto flags = std::make_shared<LogitsFlags>();
  CLI::App* cmd =
      root.add_subcommand("logits", "Run a Hugging Face Llama/Qwen2/Qwen3 model folder and write its logits");
  cmd->add_option("--model", flags->model, "Model folder: config.json and model.safetensors (or a sharded index)")
      ->type_name("DIR")
      ->required();
  auto* text = cmd->add_option("--text", flags->text, "Text to encode with DIR/tokenizer.json")->type_name("STR");
  auto* ids = cmd->add_option("--ids", flags->ids,
                              "Token ids of one sequence, e.g. 1,2,3; repeat for a padded batch")
                  ->type_name("IDS");
  cmd->add_option("--padding", flags->padding, "Where a batch's shorter sequences are padded: right or left")
      ->capture_default_str();
  cmd->add_option("--dtype", flags->dtype, "Compute dtype: auto (the checkpoint's), float32, bfloat16, float16")
      ->capture_default_str();
  cmd->add_option("--device", flags->device, "cpu, cuda, cuda:N or auto")->capture_default_str();
  cmd->add_option("--adapter", flags->adapter,
                  "PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors)")
      ->type_name("DIR");
  cmd->add_option("--out", flags->out, "Output .safetensors file")->type_name("FILE")->required();
  cmd->add_flag("--no-special", flags->no_special, "With --text: encode without the template's special tokens");
  text->excludes(ids);
  return {cmd, [flags, text, ids] {
            if (text->count() == 0 && ids->count() == 0) throw InputError("logits needs --text or --ids");
            return run_logits(*flags);
          }};
}

}  // namespace abmll::cli
