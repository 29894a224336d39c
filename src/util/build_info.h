// Facts about this build, for reports and `--version`.
#pragma once

#include <string>

namespace abmll::build_info {

const char* version();        // abmll's version (CMake project version)
const char* git_commit();     // commit the binary was built from, "-dirty" appended for uncommitted changes
const char* torch_version();  // LibTorch version compiled against
bool cuda_kernels_built();    // whether cuda/ was compiled in

// "abmll 0.1.0 (commit ..., LibTorch x.y.z)".
std::string version_line();

}  // namespace abmll::build_info
