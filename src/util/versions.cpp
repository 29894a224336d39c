// Version facts known at compile time (the git commit is generated separately, see cmake/BuildInfo.cmake).
#include <fmt/format.h>
#include <torch/version.h>

#include "util/build_info.h"

namespace abmll::build_info {

const char* version() { return ABMLL_VERSION; }
const char* torch_version() { return TORCH_VERSION; }
std::string version_line() {
  return fmt::format("abmll {} (commit {}, LibTorch {})", version(), git_commit(), torch_version());
}

bool cuda_kernels_built() {
#ifdef ABMLL_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace abmll::build_info
