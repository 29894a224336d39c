// libFuzzer target for episode sampling and prompt fitting (see episodes_fuzz_input.h for how each input is
// used). Built by fuzz/CMakeLists.txt with -fsanitize=fuzzer,address,undefined; run with scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "episodes_fuzz_input.h"
#include "scratch_dir.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  abmll::fuzz::run_episodes_input(data, size, abmll::fuzz::scratch_dir());
  return 0;
}
