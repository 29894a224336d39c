// The process-wide switch of abmll's CUDA kernels (see cuda_kernels.h).
#include "util/cuda_kernels.h"

#include <atomic>

namespace abmll {
namespace {

std::atomic<bool> enabled{true};

}  // namespace

void use_cuda_kernels(bool on) { enabled.store(on, std::memory_order_relaxed); }

bool cuda_kernels_enabled() { return enabled.load(std::memory_order_relaxed); }

}  // namespace abmll
