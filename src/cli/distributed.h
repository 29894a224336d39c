// What the data-parallel commands (meta-train, evaluate) share: joining the ranks of a distributed launch
// (dist/launch_env.h: torchrun's or SLURM's variables), the --dist-backend flag, and per-rank logging.
#pragma once

#include <memory>
#include <string>

#include "config/experiment_config.h"
#include "dist/launch_env.h"
#include "dist/process_group.h"
#include "util/device.h"

namespace CLI {
class App;
}

namespace abmll::cli {

// Adds --dist-backend (auto, gloo or nccl) to `command`.
void add_dist_backend_flag(CLI::App& command, std::string& backend);

// Distributed launches: log lines tagged with the rank, and ranks other than 0 quiet below warnings (unless
// ABMLL_LOG_LEVEL says otherwise). Nothing for a single process.
void tag_rank_logs(const dist::LaunchEnv& launch);

// The process group of a distributed launch, or null for a single process. On GPUs each process takes one: the
// local rank's, or the only visible one when the launcher binds a GPU to each task; `config.run.device` and
// `device` are updated to it unless the config names a device index. The backend is `backend_flag`'s, auto
// meaning NCCL on GPUs and Gloo on CPUs; InputError for an unknown name or NCCL on CPUs.
std::unique_ptr<dist::ProcessGroup> join_process_group(const dist::LaunchEnv& launch, const std::string& backend_flag,
                                                      ExperimentConfig& config, DeviceChoice& device);

}  // namespace abmll::cli
