// Peak memory of the run, for metrics and benchmarks: on a GPU the most LibTorch's caching allocator has had
// allocated on that device (tensors, not the allocator's reserve), on the CPU the process's maximum resident set.
#pragma once

#include <optional>
#include <string>

namespace abmll {

// Megabytes (2^20 bytes) at peak so far on `device` ("cpu", "cuda", "cuda:N").
double peak_memory_mb(const std::string& device);

// On a GPU, the most the caching allocator has held from the device at once so far (its tensors and its reserve):
// what the device must have free for the run besides the CUDA context. Empty on the CPU.
std::optional<double> peak_reserved_mb(const std::string& device);

}  // namespace abmll
