// Peak memory (see peak_memory.h).
#include "util/peak_memory.h"

#include <c10/core/Device.h>
#include <sys/resource.h>

#ifdef ABMLL_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace abmll {

double peak_memory_mb(const std::string& device) {
  const c10::Device d(device);
#ifdef ABMLL_HAVE_CUDA
  if (d.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(d.has_index() ? d.index() : 0);
    const auto aggregate = static_cast<std::size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    return static_cast<double>(stats.allocated_bytes[aggregate].peak) / (1 << 20);
  }
#endif
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024;  // Linux reports kilobytes
}

std::optional<double> peak_reserved_mb(const std::string& device) {
#ifdef ABMLL_HAVE_CUDA
  const c10::Device d(device);
  if (d.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(d.has_index() ? d.index() : 0);
    const auto aggregate = static_cast<std::size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    return static_cast<double>(stats.reserved_bytes[aggregate].peak) / (1 << 20);
  }
#endif
  (void)device;
  return std::nullopt;
}

}  // namespace abmll
