#include "model/recompute_policy.h"

#include <fmt/format.h>

#include <algorithm>

namespace abmll::model {

int64_t layers_keeping_activations(const ForwardOptions& options, int64_t layers) {
  if (!options.checkpoint_layers || options.double_backward) return layers;
  if (options.checkpointed_layers < 0) return 0;
  return layers - std::min(options.checkpointed_layers, layers);
}

std::string describe_policy(const ForwardOptions& options, int64_t layers) {
  const int64_t kept = layers_keeping_activations(options, layers);
  if (kept == 0) return "every layer recomputed in backward";
  return fmt::format("{} of {} layers keeping their activations", kept, layers);
}

std::optional<ForwardOptions> with_more_recomputation(const ForwardOptions& options, int64_t layers) {
  const int64_t kept = layers_keeping_activations(options, layers);
  if (options.double_backward || kept == 0) return std::nullopt;
  ForwardOptions more = options;
  more.checkpoint_layers = true;
  more.checkpointed_layers = kept / 2 == 0 ? -1 : layers - kept / 2;
  return more;
}

}  // namespace abmll::model
