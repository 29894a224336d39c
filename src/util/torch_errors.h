// LibTorch's exceptions as abmll reports them: c10::Error appends a C++ backtrace to its message (useful to a
// developer, noise to a user), and running out of memory comes as one of several exception types.
#pragma once

#include <exception>
#include <string>

namespace abmll {

// The message of `e` without LibTorch's backtrace, on one line.
std::string message_of(const std::exception& e);

// Whether `e` reports a failed allocation: c10::OutOfMemoryError (a GPU's caching allocator), LibTorch's CPU
// allocator refusing, a CUDA call or cuBLAS failing to allocate, or std::bad_alloc.
bool is_out_of_memory(const std::exception& e);

}  // namespace abmll
