// libFuzzer target for config.json and predictions files (see json_files_fuzz_input.h for how each input is
// used). Built by fuzz/CMakeLists.txt with -fsanitize=fuzzer,address,undefined; run with scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "json_files_fuzz_input.h"
#include "scratch_dir.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  abmll::fuzz::run_json_files_input(data, size, abmll::fuzz::scratch_dir());
  return 0;
}
