#include "cli/distributed.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <torch/cuda.h>

#include <chrono>

#include "util/error.h"
#include "util/log.h"

namespace abmll::cli {

void add_dist_backend_flag(CLI::App& command, std::string& backend) {
  command
      .add_option("--dist-backend", backend,
                  "Distributed runs (RANK/WORLD_SIZE or SLURM variables set): c10d backend, auto (nccl on GPUs, gloo "
                  "on CPUs), gloo or nccl")
      ->type_name("NAME");
}

void tag_rank_logs(const dist::LaunchEnv& launch) {
  if (!launch.distributed()) return;
  log::set_tag(fmt::format("[rank {}] ", launch.rank));
  if (launch.rank != 0 && !log::level_from_environment()) log::set_level(log::Level::warn);
}

std::unique_ptr<dist::ProcessGroup> join_process_group(const dist::LaunchEnv& launch, const std::string& backend_flag,
                                                      ExperimentConfig& config, DeviceChoice& device) {
  if (backend_flag != "auto") dist::parse_backend(backend_flag, "--dist-backend");  // refused even when unused
  if (!launch.distributed()) return nullptr;
  const bool on_gpu = device.name.rfind("cuda", 0) == 0;
  if (on_gpu && config.run.device.find(':') == std::string::npos) {
    // srun --gpus-per-task=1 sets CUDA_VISIBLE_DEVICES per task: each process then sees its GPU alone.
    const int visible = static_cast<int>(torch::cuda::device_count());
    config.run.device = fmt::format("cuda:{}", visible == 1 ? 0 : launch.local_rank);
    device = resolve_device(config.run.device);
  }
  dist::GroupOptions options;
  options.backend = backend_flag == "auto" ? (on_gpu ? dist::BackendKind::nccl : dist::BackendKind::gloo)
                                           : dist::parse_backend(backend_flag, "--dist-backend");
  if (options.backend == dist::BackendKind::nccl && !on_gpu)
    throw InputError(fmt::format("--dist-backend nccl needs GPUs, but this run is on {} (run.device: {}); use "
                                 "--dist-backend gloo on CPUs",
                                 device.name, config.run.device));
  options.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(config.run.dist_timeout_s * 1000));
  options.cuda_device = on_gpu ? std::stoi(device.name.substr(5)) : -1;  // "cuda:N"
  return dist::ProcessGroup::connect(launch, options);
}

}  // namespace abmll::cli
