// Which layers recompute their activations in backward (ForwardOptions' gradient checkpointing policy), and the
// policy a meta-training step is retried under after running out of memory. The policy changes memory and time,
// never values: a recomputed layer computes what the kept one held.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "model/decoder.h"

namespace abmll::model {

// How many of a decoder's `layers` keep their activations for backward under `options` (the rest are recomputed).
int64_t layers_keeping_activations(const ForwardOptions& options, int64_t layers);

// "every layer recomputed in backward" or "3 of 4 layers keeping their activations", for messages.
std::string describe_policy(const ForwardOptions& options, int64_t layers);

// `options` with half as many layers keeping their activations (rounded down; the first layers are the recomputed
// ones), or nothing when no layer keeps them, or when recomputation does not apply (double_backward).
std::optional<ForwardOptions> with_more_recomputation(const ForwardOptions& options, int64_t layers);

}  // namespace abmll::model
