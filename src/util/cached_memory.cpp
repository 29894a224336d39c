// Cached memory (see cached_memory.h).
#include "util/cached_memory.h"

#include <c10/core/Device.h>

#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#ifdef ABMLL_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace abmll {

void release_cached_memory(const std::string& device) {
  const c10::Device d(device);
#ifdef ABMLL_HAVE_CUDA
  if (d.is_cuda()) {
    c10::cuda::CUDACachingAllocator::emptyCache();
    return;
  }
#endif
  (void)d;
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

void keep_freed_memory_for_reuse(std::size_t mmap_threshold) {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_threshold));
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(std::size_t{1} << 30));
#else
  (void)mmap_threshold;
#endif
}

}  // namespace abmll
