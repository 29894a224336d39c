// Cached memory (see cached_memory.h).
#include "util/cached_memory.h"

#include <c10/core/Device.h>

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

}  // namespace abmll
