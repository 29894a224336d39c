// One fuzzing input, run through the reader of PEFT's adapter_config.json (src/model/peft_adapter_config). Shared by
// the libFuzzer target (adapter_config_fuzz.cpp) and the regression test over tests/data/adapter_config_corpus.
//
// The input is the file's text. It is refused with InputError, or it reads into settings that LoRA can use (a
// positive rank, targets, a dropout in [0, 1), a finite scale) and that survive a round trip: the adapter_config.json
// abmll writes for them reads back as the same settings. abmll::InputError is the only acceptable failure; anything
// else (another exception, a broken invariant: abort) is a finding.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "model/peft_adapter_config.h"
#include "util/error.h"

namespace abmll::fuzz {

[[noreturn]] inline void adapter_config_finding(const char* what) {
  std::fprintf(stderr, "adapter config fuzz finding: %s\n", what);
  std::abort();
}

inline void run_adapter_config_input(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  model::PeftAdapterConfig parsed;
  try {
    parsed = model::parse_peft_adapter_config(text, "fuzz/adapter_config.json");
  } catch (const InputError&) {
    return;
  }
  model::LoraSettings s = parsed.settings;
  if (parsed.targets_from_tensors) {
    // The adapter's tensors will say which projections; any would do for the checks below.
    if (!s.targets.empty()) adapter_config_finding("targets to be read from the tensors came with targets");
    s.targets = {model::Projection::q};
  } else if (!parsed.target_pattern.empty()) {
    adapter_config_finding("a target_modules pattern whose targets are not read from the tensors");
  }
  if (s.rank <= 0 || s.targets.empty() || !(s.dropout >= 0 && s.dropout < 1))
    adapter_config_finding("settings LoRA cannot use were accepted");
  if (!std::isfinite(s.scale())) adapter_config_finding("a non-finite LoRA scale was accepted");
  try {
    s.validate();
  } catch (const InputError&) {
    adapter_config_finding("accepted settings fail LoraSettings::validate");
  }
  for (const bool multimodal : {false, true}) {
    model::PeftAdapterConfig back;
    try {
      back = model::parse_peft_adapter_config(model::peft_adapter_config_json(s, "base", multimodal).dump(2),
                                              "fuzz/written.json");
    } catch (const InputError&) {
      adapter_config_finding("the adapter_config.json written for accepted settings is refused");
    }
    const model::LoraSettings& b = back.settings;
    if (b.rank != s.rank || b.alpha != s.alpha || b.rslora != s.rslora || b.dropout != s.dropout)
      adapter_config_finding("settings changed in a write-read round trip");
    if (multimodal ? back.target_pattern != model::language_model_targets(s.targets) || !b.targets.empty() ||
                         !back.targets_from_tensors
                   : !back.target_pattern.empty() || b.targets != s.targets || back.targets_from_tensors)
      adapter_config_finding("targets changed in a write-read round trip");
  }
}

}  // namespace abmll::fuzz
