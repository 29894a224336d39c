// Loading the frozen weights by the name table (see decoder_weights.h).
#include "model/decoder_weights.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/full.h>
#include <ATen/ops/normal.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/randint.h>
#include <ATen/ops/zeros.h>
#include <ATen/TensorOperators.h>
#include <fmt/format.h>

#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <utility>

#include "model/fp8.h"
#include "model/mxfp4.h"
#include "model/tensor_naming.h"
#include "model/weight_names.h"
#include "util/error.h"
#include "util/log.h"

namespace abmll::model {

namespace {

// DecoderWeights from tensors by their checkpoint names (every name of weight_specs(config)).
// (Taken by value: gpt-oss's gate_up tensors are released as soon as their experts are copied apart, which keeps the
// peak at one layer's copies rather than all layers'.)
DecoderWeights assemble(const ModelConfig& config, std::map<std::string, at::Tensor> loaded) {
  auto take = [&](const std::string& name) { return loaded.at(name); };
  // Gemma's and OLMo-2's norms scale in float32 (float64 stays float64): kept in that dtype; Gemma's by 1 + w, the
  // 1 added in float32 as GemmaRMSNorm adds it.
  auto norm = [&](const std::string& name) {
    const at::Tensor w = take(name);
    if (!config.norms_scale_in_float32) return w;
    const at::Tensor wide = w.to(at::promote_types(w.scalar_type(), at::kFloat));
    return config.unit_offset_norms ? wide + 1.0 : wide;
  };
  auto projection = [&](int64_t layer, Projection p) {
    const std::string path = projection_path(layer, p);
    LinearWeights w{take(path + ".weight"), {}};
    if (projection_has_bias(config, p)) w.bias = take(path + ".bias");
    return w;
  };
  DecoderWeights w;
  w.embed_tokens = take("model.embed_tokens.weight");
  for (int64_t i = 0; i < config.num_layers; ++i) {
    const std::string prefix = fmt::format("model.layers.{}.", i);
    LayerWeights layer;
    const LayerNormNames norms = layer_norm_names(config, i);
    // A norm the layer has; undefined where it has none.
    auto optional_norm = [&](const std::string& name) { return name.empty() ? at::Tensor() : norm(name); };
    layer.input_norm = optional_norm(norms.input);
    if (config.is_linear_attention(i) && config.mamba.defined()) {
      Mamba2Weights& m = layer.mamba;
      m.in = projection(i, Projection::mamba_in);
      m.out = projection(i, Projection::mamba_out);
      m.conv = take(prefix + "mamba.conv1d.weight");
      if (config.mamba.conv_bias) m.conv_bias = take(prefix + "mamba.conv1d.bias");
      m.a_log = take(prefix + "mamba.A_log");
      m.d = take(prefix + "mamba.D");
      m.dt_bias = take(prefix + "mamba.dt_bias");
      m.norm = take(prefix + "mamba.norm.weight");  // a plain scale, in the model's dtype
    } else if (config.is_linear_attention(i)) {
      DeltaNetWeights& d = layer.delta_net;
      d.in_qkv = projection(i, Projection::delta_qkv);
      d.in_z = projection(i, Projection::delta_z);
      d.in_b = projection(i, Projection::delta_b);
      d.in_a = projection(i, Projection::delta_a);
      d.out = projection(i, Projection::delta_out);
      d.conv = take(prefix + "linear_attn.conv1d.weight");
      d.a_log = take(prefix + "linear_attn.A_log");
      d.dt_bias = take(prefix + "linear_attn.dt_bias");
      d.norm = take(prefix + "linear_attn.norm.weight");  // a plain scale, in the model's dtype
    } else {
      layer.attention.o = projection(i, Projection::o);
      if (config.mla.defined()) {
        AttentionWeights& a = layer.attention;
        if (config.mla.q_rank > 0) {
          a.q_a = projection(i, Projection::q_a);
          a.q_a_norm = norm(prefix + "self_attn.q_a_layernorm.weight");
          a.q_b = projection(i, Projection::q_b);
        } else {
          a.q = projection(i, Projection::q);
        }
        a.kv_a = projection(i, Projection::kv_a);
        a.kv_a_norm = norm(prefix + "self_attn.kv_a_layernorm.weight");
        a.kv_b = projection(i, Projection::kv_b);
      } else if (config.fused_qkv) {
        layer.attention.qkv = projection(i, Projection::qkv);
      } else {
        layer.attention.q = projection(i, Projection::q);
        layer.attention.k = projection(i, Projection::k);
        layer.attention.v = projection(i, Projection::v);
      }
    }
    if (config.attention_sinks) layer.attention.sinks = take(prefix + "self_attn.sinks");
    if (config.qk_norm && !config.is_linear_attention(i)) {
      layer.attention.q_norm = norm(prefix + "self_attn.q_norm.weight");
      layer.attention.k_norm = norm(prefix + "self_attn.k_norm.weight");
    }
    layer.attention_output_norm = optional_norm(norms.attention_output);
    layer.mlp_input_norm = optional_norm(norms.mlp_input);
    layer.mlp_output_norm = optional_norm(norms.mlp_output);
    if (config.moe.in_layer(i)) {
      auto gated_mlp = [&](const std::function<std::string(Projection)>& name) {
        MlpWeights m;
        m.gate.weight = take(name(Projection::gate));
        m.up.weight = take(name(Projection::up));
        m.down.weight = take(name(Projection::down));
        return m;
      };
      layer.moe.router = take(router_weight_name(config, i));
      if (config.moe.transposed_experts) layer.moe.router_bias = take(router_bias_name(i));
      if (config.moe.choice_bias) {  // float32 at least (random weights are made in the model's dtype)
        const at::Tensor bias = take(choice_bias_name(i));
        layer.moe.choice_bias = bias.to(at::promote_types(bias.scalar_type(), at::kFloat));
      }
      if (config.moe.transposed_experts) {
        // gpt-oss: gate_up [E, D, 2 Fe] (MXFP4: [E, 2 Fe, D] dequantized expert by expert) and down [E, Fe, D], with
        // biases. Each expert's gate and up rows, which alternate, are copied apart once here ([Fe, D] each), so that
        // the forward takes two plain products and the backward no strided halves of a [N, 2 Fe] gradient.
        auto name = [&](Projection p, const char* suffix) { return transposed_experts_name(i, p, false) + suffix; };
        const at::Tensor gate_up_bias = take(transposed_experts_name(i, Projection::gate_up, true));  // [E, 2 Fe]
        const at::Tensor down_bias = take(transposed_experts_name(i, Projection::down, true));        // [E, D]
        const at::ScalarType dtype = w.embed_tokens.scalar_type();
        // A projection's stored tensors, looked up once: the weight, or its MXFP4 blocks and scales.
        struct Stored {
          at::Tensor weight, blocks, scales;
        };
        auto stored = [&](Projection p) {
          return config.moe.mxfp4_experts ? Stored{{}, take(name(p, "_blocks")), take(name(p, "_scales"))}
                                          : Stored{take(name(p, "")), {}, {}};
        };
        // Expert e's [out, in] weight: dequantized, or a transposed view of the input-major tensor.
        auto expert_weight = [&](const Stored& t, int64_t e) {
          return t.weight.defined() ? t.weight.select(0, e).t()
                                    : dequantize_mxfp4(t.blocks.select(0, e), t.scales.select(0, e), dtype);
        };
        const Stored gate_up_stored = stored(Projection::gate_up), down_stored = stored(Projection::down);
        for (int64_t e = 0; e < config.moe.num_experts; ++e) {
          const at::Tensor gate_up = expert_weight(gate_up_stored, e);  // [2 Fe, D], gate and up rows alternating
          const at::Tensor down = expert_weight(down_stored, e);        // [D, Fe]
          const at::Tensor bias = gate_up_bias.select(0, e);
          const int64_t width = gate_up.size(0);
          MlpWeights m;
          m.gate = {gate_up.slice(0, 0, width, 2).contiguous(), bias.slice(0, 0, width, 2).contiguous()};
          m.up = {gate_up.slice(0, 1, width, 2).contiguous(), bias.slice(0, 1, width, 2).contiguous()};
          m.down = {down, down_bias.select(0, e)};
          layer.moe.experts.push_back(std::move(m));
        }
        for (const char* part : {"", "_blocks", "_scales"}) loaded.erase(name(Projection::gate_up, part));
      } else if (config.moe.stacked_experts) {  // GraniteMoE: views of the layer's two stacked tensors
        const at::Tensor gate_up = take(stacked_experts_name(i, Projection::gate_up));  // [E, 2 Fe, D]
        const at::Tensor down = take(stacked_experts_name(i, Projection::down));        // [E, D, Fe]
        for (int64_t e = 0; e < config.moe.num_experts; ++e) {
          MlpWeights m;
          m.gate_up.weight = gate_up.select(0, e);
          m.down.weight = down.select(0, e);
          layer.moe.experts.push_back(std::move(m));
        }
      } else {
        for (int64_t e = 0; e < config.moe.num_experts; ++e)
          layer.moe.experts.push_back(gated_mlp([&](Projection p) { return expert_weight_name(config, i, e, p); }));
      }
      if (config.moe.shared_expert_size > 0 && config.architecture == Architecture::granitemoehybrid) {
        layer.moe.shared_expert.gate_up = projection(i, Projection::shared_gate_up);  // [2 Fs, D]
        layer.moe.shared_expert.down = projection(i, Projection::shared_down);        // [D, Fs]
      } else if (config.moe.shared_expert_size > 0) {
        layer.moe.shared_expert = gated_mlp([&](Projection p) { return shared_expert_weight_name(config, i, p); });
        if (config.moe.shared_expert_gated) layer.moe.shared_expert_gate = take(shared_expert_gate_name(i));
      }
    } else if (config.architecture == Architecture::granitemoehybrid) {  // the shared MLP, gate and up as one
      MlpWeights& m = layer.mlp;
      m.gate_up_site = Projection::shared_gate_up;
      m.down_site = Projection::shared_down;
      m.gate_up = projection(i, m.gate_up_site);
      m.down = projection(i, m.down_site);
    } else {
      layer.mlp.down = projection(i, Projection::down);
      if (config.fused_gate_up) {
        layer.mlp.gate_up = projection(i, Projection::gate_up);
      } else if (config.activation == Activation::xielu) {  // Apertus: ungated, the activation's parameters
        layer.mlp.up = projection(i, Projection::up);
        auto parameter = [&](const char* name) { return take(xielu_parameter_name(i, name)); };
        layer.mlp.xielu = {parameter("alpha_p"), parameter("alpha_n"), parameter("beta"), parameter("eps")};
      } else {
        layer.mlp.gate = projection(i, Projection::gate);
        layer.mlp.up = projection(i, Projection::up);
      }
    }
    w.layers.push_back(std::move(layer));
  }
  w.norm = norm("model.norm.weight");
  w.lm_head = config.tie_word_embeddings ? w.embed_tokens : take("lm_head.weight");
  return w;
}

}  // namespace

void settle_tied_head(ModelConfig& config, const io::TensorStore& store) {
  if (!config.tie_word_embeddings) return;
  const TensorNaming naming = tensor_naming(config, store);
  const std::string head = naming("lm_head.weight"), embeddings = naming("model.embed_tokens.weight");
  if (!store.has(head) || !store.has(embeddings)) return;  // (a missing embedding is reported by the loader)
  const at::Tensor h = store.tensor(head), e = store.tensor(embeddings);
  if (h.scalar_type() == e.scalar_type() && h.sizes() == e.sizes() && at::equal(h, e)) return;
  log::warn("{}: config.json ties lm_head to the embeddings, but the checkpoint's '{}' holds other values: it is "
            "used, untied (as transformers does)",
            store.source().string(), head);
  config.tie_word_embeddings = false;
}

DecoderWeights load_decoder_weights(const io::TensorStore& store, const ModelConfig& config,
                                    const WeightOptions& options) {
  return with_context(fmt::format("loading weights from {}", store.source().string()), [&] {
    const auto specs = weight_specs(config);
    const TensorNaming naming = tensor_naming(config, store);
    // Check everything before converting anything: a wrong checkpoint fails fast, naming the first bad tensor.
    for (const auto& spec : specs) {
      const std::string name = naming(spec.name);
      if (!store.has(name))
        throw InputError(fmt::format("tensor '{}' is missing; is this checkpoint for a different architecture? "
                                     "config.json says {} with {} layers{}",
                                     name, to_string(config.architecture), config.num_layers,
                                     spec.name == "lm_head.weight" ? " and tie_word_embeddings=false" : ""));
      const io::StoreEntry entry = store.entry(name);
      check_weight_shape({name, spec.shape}, entry.entry.shape, config);
    }

    const at::Device device(options.device);
    const at::ScalarType dtype =
        options.dtype.value_or(store.tensor(naming("model.embed_tokens.weight")).scalar_type());
    std::map<std::string, at::Tensor> loaded;
    for (const auto& spec : specs) {
      at::Tensor t = store.tensor(naming(spec.name));
      const at::ScalarType stored = t.scalar_type();
      if (spec.packed) {  // MXFP4 blocks and scales: bytes, dequantized by assemble() on the device
        if (stored != at::kByte)
          throw InputError(fmt::format("tensor '{}' has dtype {}; expected uint8 (MXFP4)", naming(spec.name),
                                       c10::toString(stored)));
        loaded[spec.name] = t.to(device);
        continue;
      }
      if (stored == at::kFloat8_e4m3fn && config.fp8_weights && spec.name.ends_with(".weight")) {
        // A fine-grained FP8 weight and its scales, dequantized on the device.
        const std::string name = naming(spec.name), scale_name = name + "_scale_inv";
        if (!store.has(scale_name))
          throw InputError(fmt::format("tensor '{}' is FP8 but its scales, '{}', are missing", name, scale_name));
        loaded[spec.name] = dequantize_fp8(t.to(device), store.tensor(scale_name), config.fp8_block, dtype, name);
        continue;
      }
      // (8- and 4-bit floats are quantized weights, meaningless without the scales stored beside them.)
      if (stored != at::kFloat && stored != at::kBFloat16 && stored != at::kHalf && stored != at::kDouble)
        throw InputError(fmt::format("tensor '{}' has dtype {}; expected float32, bfloat16, float16 or float64 "
                                     "(quantized weights are not supported)",
                                     naming(spec.name), c10::toString(stored)));
      // A no-op (a view of the mapping) when dtype and device already match. DeepSeek-V3's router bias stays in
      // float32 at least, as transformers keeps it (_keep_in_fp32_modules_strict).
      const bool wide = spec.name.ends_with(".e_score_correction_bias");
      loaded[spec.name] = t.to(device, wide ? at::promote_types(dtype, at::kFloat) : dtype).set_requires_grad(false);
    }

    return assemble(config, std::move(loaded));
  });
}

DecoderWeights random_decoder_weights(const ModelConfig& config, const WeightOptions& options, std::uint64_t seed) {
  const at::Device device(options.device);
  const auto tensor_options = at::TensorOptions().dtype(options.dtype.value_or(at::kFloat)).device(device);
  // On a GPU the device's default generator (reseeded here), so that the weights are drawn where they live.
  at::Generator generator = device.is_cpu() ? at::make_generator<at::CPUGeneratorImpl>()
                                            : at::globalContext().defaultGenerator(device);
  {
    const std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_current_seed(seed);
  }
  const at::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> made;
  for (const auto& spec : weight_specs(config)) {
    // (Cohere's per-head query and key norms are [heads, Dh].)
    const bool norm = spec.name.size() > 7 && spec.name.compare(spec.name.size() - 7, 7, ".weight") == 0 &&
                      (spec.shape.size() == 1 || spec.name.find("_norm.") != std::string::npos);
    // A norm's stored weight is its scale, or for Gemma's (1 + w) norms 0 (as transformers initialises them).
    if (spec.packed) {  // MXFP4: random codes, every block scaled by 2^-4
      const auto bytes = at::TensorOptions().dtype(at::kByte).device(device);
      made[spec.name] = spec.shape.size() == 4 ? at::randint(0, 256, spec.shape, generator, bytes)
                                               : at::full(spec.shape, 123, bytes);
      continue;
    }
    if (spec.name.find(".act_fn.") != std::string::npos) {  // xIELU's initial parameters (XIELUActivation's)
      const double initial = spec.name.ends_with(".alpha_p") ? std::log(std::expm1(0.8))
                             : spec.name.ends_with(".alpha_n") ? std::log(std::expm1(0.8 - 0.5))
                             : spec.name.ends_with(".beta")    ? 0.5
                                                               : -1e-6;
      made[spec.name] = at::full(spec.shape, initial, tensor_options);
      continue;
    }
    if (spec.name.ends_with(".linear_attn.norm.weight") || spec.name.ends_with(".linear_attn.A_log") ||
        spec.name.ends_with(".linear_attn.dt_bias")) {  // a DeltaNet's gated norm a scale of 1, A = 1, dt_bias 1
      made[spec.name] = spec.name.ends_with(".A_log") ? at::zeros(spec.shape, tensor_options)
                                                      : at::ones(spec.shape, tensor_options);
      continue;
    }
    made[spec.name] = !norm ? at::normal(0.0, 0.02, spec.shape, generator, tensor_options)
                      : config.unit_offset_norms ? at::zeros(spec.shape, tensor_options)
                                                 : at::ones(spec.shape, tensor_options);
  }
  return assemble(config, std::move(made));
}

}  // namespace abmll::model
