#include "util/device.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <fmt/format.h>
#include <torch/cuda.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "util/error.h"

#ifdef ABMLL_HAVE_CUDA
#include "device_query.h"
#endif

namespace abmll {
namespace {

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown CPU";
}

// Why no GPU can be used, in words; empty when one can.
std::string why_no_gpu() {
  // LibTorch's CUDA hooks exist when it was built with CUDA; hasCUDA() is false also when no driver or device is.
  if (!at::detail::getCUDAHooks().hasCUDART()) return "this build's LibTorch has no CUDA support";
  if (!at::hasCUDA() || torch::cuda::device_count() == 0) {
    std::string reason = "no CUDA device is visible";
#ifdef ABMLL_HAVE_CUDA
    std::string runtime;
    cuda::query_devices(&runtime);
    if (!runtime.empty()) reason += " (CUDA runtime: " + runtime + ")";
#endif
    return reason;
  }
  return "";
}

std::string gpu_description(int index) {
#ifdef ABMLL_HAVE_CUDA
  for (const auto& d : cuda::query_devices())
    if (d.index == index)
      return fmt::format("{} ({:.1f} GiB, sm_{}{})", d.name, d.total_memory_bytes / double(1ull << 30),
                         d.compute_major, d.compute_minor);
#endif
  return fmt::format("CUDA device {}", index);
}

}  // namespace

DeviceChoice resolve_device(const std::string& requested) {
  if (requested == "cpu" || (requested == "auto" && !why_no_gpu().empty())) {
    return {"cpu", fmt::format("CPU: {} ({} threads)", cpu_model(), at::get_num_threads())};
  }
  if (requested == "auto") return {"cuda:0", gpu_description(0)};
  if (requested.rfind("cuda", 0) != 0)
    throw InputError(fmt::format("run.device '{}' is not one of auto, cpu, cuda, cuda:N", requested));
  std::string why = why_no_gpu();
  if (!why.empty())
    throw InputError(fmt::format("run.device is '{}' but {}; use run.device=cpu (or auto)", requested, why));
  int index = 0;
  if (requested.size() > 5) index = std::stoi(requested.substr(5));
  const int count = static_cast<int>(torch::cuda::device_count());
  if (index >= count)
    throw InputError(fmt::format("run.device is '{}' but only {} CUDA device(s) are visible", requested, count));
  return {fmt::format("cuda:{}", index), gpu_description(index)};
}

nlohmann::json describe_machine() {
  nlohmann::json machine;
  machine["cpu"] = cpu_model();
  machine["hardware_threads"] = std::thread::hardware_concurrency();
  machine["torch_threads"] = at::get_num_threads();
  nlohmann::json gpus = nlohmann::json::array();
  const int count = at::hasCUDA() ? static_cast<int>(torch::cuda::device_count()) : 0;
  for (int i = 0; i < count; ++i) gpus.push_back(gpu_description(i));
  machine["gpus"] = gpus;
  std::string why = why_no_gpu();
  if (!why.empty()) machine["gpu_unavailable_because"] = why;
  return machine;
}

}  // namespace abmll
