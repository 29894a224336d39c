// Training checkpoints: one safetensors file per save (checkpoints/step-N.safetensors), written atomically, holding
// named tensors (theta, optimiser state, RNG state...) and string metadata, with a format tag and version so that
// an old or foreign file is refused rather than misread. Resuming picks the newest checkpoint that validates;
// a corrupt or partial one is skipped with a warning, never loaded.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "io/safetensors_writer.h"

namespace abmll::meta {

inline constexpr int kCheckpointFormatVersion = 1;

struct Checkpoint {
  std::int64_t step = 0;                        // outer steps completed when saved
  io::NamedTensors tensors;                     // in a stable order
  std::map<std::string, std::string> metadata;  // caller's facts (the loader adds nothing of its own here)

  // The tensor named `name`; throws abmll::InputError naming the checkpoint when it is missing.
  const at::Tensor& tensor(const std::string& name) const;
  // The metadata entry `key` as a count (a non-negative integer, digits only); throws abmll::InputError naming the
  // checkpoint when it is missing or anything else.
  std::int64_t count(const std::string& key) const;
  std::filesystem::path source;                 // the file it was loaded from (empty when built in memory)
};

// The file of step `step` in `run_dir`: run_dir/checkpoints/step-<step>.safetensors.
std::filesystem::path checkpoint_path(const std::filesystem::path& run_dir, std::int64_t step);

// Writes `checkpoint` atomically to `path`.
void save_checkpoint(const std::filesystem::path& path, const Checkpoint& checkpoint);

// Reads and validates a checkpoint: a well-formed safetensors file with our format tag, a version we read and a
// step. Throws abmll::InputError naming the file and the problem.
Checkpoint load_checkpoint(const std::filesystem::path& path);

// The newest checkpoint of `run_dir` that loads, or nullopt when there is none. Newer files that fail to load
// are reported with a warning and skipped.
std::optional<Checkpoint> load_latest_checkpoint(const std::filesystem::path& run_dir);

// The checkpoint file a command's --checkpoint names: a file as given; for a meta-training run's folder, its newest
// checkpoint that loads (checkpoints/step-N.safetensors, as --resume picks it; checkpoints/best.safetensors is used
// only when named). Throws abmll::InputError naming the folder when it holds no checkpoint that loads.
std::filesystem::path resolve_checkpoint(const std::filesystem::path& given);

}  // namespace abmll::meta
