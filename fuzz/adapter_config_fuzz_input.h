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
  model::LoraSettings s;
  try {
    s = model::parse_peft_adapter_config(text, "fuzz/adapter_config.json");
  } catch (const InputError&) {
    return;
  }
  if (s.rank <= 0 || s.targets.empty() || !(s.dropout >= 0 && s.dropout < 1))
    adapter_config_finding("settings LoRA cannot use were accepted");
  if (!std::isfinite(s.scale())) adapter_config_finding("a non-finite LoRA scale was accepted");
  try {
    s.validate();
  } catch (const InputError&) {
    adapter_config_finding("accepted settings fail LoraSettings::validate");
  }
  model::LoraSettings back;
  try {
    back = model::parse_peft_adapter_config(model::peft_adapter_config_json(s, "base").dump(2), "fuzz/written.json");
  } catch (const InputError&) {
    adapter_config_finding("the adapter_config.json written for accepted settings is refused");
  }
  if (back.rank != s.rank || back.alpha != s.alpha || back.rslora != s.rslora || back.dropout != s.dropout ||
      back.targets != s.targets)
    adapter_config_finding("settings changed in a write-read round trip");
}

}  // namespace abmll::fuzz
