// Facts about this build, for reports and `--version`.
#pragma once

namespace abmll::build_info {

const char* version();        // abmll's version (CMake project version)
const char* git_commit();     // commit the binary was built from, "-dirty" appended for uncommitted changes
const char* torch_version();  // LibTorch version compiled against
bool cuda_kernels_built();    // whether cuda/ was compiled in

}  // namespace abmll::build_info
