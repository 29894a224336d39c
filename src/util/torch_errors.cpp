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
  // The CPU allocator reports failure as a plain c10::Error.
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  return c10_error && c10_error->msg().find("DefaultCPUAllocator: can't allocate memory") != std::string::npos;
}

}  // namespace abmll
