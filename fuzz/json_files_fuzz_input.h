// One fuzzing input, run through the readers of a model's config.json (src/model/model_config) and of predictions
// files with what `abmll calibrate` computes from them (src/eval). Shared by the libFuzzer target
// (json_files_fuzz.cpp) and the regression test over tests/data/json_files_corpus.
//
// The first byte says what the rest is:
//   even  a config.json: it parses into a decoder shape with positive sizes, query heads a multiple of the
//         key/value heads, a positive finite attention scale, finite soft caps, RoPEs the tables can be built from,
//         experts it can route to (k of E), a finite query scale, FP8 blocks it can tile, or is refused with
//         InputError;
//   odd   a predictions file (JSON Lines), written under `scratch`: it reads or is refused with InputError; if it
//         reads, its calibration metrics (15 bins) are probabilities where they must be (accuracy, ECE, MCE, AUROC
//         where defined, Brier within [0, 2]), never NaN (but AUROC's), when every line gave logits a temperature
//         is fitted within its bounds, AURC is within [0, 1] and E-AURC within [0, AURC], and paired with itself
//         (report --baseline) it is refused or differs by 0;
//   odd with bit 2 set: an evaluation report as `abmll report` reads it (eval/results_table.h): it reads or is
//         refused with InputError; if it reads, its bins are calibration bins, and two seeds of it pool into a
//         reliability figure with accuracies within [0, 1], drawn as SVG.
// abmll::InputError is the only acceptable failure; anything else (another exception, a broken invariant: abort)
// is a finding.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <vector>

#include "eval/calibration.h"
#include "eval/paired_comparison.h"
#include "eval/predictions_file.h"
#include "eval/reliability_figures.h"
#include "eval/results_table.h"
#include "eval/selective_prediction.h"
#include "eval/temperature.h"
#include "model/model_config.h"
#include "util/error.h"

