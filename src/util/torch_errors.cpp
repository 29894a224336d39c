#include "util/torch_errors.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <new>

namespace abmll {

std::string message_of(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  std::string text = c10_error ? c10_error->what_without_backtrace() : e.what();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

bool is_out_of_memory(const std::exception& e) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) || dynamic_cast<const std::bad_alloc*>(&e)) return true;
  // Failures that come as a plain c10::Error: the CPU allocator's; a CUDA call's own allocation outside the caching
  // allocator (cudaErrorMemoryAllocation, not sticky); cuBLAS failing to create a handle on a full device.
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  if (!c10_error) return false;
  const std::string& msg = c10_error->msg();
  for (const char* marker : {"DefaultCPUAllocator: can't allocate memory", "CUDA error: out of memory",
                             "CUBLAS_STATUS_ALLOC_FAILED"})
    if (msg.find(marker) != std::string::npos) return true;
  return false;
}

}  // namespace abmll
