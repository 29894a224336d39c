// Host entry points of cuda/ for device discovery, callable from code built without nvcc.
#pragma once

#include <string>
#include <vector>

namespace abmll::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0, compute_minor = 0;
  unsigned long long total_memory_bytes = 0;
  int multiprocessors = 0;
};

// The CUDA devices the runtime sees. Empty when there is no GPU or no usable driver; `why_none` then says why
// (the CUDA runtime's error text).
std::vector<DeviceInfo> query_devices(std::string* why_none = nullptr);

// Version of the CUDA runtime cuda/ was compiled against, as "major.minor".
std::string compiled_runtime_version();

}  // namespace abmll::cuda
