// LibTorch's exceptions as abmll reports them (util/torch_errors.h): messages without the C++ backtrace, and every
// kind of failed allocation recognised as running out of memory.
#include <catch2/catch.hpp>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <new>
#include <stdexcept>
#include <string>

#include "util/error.h"
#include "util/torch_errors.h"

using abmll::is_out_of_memory;
using abmll::message_of;

TEST_CASE("a failed allocation is recognised as out of memory, whatever reports it", "[util]") {
  // LibTorch's CPU allocator refusing (a plain c10::Error): more than any machine's address space.
  bool thrown = false;
  try {
    (void)at::empty({int64_t{1} << 60}, at::kByte);
  } catch (const std::exception& e) {
    thrown = true;
    CHECK(is_out_of_memory(e));
    CHECK(message_of(e).find("can't allocate memory") != std::string::npos);
  }
  CHECK(thrown);
  // A GPU's caching allocator throws c10::OutOfMemoryError; the C++ runtime std::bad_alloc.
  CHECK(is_out_of_memory(c10::OutOfMemoryError({"f", "file.cpp", 1}, "CUDA out of memory. Tried to allocate 2 GiB.")));
  CHECK(is_out_of_memory(std::bad_alloc()));
  // CUDA calls' own allocations and cuBLAS's handle, reported as plain c10::Errors (LibTorch's wording).
  CHECK(is_out_of_memory(c10::Error({"f", "file.cpp", 1}, "CUDA error: out of memory\nCUDA kernel errors might be "
                                                          "asynchronously reported")));
  CHECK(is_out_of_memory(
      c10::Error({"f", "file.cpp", 1}, "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`")));
  // Other failures are not.
  CHECK_FALSE(is_out_of_memory(c10::Error({"f", "file.cpp", 1}, "shape mismatch")));
  CHECK_FALSE(is_out_of_memory(std::runtime_error("DefaultCPUAllocator elsewhere")));
  CHECK_FALSE(is_out_of_memory(abmll::InputError("bad config")));
}

TEST_CASE("LibTorch's messages lose their backtrace and fit on one line", "[util]") {
  try {
    (void)at::ones({2, 3}).matmul(at::ones({4, 5}));
    FAIL("expected a shape error");
  } catch (const c10::Error& e) {
    const std::string text = message_of(e);
    INFO(text);
    CHECK(text.find("cannot be multiplied") != std::string::npos);
    CHECK(text.find('\n') == std::string::npos);
    CHECK(text.find("frame #") == std::string::npos);
    CHECK(text.size() < std::string(e.what()).size() + 1);
  }
  CHECK(message_of(std::runtime_error("two\nlines\n")) == "two lines");
}
