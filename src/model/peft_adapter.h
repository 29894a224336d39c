// PEFT LoRA adapter folders, read and written: adapter_config.json (r, lora_alpha, use_rslora, lora_dropout,
// target_modules) and adapter_model.safetensors holding, for every adapted module M of every layer,
//   base_model.model.M.lora_A.weight [r, in]   and   base_model.model.M.lora_B.weight [out, r]
// (M = projection_path(), e.g. model.layers.3.self_attn.q_proj), as PEFT 0.21's save_pretrained writes them for a
// LlamaForCausalLM / Qwen2ForCausalLM. A multimodal Gemma-3's and Mistral-3's modules are M with
// model.language_model.layers... (transformers 5; language_model.model.layers... under 4.x, also read), and its
// adapters written with a target_modules pattern that leaves the vision tower alone (language_model_targets()); the
// LoRA tensors of a vision tower, which PEFT adds when target_modules lists names, are left out when read (they do not
// act on text). A target_modules pattern is read from the tensors (the same projections in every layer). A loaded
// adapter is a BatchedLora with one group; a written one loads in PeftModel.from_pretrained and computes what
// BatchedLora computes.
//
// Only plain LoRA is read: options that change the computation in ways BatchedLora does not implement (DoRA, LoRA
// biases, per-module rank or alpha patterns, modules_to_save, layer subsets, adapters relative to modified base
// weights such as PiSSA / OLoRA / LoftQ, ...) are refused rather than silently ignored.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "model/lora.h"
#include "model/peft_adapter_config.h"
#include "model/model_config.h"

namespace abmll::model {

// Reads a PEFT LoRA folder for a model of `config`: factors as float32 on `device` (copies, not views of the file),
// not requiring grad. Throws abmll::InputError naming the file and the field or tensor for an unsupported config,
// a missing tensor, an unexpected tensor (another module, a layer the model lacks) or a wrong shape.
BatchedLora load_peft_adapter(const std::filesystem::path& dir, const ModelConfig& config,
                              at::Device device = at::kCPU);

// Writes group `group` of `lora` as a PEFT LoRA folder (creating it; each file replaced atomically): factors as
// float32, and a config naming `base_model` (may be empty) as base_model_name_or_path. Every site of
// lora_sites(config, settings) must have factors.
void write_peft_adapter(const std::filesystem::path& dir, const BatchedLora& lora, const ModelConfig& config,
                        int64_t group = 0, const std::string& base_model = "");

}  // namespace abmll::model
