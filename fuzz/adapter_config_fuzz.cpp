// libFuzzer target for PEFT's adapter_config.json (see adapter_config_fuzz_input.h for how each input is used).
// Built by fuzz/CMakeLists.txt with -fsanitize=fuzzer,address,undefined; run with scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "adapter_config_fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  abmll::fuzz::run_adapter_config_input(data, size);
  return 0;
}
