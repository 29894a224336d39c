// Work that runs out of memory, retried with more layers recomputed in backward (model.recompute_on_oom): a
// meta-training step, a held-out task's adaptation. Recomputation changes memory and time, never values, so the
// retried work gives what its first try would have.
#pragma once

#include <cstdint>
#include <exception>
#include <string>

#include "model/recompute_policy.h"
#include "util/cached_memory.h"
#include "util/log.h"
#include "util/torch_errors.h"

namespace abmll::meta {

// For an out-of-memory message: how to recompute more than `policy` does ("... or "), or "" when nothing is left.
inline std::string more_recomputation_hint(const model::ForwardOptions& policy, int64_t layers) {
  if (!model::with_more_recomputation(policy, layers)) return "";
  return "recompute more layers in backward (model.gradient_checkpointing: true, model.checkpointed_layers larger "
         "or -1 for all), or ";
}

// Runs `attempt()`, which reads its recomputation policy from `policy`. When it runs out of memory and `enabled`,
// `policy` becomes with_more_recomputation(policy, layers) (half as many layers keeping their activations), the
// device's cached memory is released, the change is logged, and `attempt` runs again; until it succeeds or no layer
// is left to recompute, when the last out-of-memory error propagates. `attempt` must change nothing outside itself
// when it fails. `what` names the work in the log ("step 3").
template <class Attempt>
decltype(auto) retry_with_more_recomputation(model::ForwardOptions& policy, int64_t layers, const std::string& device,
                                             bool enabled, const std::string& what, Attempt&& attempt) {
  for (;;) {
    try {
      return attempt();
    } catch (const std::exception& e) {
      if (!enabled || !is_out_of_memory(e)) throw;
      const auto more = model::with_more_recomputation(policy, layers);
      if (!more) throw;
      log::warn("{} ran out of memory on {} with {}; retrying it with {} keeping them "
                "(model.gradient_checkpointing: true, model.checkpointed_layers: {}): the same results, more "
                "recomputation; set these to start there",
                what, device, model::describe_policy(policy, layers), model::layers_keeping_activations(*more, layers),
                more->checkpointed_layers);
      policy = *more;
    }
    release_cached_memory(device);  // after the handler: the failed try's tensors are gone
  }
}

}  // namespace abmll::meta
