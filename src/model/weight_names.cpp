// The HF tensor names of the decoders' checkpoints and their shapes (see weight_names.h). Dimension letters as in
// model_config.h: D hidden, F intermediate, H / Hkv heads, Dh head size, V vocabulary; E experts, Fe an expert's
// width, Fs the shared expert's.
#include "model/weight_names.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <functional>
#include <iterator>
#include <tuple>

#include "util/error.h"

namespace abmll::model {

std::string projection_name(Projection p) {
  switch (p) {
    case Projection::q: return "q_proj";
    case Projection::k: return "k_proj";
    case Projection::v: return "v_proj";
    case Projection::o: return "o_proj";
    case Projection::gate: return "gate_proj";
    case Projection::up: return "up_proj";
    case Projection::down: return "down_proj";
    case Projection::qkv: return "qkv_proj";
    case Projection::gate_up: return "gate_up_proj";
    case Projection::q_a: return "q_a_proj";
    case Projection::q_b: return "q_b_proj";
    case Projection::kv_a: return "kv_a_proj_with_mqa";
    case Projection::kv_b: return "kv_b_proj";
    case Projection::delta_qkv: return "in_proj_qkv";
    case Projection::delta_z: return "in_proj_z";
    case Projection::delta_b: return "in_proj_b";
    case Projection::delta_a: return "in_proj_a";
    case Projection::delta_out: return "out_proj";
    case Projection::mamba_in: return "in_proj";
    case Projection::mamba_out: return "out_proj";
    case Projection::shared_gate_up: return "input_linear";
    case Projection::shared_down: return "output_linear";
  }
  return "?";
}

namespace {

// A layer's attention projections and, without experts, its MLP's, in checkpoint order.
std::vector<Projection> attention_projections(const ModelConfig& config) {
  if (config.mla.defined() && config.mla.q_rank > 0)
    return {Projection::q_a, Projection::q_b, Projection::kv_a, Projection::kv_b, Projection::o};
  if (config.mla.defined()) return {Projection::q, Projection::kv_a, Projection::kv_b, Projection::o};
  if (config.fused_qkv) return {Projection::qkv, Projection::o};
  return {Projection::q, Projection::k, Projection::v, Projection::o};
}
constexpr Projection kDeltaNetProjections[] = {Projection::delta_qkv, Projection::delta_z, Projection::delta_b,
                                               Projection::delta_a, Projection::delta_out};
constexpr Projection kMambaProjections[] = {Projection::mamba_in, Projection::mamba_out};
bool is_delta_net(Projection p) {
  return std::find(std::begin(kDeltaNetProjections), std::end(kDeltaNetProjections), p) !=
         std::end(kDeltaNetProjections);
}
// The block of a layer a projection belongs to, as its module path names it.
const char* block_of(Projection p) {
  switch (p) {
    case Projection::gate:
    case Projection::up:
    case Projection::down:
    case Projection::gate_up: return "mlp";
    case Projection::shared_gate_up:
    case Projection::shared_down: return "shared_mlp";  // Granite-4.0's
    case Projection::mamba_in:
    case Projection::mamba_out: return "mamba";
    case Projection::delta_qkv:
    case Projection::delta_z:
    case Projection::delta_b:
    case Projection::delta_a:
    case Projection::delta_out: return "linear_attn";
    default: return "self_attn";
  }
}
// The projections of a layer's recurrent token mixer: a Mamba-2 layer's or a Gated DeltaNet's.
std::vector<Projection> recurrent_projections(const ModelConfig& config) {
  if (config.mamba.defined()) return {std::begin(kMambaProjections), std::end(kMambaProjections)};
  return {std::begin(kDeltaNetProjections), std::end(kDeltaNetProjections)};
}
// A layer's token mixer's projections: its attention's, or its recurrent mixer's.
std::vector<Projection> mixer_projections(const ModelConfig& config, int64_t layer) {
  if (config.is_linear_attention(layer)) return recurrent_projections(config);
  return attention_projections(config);
}
std::vector<Projection> mlp_projections(const ModelConfig& config) {
  if (config.architecture == Architecture::granitemoehybrid)  // its shared MLP
    return {Projection::shared_gate_up, Projection::shared_down};
  if (config.fused_gate_up) return {Projection::gate_up, Projection::down};
  if (config.activation == Activation::xielu) return {Projection::up, Projection::down};  // ungated
  return {Projection::gate, Projection::up, Projection::down};
}

}  // namespace

std::vector<Projection> model_projections(const ModelConfig& config) {
  std::vector<Projection> out;
  const auto& linear = config.linear_attention_layers;
  if (std::find(linear.begin(), linear.end(), false) != linear.end() || linear.empty())  // a layer with attention
    out = attention_projections(config);
  if (config.recurrent()) {
    const std::vector<Projection> recurrent = recurrent_projections(config);
    out.insert(out.end(), recurrent.begin(), recurrent.end());
  }
  if (config.moe.num_experts == 0) {
    const std::vector<Projection> mlp = mlp_projections(config);
    out.insert(out.end(), mlp.begin(), mlp.end());
  }
  return out;
}

bool layer_has_projection(const ModelConfig& config, int64_t layer, Projection p) {
  const std::vector<Projection> mixer = mixer_projections(config, layer);
  if (std::find(mixer.begin(), mixer.end(), p) != mixer.end()) return true;
  if (config.moe.in_layer(layer)) return false;
  const std::vector<Projection> mlp = mlp_projections(config);
  return std::find(mlp.begin(), mlp.end(), p) != mlp.end();
}

LayerNormNames layer_norm_names(const ModelConfig& c, int64_t layer) {
  const std::string prefix = fmt::format("model.layers.{}.", layer);
  LayerNormNames n;
  if (c.architecture == Architecture::apertus) {  // Llama's two, named for what they norm
    n.input = prefix + "attention_layernorm.weight";
    n.mlp_input = prefix + "feedforward_layernorm.weight";
    return n;
  }
  if (c.input_norms) n.input = prefix + "input_layernorm.weight";
  if (c.parallel_blocks) return n;  // Cohere: one norm, read by attention and MLP alike
  if (!c.output_norms) {
    n.mlp_input = prefix + "post_attention_layernorm.weight";
  } else if (c.architecture == Architecture::glm4) {
    n.attention_output = prefix + "post_self_attn_layernorm.weight";
    n.mlp_input = prefix + "post_attention_layernorm.weight";
    n.mlp_output = prefix + "post_mlp_layernorm.weight";
  } else {  // Gemma-2 and -3, OLMo-2 and -3
    n.attention_output = prefix + "post_attention_layernorm.weight";
    if (c.input_norms) n.mlp_input = prefix + "pre_feedforward_layernorm.weight";
    n.mlp_output = prefix + "post_feedforward_layernorm.weight";
  }
  return n;
}

std::vector<Projection> projections_named(const std::string& name) {
  std::vector<Projection> out;
  for (Projection p : kAllProjections) {
    const std::string full = projection_name(p);
    const bool suffixed = full.size() > 5 && full.compare(full.size() - 5, 5, "_proj") == 0;
    if (name == full || (suffixed && name == full.substr(0, full.size() - 5))) out.push_back(p);
  }
  return out;
}

std::string projection_path(int64_t layer, Projection p) {
  return fmt::format("model.layers.{}.{}.{}", layer, block_of(p), projection_name(p));
}

std::string router_weight_name(const ModelConfig& config, int64_t layer) {
  if (config.moe.transposed_experts) return fmt::format("model.layers.{}.mlp.router.weight", layer);
  if (config.moe.stacked_experts)  // GraniteMoE's and Granite-4.0's
    return fmt::format("model.layers.{}.block_sparse_moe.router.layer.weight", layer);
  return fmt::format("model.layers.{}.{}.gate.weight", layer,
                     config.architecture == Architecture::mixtral ? "block_sparse_moe" : "mlp");
}

std::string stacked_experts_name(int64_t layer, Projection p) {
  return fmt::format("model.layers.{}.block_sparse_moe.{}.weight", layer,
                     p == Projection::gate_up ? "input_linear" : "output_linear");
}

std::string expert_weight_name(const ModelConfig& config, int64_t layer, int64_t expert, Projection p) {
  if (config.architecture == Architecture::mixtral)  // MixtralBlockSparseTop2MLP: w2(act(w1 x) * w3 x)
    return fmt::format("model.layers.{}.block_sparse_moe.experts.{}.{}.weight", layer, expert,
                       p == Projection::gate ? "w1" : p == Projection::up ? "w3" : "w2");
  return fmt::format("model.layers.{}.mlp.experts.{}.{}.weight", layer, expert, projection_name(p));
}

std::string xielu_parameter_name(int64_t layer, const char* parameter) {
  return fmt::format("model.layers.{}.mlp.act_fn.{}", layer, parameter);
}

std::string router_bias_name(int64_t layer) { return fmt::format("model.layers.{}.mlp.router.bias", layer); }

std::string choice_bias_name(int64_t layer) {
  return fmt::format("model.layers.{}.mlp.gate.e_score_correction_bias", layer);
}

std::string transposed_experts_name(int64_t layer, Projection p, bool bias) {
  return fmt::format("model.layers.{}.mlp.experts.{}{}", layer, p == Projection::gate_up ? "gate_up_proj" : "down_proj",
                     bias ? "_bias" : "");
}

std::string shared_expert_weight_name(const ModelConfig& config, int64_t layer, Projection p) {
  return fmt::format("model.layers.{}.mlp.{}.{}.weight", layer,
                     config.moe.shared_expert_gated ? "shared_expert" : "shared_experts", projection_name(p));
}

std::string shared_expert_gate_name(int64_t layer) {
  return fmt::format("model.layers.{}.mlp.shared_expert_gate.weight", layer);
}

std::vector<int64_t> projection_shape(const ModelConfig& c, Projection p) {
  const int64_t d = c.hidden_size, f = c.intermediate_size;
  const int64_t q_width = c.num_heads * c.head_dim, kv_width = c.num_kv_heads * c.head_dim;
  switch (p) {
    case Projection::o:
      if (c.mla.defined()) return {d, c.num_heads * c.mla.v_dim};  // [D, H*v]
      return {d, q_width};                                          // [D, H*Dh]
    case Projection::q: return {c.gated_attention ? 2 * q_width : q_width, d};  // [H*Dh, D] (gated: [H*2*Dh, D])
    case Projection::k:
    case Projection::v: return {kv_width, d};  // [Hkv*Dh, D]
    case Projection::gate:
    case Projection::up: return {f, d};        // [F, D]
    case Projection::down: return {d, f};      // [D, F]
    case Projection::qkv: return {q_width + 2 * kv_width, d};  // [(H + 2 Hkv)*Dh, D]
    case Projection::gate_up: return {2 * f, d};               // [2F, D]
    // Latent attention: query heads of nope + rope = Dh, value heads of v.
    case Projection::q_a: return {c.mla.q_rank, d};                                       // [q_rank, D]
    case Projection::q_b: return {q_width, c.mla.q_rank};                                 // [H*Dh, q_rank]
    case Projection::kv_a: return {c.mla.kv_rank + c.mla.rope_dim, d};                    // [kv_rank + rope, D]
    case Projection::kv_b: return {c.num_heads * (c.mla.nope_dim + c.mla.v_dim), c.mla.kv_rank};
    // Gated DeltaNet: queries and keys of Hk*Dk and values of Hv*Dv side by side, the output gate z, beta's and the
    // decay's inputs (one per value head), and the output.
    case Projection::delta_qkv: return {c.delta_net.conv_width(), d};  // [2 Hk*Dk + Hv*Dv, D]
    case Projection::delta_z: return {c.delta_net.value_width(), d};   // [Hv*Dv, D]
    case Projection::delta_b:
    case Projection::delta_a: return {c.delta_net.value_heads, d};     // [Hv, D]
    case Projection::delta_out: return {d, c.delta_net.value_width()};  // [D, Hv*Dv]
    // Mamba-2: the gate z [I], x, B and C [I + 2 G N] and dt [H] side by side; the output.
    case Projection::mamba_in: return {c.mamba.in_width(), d};  // [2 I + 2 G N + H, D]
    case Projection::mamba_out: return {d, c.mamba.inner()};    // [D, I]
    // Granite-4.0's shared MLP (F: shared_intermediate_size).
    case Projection::shared_gate_up: return {2 * f, d};  // [2F, D]
    case Projection::shared_down: return {d, f};         // [D, F]
  }
  return {};
}

bool projection_has_bias(const ModelConfig& c, Projection p) {
  if (is_delta_net(p) || p == Projection::shared_gate_up || p == Projection::shared_down) return false;
  if (p == Projection::mamba_in || p == Projection::mamba_out) return c.mamba.proj_bias;
  if (c.mla.defined())  // DeepseekV2Attention: q_a_proj, kv_a_proj_with_mqa and o_proj with attention_bias
    return c.attention_bias && (p == Projection::q_a || p == Projection::kv_a || p == Projection::o);
  switch (p) {
    case Projection::q:
    case Projection::k:
    case Projection::v:
    case Projection::qkv: return c.attention_bias;
    case Projection::o: return c.output_bias;
    default: return c.mlp_bias;
  }
}

std::vector<WeightSpec> weight_specs(const ModelConfig& c) {
  const int64_t d = c.hidden_size;
  std::vector<WeightSpec> specs;
  specs.push_back({"model.embed_tokens.weight", {c.vocab_size, d}});
  for (int64_t layer = 0; layer < c.num_layers; ++layer) {
    const std::string prefix = fmt::format("model.layers.{}.", layer);
    const LayerNormNames norms = layer_norm_names(c, layer);
    auto add_norm = [&](const std::string& name) {
      if (!name.empty()) specs.push_back({name, {d}});
    };
    auto add_projection = [&](Projection p) {
      const std::string path = projection_path(layer, p);
      const auto shape = projection_shape(c, p);
      specs.push_back({path + ".weight", shape});
      if (projection_has_bias(c, p)) specs.push_back({path + ".bias", {shape[0]}});
    };
    add_norm(norms.input);
    for (Projection p : mixer_projections(c, layer)) add_projection(p);
    if (c.is_linear_attention(layer) && c.mamba.defined()) {
      // The convolution [C, 1, K] (and its bias [C]), A_log, D and dt_bias [H], the gated norm [I].
      const Mamba2Config& m = c.mamba;
      specs.push_back({prefix + "mamba.conv1d.weight", {m.conv_width(), 1, m.conv_kernel}});
      if (m.conv_bias) specs.push_back({prefix + "mamba.conv1d.bias", {m.conv_width()}});
      for (const char* name : {"A_log", "D", "dt_bias"}) specs.push_back({prefix + "mamba." + name, {m.heads}});
      specs.push_back({prefix + "mamba.norm.weight", {m.inner()}});
    } else if (c.is_linear_attention(layer)) {
      // The convolution [C, 1, K], the decay's A_log and dt_bias, the output norm.
      const DeltaNetConfig& n = c.delta_net;
      specs.push_back({prefix + "linear_attn.conv1d.weight", {n.conv_width(), 1, n.conv_kernel}});
      specs.push_back({prefix + "linear_attn.A_log", {n.value_heads}});
      specs.push_back({prefix + "linear_attn.dt_bias", {n.value_heads}});
      specs.push_back({prefix + "linear_attn.norm.weight", {n.value_head_dim}});
    }
    if (c.attention_sinks) specs.push_back({prefix + "self_attn.sinks", {c.num_heads}});
    if (c.mla.defined()) {  // the bottlenecks' norms
      if (c.mla.q_rank > 0) specs.push_back({prefix + "self_attn.q_a_layernorm.weight", {c.mla.q_rank}});
      specs.push_back({prefix + "self_attn.kv_a_layernorm.weight", {c.mla.kv_rank}});
    }
    if (c.qk_norm && !c.is_linear_attention(layer)) {  // per head (Cohere: one each), or (OLMo-2) over all heads
      auto shape = [&](int64_t heads) -> std::vector<int64_t> {
        if (c.qk_norm_whole) return {heads * c.head_dim};
        if (c.layer_norms) return {heads, c.head_dim};
        return {c.head_dim};
      };
      specs.push_back({prefix + "self_attn.q_norm.weight", shape(c.num_heads)});
      specs.push_back({prefix + "self_attn.k_norm.weight", shape(c.num_kv_heads)});
    }
    add_norm(norms.attention_output);
    add_norm(norms.mlp_input);
    if (c.moe.in_layer(layer)) {
      const MoeConfig& m = c.moe;
      specs.push_back({router_weight_name(c, layer), {m.num_experts, d}});  // [E, D]
      if (m.choice_bias) specs.push_back({choice_bias_name(layer), {m.num_experts}});
      if (m.transposed_experts) specs.push_back({router_bias_name(layer), {m.num_experts}});
      // An MLP of width `width` without biases: gate and up [width, D], down [D, width].
      auto add_mlp = [&](const std::function<std::string(Projection)>& name, int64_t width) {
        for (Projection p : {Projection::gate, Projection::up}) specs.push_back({name(p), {width, d}});
        specs.push_back({name(Projection::down), {d, width}});
      };
      if (m.transposed_experts && m.mxfp4_experts) {  // blocks and scales of [E, 2 Fe, D] and [E, D, Fe]
        for (const auto& [p, out, in] : {std::tuple{Projection::gate_up, 2 * m.expert_size, d},
                                         std::tuple{Projection::down, d, m.expert_size}}) {
          const std::string name = transposed_experts_name(layer, p, false);
          specs.push_back({name + "_blocks", {m.num_experts, out, in / 32, 16}, /*packed=*/true});
          specs.push_back({name + "_scales", {m.num_experts, out, in / 32}, /*packed=*/true});
          specs.push_back({transposed_experts_name(layer, p, true), {m.num_experts, out}});  // the bias
        }
      } else if (m.transposed_experts) {  // [E, D, 2 Fe] and [E, Fe, D], with biases
        specs.push_back({transposed_experts_name(layer, Projection::gate_up, false),
                         {m.num_experts, d, 2 * m.expert_size}});
        specs.push_back(
            {transposed_experts_name(layer, Projection::gate_up, true), {m.num_experts, 2 * m.expert_size}});
        specs.push_back({transposed_experts_name(layer, Projection::down, false), {m.num_experts, m.expert_size, d}});
        specs.push_back({transposed_experts_name(layer, Projection::down, true), {m.num_experts, d}});
      } else if (m.stacked_experts) {  // [E, 2 Fe, D] and [E, D, Fe]
        specs.push_back({stacked_experts_name(layer, Projection::gate_up), {m.num_experts, 2 * m.expert_size, d}});
        specs.push_back({stacked_experts_name(layer, Projection::down), {m.num_experts, d, m.expert_size}});
      } else {
        for (int64_t e = 0; e < m.num_experts; ++e)
          add_mlp([&](Projection p) { return expert_weight_name(c, layer, e, p); }, m.expert_size);
      }
      if (m.shared_expert_size > 0 && c.architecture == Architecture::granitemoehybrid) {  // gate and up as one
        const std::string gate_up = projection_path(layer, Projection::shared_gate_up) + ".weight";
        specs.push_back({gate_up, {2 * m.shared_expert_size, d}});
        specs.push_back({projection_path(layer, Projection::shared_down) + ".weight", {d, m.shared_expert_size}});
      } else if (m.shared_expert_size > 0) {
        add_mlp([&](Projection p) { return shared_expert_weight_name(c, layer, p); }, m.shared_expert_size);
        if (m.shared_expert_gated) specs.push_back({shared_expert_gate_name(layer), {1, d}});
      }
    } else {
      for (Projection p : mlp_projections(c)) add_projection(p);
      if (c.activation == Activation::xielu) {  // alpha_p and alpha_n [1], beta and eps scalars
        for (const char* parameter : {"alpha_p", "alpha_n"})
          specs.push_back({xielu_parameter_name(layer, parameter), {1}});
        for (const char* parameter : {"beta", "eps"}) specs.push_back({xielu_parameter_name(layer, parameter), {}});
      }
    }
    add_norm(norms.mlp_output);
  }
  specs.push_back({"model.norm.weight", {d}});
  if (!c.tie_word_embeddings) specs.push_back({"lm_head.weight", {c.vocab_size, d}});
  return specs;
}

void check_weight_shape(const WeightSpec& spec, const std::vector<int64_t>& actual, const ModelConfig& c) {
  if (actual == spec.shape) return;
  throw InputError(fmt::format(
      "tensor '{}' has shape [{}] but config.json implies [{}]; is this checkpoint for a different model size? "
      "config.json says hidden_size={}, intermediate_size={}, num_attention_heads={}, num_key_value_heads={}, "
      "head_dim={}, vocab_size={}",
      spec.name, fmt::join(actual, ", "), fmt::join(spec.shape, ", "), c.hidden_size, c.intermediate_size,
      c.num_heads, c.num_kv_heads, c.head_dim, c.vocab_size));
}

}  // namespace abmll::model
