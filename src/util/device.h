// Choosing the compute device from the config's `run.device`, and describing the machine for reports.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>

namespace abmll {

struct DeviceChoice {
  std::string name;         // "cpu" or "cuda:N": what LibTorch is given
  std::string description;  // e.g. "NVIDIA H200 (139.8 GiB, sm_90)" or "CPU: AMD EPYC ... (2 threads)"
};

// Resolves "auto" (the first GPU when one is usable, else the CPU), "cpu", "cuda" or "cuda:N". A GPU that was
// asked for but cannot be used is an InputError saying why (no CUDA in this build, no device visible, bad index).
DeviceChoice resolve_device(const std::string& requested);

// The machine: CPU model and threads, GPUs seen by LibTorch and by cuda/ (when built), for reports.
nlohmann::json describe_machine();

}  // namespace abmll
