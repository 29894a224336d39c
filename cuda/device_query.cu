// Device discovery through the CUDA runtime (see device_query.h).
#include "device_query.h"

#include <cuda_runtime.h>

namespace abmll::cuda {

std::vector<DeviceInfo> query_devices(std::string* why_none) {
  std::vector<DeviceInfo> devices;
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    if (why_none) *why_none = cudaGetErrorString(status);
    cudaGetLastError();  // clear the sticky error so later runtime calls are not affected
    return devices;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    devices.push_back({i, prop.name, prop.major, prop.minor, static_cast<unsigned long long>(prop.totalGlobalMem),
                       prop.multiProcessorCount});
  }
  if (devices.empty() && why_none) *why_none = "no CUDA device found";
  return devices;
}

std::string compiled_runtime_version() {
  return std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10);
}

}  // namespace abmll::cuda
