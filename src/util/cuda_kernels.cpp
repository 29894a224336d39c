// The process-wide switch of abmll's CUDA kernels (see cuda_kernels.h).
#include "util/cuda_kernels.h"

#include <atomic>

namespace abmll {
namespace {

std::atomic<bool> enabled{true};

}  // namespace

void use_cuda_kernels(bool on) { enabled.store(on, std::memory_order_relaxed); }

bool cuda_kernels_enabled() {
#ifdef ABMLL_HAVE_CUDA
  return enabled.load(std::memory_order_relaxed);
#else
  return false;  // nothing to run: a GPU takes ATen's ops, as with model.cuda_kernels off
#endif
}

}  // namespace abmll