namespace abmll::fuzz {

[[noreturn]] inline void json_finding(const char* what) {
  std::fprintf(stderr, "json files fuzz finding: %s\n", what);
  std::abort();
}

inline void run_model_config(std::string_view text) {
  nlohmann::json j;
  try {
    j = model::parse_config_json(text, "fuzz/config.json");  // (Python's Infinity and NaN too)
  } catch (const InputError&) {
    return;
  }
  try {
    const model::ModelConfig c = model::parse_model_config(j, "fuzz/config.json");
    if (c.hidden_size <= 0 || c.intermediate_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 ||
        c.num_kv_heads <= 0 || c.head_dim <= 0 || c.vocab_size <= 0)
      json_finding("a config.json with a non-positive size was accepted");
    if (c.num_heads % c.num_kv_heads != 0) json_finding("query heads not a multiple of key/value heads");
    if (!(c.rms_norm_eps > 0) || !std::isfinite(c.rope.theta) || !(c.rope.theta > 0))
      json_finding("a non-positive or non-finite rms_norm_eps or rope theta was accepted");
    if (!(c.attention_scale > 0) || !std::isfinite(c.attention_scale))
      json_finding("a non-positive or non-finite attention scale was accepted");
    if (!(c.attention_softcap >= 0) || !std::isfinite(c.attention_softcap) || !(c.logit_softcap >= 0) ||
        !std::isfinite(c.logit_softcap) || c.sliding_window < 0)
      json_finding("a negative or non-finite soft cap, or a negative sliding window, was accepted");
    // Every RoPE the decoder will build its tables from (YaRN's takes logarithms of theta and of the original
    // length, and divides by its ramp's width).
    for (const model::RopeConfig* r : {&c.rope, c.local_rope ? &*c.local_rope : nullptr}) {
      if (r == nullptr) continue;
      if (!(r->theta > 1) || !std::isfinite(r->theta) || !(r->factor >= 1) || !std::isfinite(r->factor) ||
          !(r->attention_factor > 0) || !std::isfinite(r->attention_factor))
        json_finding("a RoPE with theta <= 1, a factor below 1 or a non-positive attention factor was accepted");
      if (r->type == "yarn" && (r->original_max_position_embeddings <= 0 || !(r->beta_fast > 0) ||
                                !(r->beta_slow > 0) || !std::isfinite(r->beta_fast) || !std::isfinite(r->beta_slow)))
        json_finding("a YaRN RoPE without a positive original length and positive betas was accepted");
      if (r->type == "longrope" &&
          (r->original_max_position_embeddings <= 0 ||
           static_cast<int64_t>(r->short_factor.size()) * 2 != c.rotary_dim ||
           static_cast<int64_t>(r->long_factor.size()) * 2 != c.rotary_dim))
        json_finding("a LongRoPE without one factor per rotated pair, or without an original length, was accepted");
    }
    if (!(c.embedding_multiplier > 0) || !std::isfinite(c.embedding_multiplier) || !(c.residual_multiplier > 0) ||
        !std::isfinite(c.residual_multiplier) || !(c.logits_scaling > 0) || !std::isfinite(c.logits_scaling) ||
        !(c.logit_scale > 0) || !std::isfinite(c.logit_scale))
      json_finding("a non-positive or non-finite Granite multiplier or Cohere logit scale was accepted");
    // Per-layer flags (which layers slide, which attend without RoPE): one per layer, or none.
    const auto layers = static_cast<std::size_t>(c.num_layers);
    if ((!c.sliding_layers.empty() && c.sliding_layers.size() != layers) ||
        (!c.nope_layers.empty() && c.nope_layers.size() != layers))
      json_finding("sliding or RoPE-less layers without one flag per layer were accepted");
    if (c.rotary_dim <= 0 || c.rotary_dim > c.head_dim || c.rotary_dim % 2 != 0)
      json_finding("a rotated width that is not an even number from 2 to head_dim was accepted");
    // Experts: k of E (E, k and the widths positive), a flag per layer; a clip that is positive or none.
    const model::MoeConfig& m = c.moe;
    if (m.num_experts > 0 &&
        (m.experts_per_token <= 0 || m.experts_per_token > m.num_experts || m.expert_size <= 0 ||
         m.shared_expert_size < 0 || static_cast<int64_t>(m.layers.size()) != c.num_layers))
      json_finding("experts with k outside 1..E, a non-positive width or no flag per layer were accepted");
    if (m.num_experts < 0 || !(c.clip_qkv >= 0) || !std::isfinite(c.clip_qkv))
      json_finding("a negative expert count or a negative or non-finite clip_qkv was accepted");
    // DeepSeek's routing: groups dividing E (V3's of two experts at least), enough experts in the kept groups, a
    // positive finite scaling.
    if (m.num_experts > 0 &&
        (m.groups <= 0 || m.num_experts % m.groups != 0 || m.groups_per_token <= 0 || m.groups_per_token > m.groups ||
         m.experts_per_token > m.groups_per_token * (m.num_experts / m.groups) ||
         (m.groups > 1 && m.scoring == model::RouterScoring::sigmoid && m.num_experts / m.groups < 2) ||
         !(m.routed_scaling_factor > 0) || !std::isfinite(m.routed_scaling_factor)))
      json_finding("expert groups that do not divide E or cannot supply k experts, or a bad scaling, were accepted");
    // gpt-oss's clamped SwiGLU: a positive finite limit and slope, or none.
    if (!(m.swiglu_limit >= 0) || !std::isfinite(m.swiglu_limit) || !(m.swiglu_alpha > 0) ||
        !std::isfinite(m.swiglu_alpha))
      json_finding("a negative or non-finite SwiGLU limit or slope was accepted");
    // Latent attention: positive widths, heads of nope + rope with rope (even) rotated, every head its keys.
    const model::LatentAttentionConfig& a = c.mla;
    if (a.defined() && (a.q_rank < 0 || a.nope_dim <= 0 || a.rope_dim <= 0 || a.rope_dim % 2 != 0 || a.v_dim <= 0 ||
                        c.head_dim != a.nope_dim + a.rope_dim || c.rotary_dim != a.rope_dim ||
                        c.num_kv_heads != c.num_heads))
      json_finding("latent attention with a non-positive width or inconsistent head sizes was accepted");
    // Ministral-3's query scale: a finite slope over a positive length; FP8 blocks positive (at most 2^32) or none.
    if (c.scales_queries() && (!std::isfinite(c.query_scale_beta) || c.query_scale_length <= 0))
      json_finding("a query scale with a non-finite slope or a non-positive length was accepted");
    // Recurrent layers: one flag per layer; Qwen3.5's DeltaNet: positive sizes (at most 2^32), key heads dividing
    // value heads; Granite-4.0's Mamba-2: positive sizes, heads of the inner width, groups dividing heads, a clamp
    // range min <= max.
    const model::DeltaNetConfig& n = c.delta_net;
    const model::Mamba2Config& s2 = c.mamba;
    const int64_t largest = int64_t{1} << 32;
    if (c.recurrent() && static_cast<int64_t>(c.linear_attention_layers.size()) != c.num_layers)
      json_finding("recurrent layers without one flag per layer were accepted");
    if (c.recurrent() && !s2.defined() &&
        (n.key_heads <= 0 || n.value_heads <= 0 || n.key_head_dim <= 0 || n.value_head_dim <= 0 ||
         n.conv_kernel <= 0 || n.key_heads > largest || n.value_heads > largest || n.key_head_dim > largest ||
         n.value_head_dim > largest || n.conv_kernel > largest || n.value_heads % n.key_heads != 0))
      json_finding("DeltaNet layers with a non-positive size or unshared value heads were accepted");
    if (s2.defined() &&
        (s2.heads > largest || s2.head_dim <= 0 || s2.groups <= 0 || s2.heads % s2.groups != 0 || s2.state <= 0 ||
         s2.state > largest || s2.conv_kernel <= 0 || s2.conv_kernel > largest || s2.chunk <= 0 ||
         s2.chunk > largest || s2.inner() % c.hidden_size != 0 || std::isnan(s2.dt_min) || std::isnan(s2.dt_max) ||
         s2.dt_min > s2.dt_max))
      json_finding("Mamba-2 layers with a non-positive size, ungrouped heads or a bad step range were accepted");
    const bool per_tensor = c.fp8_block[0] == 0 && c.fp8_block[1] == 0;
    if (c.fp8_weights && !per_tensor &&
        (c.fp8_block[0] <= 0 || c.fp8_block[1] <= 0 || c.fp8_block[0] > (int64_t{1} << 32) ||
         c.fp8_block[1] > (int64_t{1} << 32)))
      json_finding("FP8 blocks of a non-positive or overflowing size were accepted");
  } catch (const InputError&) {
  }
}

// The file paired with itself, as `abmll report --baseline` pairs two runs' files: refused (no task, a query twice)
// or every difference 0 with the interval [0, 0] (NaN where an NLL is infinite).
inline void run_self_pairing(const std::vector<eval::PredictionRecord>& records) {
  eval::PairedSeed seed{0, "fuzz/method.jsonl", "fuzz/baseline.jsonl", records, records};
  eval::PairedDifference d;
  try {
    d = eval::paired_difference({seed}, {15, 20, 0});
  } catch (const InputError&) {
    return;
  }
  for (const eval::Difference* x : {&d.accuracy, &d.ece, &d.nll, &d.brier})
    if (!std::isnan(x->value) && (x->value != 0 || x->lo != 0 || x->hi != 0))
      json_finding("a predictions file paired with itself differs from itself");
}

inline void run_predictions(std::string_view text, const std::filesystem::path& scratch) {
  std::filesystem::create_directories(scratch);
  const std::filesystem::path file = scratch / "predictions.jsonl";
  std::ofstream(file, std::ios::binary).write(text.data(), static_cast<std::streamsize>(text.size()));
  std::vector<eval::PredictionRecord> records;
  try {
    records = eval::read_predictions(file);
  } catch (const InputError&) {
    return;
  }
  if (records.empty()) return;
  run_self_pairing(records);
  const eval::CalibrationMetrics m = eval::calibration_metrics(eval::as_categorical(records), 15);
  auto within = [](double v, double lo, double hi) { return v >= lo && v <= hi; };
  if (!within(m.accuracy, 0, 1) || !within(m.ece, 0, 1) || !within(m.mce, 0, 1) || !within(m.brier, 0, 2) ||
      std::isnan(m.nll) || m.nll < 0)
    json_finding("calibration metrics out of their ranges");
  const double auroc = eval::confidence_auroc(eval::as_categorical(records));
  if (!std::isnan(auroc) && !within(auroc, 0, 1)) json_finding("an AUROC outside [0, 1]");
  const eval::SelectiveRisk risk = eval::selective_risk(eval::as_categorical(records));
  if (!within(risk.aurc, 0, 1) || !within(risk.e_aurc, -1e-12, risk.aurc + 1e-12))
    json_finding("an AURC outside [0, 1], or an E-AURC outside [0, AURC]");
  std::vector<std::vector<double>> logits;
  std::vector<std::int64_t> labels;
  for (const auto& r : records) {
    if (!r.logits) return;
    logits.push_back(*r.logits);
    labels.push_back(r.label);
  }
  const eval::TemperatureFit fit = eval::fit_temperature(logits, labels);
  if (!within(fit.temperature, 1e-4, 1e4) || std::isnan(fit.nll_after) || std::isnan(fit.nll_before))
    json_finding("a fitted temperature out of its bounds, or a NaN NLL");
}

inline void run_evaluation_report(std::string_view text, const std::filesystem::path& scratch) {
  std::filesystem::create_directories(scratch);
  const std::filesystem::path file = scratch / "report.json";
  std::ofstream(file, std::ios::binary).write(text.data(), static_cast<std::streamsize>(text.size()));
  eval::RunResult run;
  try {
    run = eval::read_run_result(file);
  } catch (const InputError&) {
    return;
  }
  for (const eval::CalibrationBin& bin : run.bins)
    if (bin.count < 0 || !(bin.accuracy >= 0 && bin.accuracy <= 1) || !(bin.lo <= bin.hi))
      json_finding("a report's bins were accepted with counts, accuracies or edges that bins cannot have");
  eval::RunResult other = run;
  other.seed = run.seed + 1;
  try {
    for (const eval::ReliabilityFigure& figure : eval::reliability_figures({run, other})) {
      for (const eval::MethodCurve& curve : figure.curves)
        if (!(curve.pooled.accuracy >= 0 && curve.pooled.accuracy <= 1 + 1e-9) || std::isnan(curve.pooled.ece))
          json_finding("a pooled curve with an accuracy outside [0, 1] or a NaN ECE");
      if (eval::figure_svg(figure).find("</svg>") == std::string::npos) json_finding("an unfinished SVG");
    }
  } catch (const InputError&) {
  }
}

inline void run_json_files_input(const std::uint8_t* data, std::size_t size, const std::filesystem::path& scratch) {
  if (size == 0) return;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) run_model_config(rest);
  else if (data[0] & 4) run_evaluation_report(rest, scratch);
  else run_predictions(rest, scratch);
}

}  // namespace abmll::fuzz
