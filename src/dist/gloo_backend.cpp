// Gloo through LibTorch's ProcessGroupGloo. The wheel ships ProcessGroupGloo (in libtorch_cpu.so, with torch's own
// bundled gloo) and its header, but not gloo's headers, which that header includes; we compile against Debian's
// libgloo-dev headers (an older gloo) while every gloo object is created and used by torch's code. That is sound
// because this file touches gloo only through torch's out-of-line functions:
//  - Options::Options, createDefaultDevice / createDeviceForInterface and the ProcessGroupGloo constructor are
//    compiled into libtorch_cpu.so; we only hold the shared_ptr<gloo::transport::Device> they return, whose size,
//    copy and destruction (through torch's control block) do not depend on gloo's class definitions;
//  - sizeof(ProcessGroupGloo) and sizeof(Options), computed here for `new`, depend on gloo only through
//    shared_ptr / vector members (fixed sizes);
//  - every later call goes through c10d::Backend's virtual table, which lives in libtorch_cpu.so.
// What must never happen here: constructing a GlooStore, calling an inline member that dereferences a gloo object
// (setTimeout, _getStore), or any gloo function. tests/python/test_gloo_abi.py checks this file's object for
// references to gloo symbols.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <fmt/format.h>

#include <cstdlib>
#include <string>

#include "dist/backends.h"
#include "util/error.h"

namespace abmll::dist {

c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  if (const char* names = std::getenv("GLOO_SOCKET_IFNAME"); names && *names) {
    std::string list(names);
    std::size_t start = 0;
    while (start <= list.size()) {
      const std::size_t comma = std::min(list.find(',', start), list.size());
      const std::string name = list.substr(start, comma - start);
      if (name.empty())
        throw InputError(fmt::format("environment variable GLOO_SOCKET_IFNAME='{}': empty interface name", list));
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
      start = comma + 1;
    }
  } else {
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
}

}  // namespace abmll::dist
