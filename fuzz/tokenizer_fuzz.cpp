// libFuzzer target for the tokenizer (see tokenizer_fuzz_input.h for how each input is used). Built by
// fuzz/CMakeLists.txt with -fsanitize=fuzzer,address,undefined; run with scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "tokenizer_fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  abmll::fuzz::run_tokenizer_input(data, size);
  return 0;
}
