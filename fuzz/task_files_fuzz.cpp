// libFuzzer target for the task readers (see task_files_fuzz_input.h for how each input is used). Built by
// fuzz/CMakeLists.txt with -fsanitize=fuzzer,address,undefined; run with scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "task_files_fuzz_input.h"
#include "scratch_dir.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  abmll::fuzz::run_task_files_input(data, size, abmll::fuzz::scratch_dir());
  return 0;
}
