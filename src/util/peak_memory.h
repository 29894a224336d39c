// Peak memory of the run, for metrics and benchmarks: on a GPU the most LibTorch's caching allocator has had
// allocated on that device (tensors, not the allocator's reserve), on the CPU the process's maximum resident set.
#pragma once

#include <string>

namespace abmll {

// Megabytes (2^20 bytes) at peak so far on `device` ("cpu", "cuda", "cuda:N").
double peak_memory_mb(const std::string& device);

}  // namespace abmll
