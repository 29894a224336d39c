// libFuzzer target for the config loader (see config_fuzz_input.h for how each input is used). Built by
// fuzz/CMakeLists.txt with -fsanitize=fuzzer,address,undefined; run with scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "config_fuzz_input.h"
#include "scratch_dir.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  abmll::fuzz::run_config_input(data, size, abmll::fuzz::scratch_dir());
  return 0;
}
