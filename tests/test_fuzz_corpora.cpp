// The fuzzers' seed inputs (fuzz/corpus/<target>) and their findings (tests/data/<target>_corpus) replayed exactly as
// the libFuzzer targets run them (fuzz/*_fuzz_input.h), so a parser that regresses on any of them fails here: only
// abmll::InputError may come out, and the targets' own checks (round trips, task invariants) abort otherwise.
// The safetensors corpus is replayed in test_safetensors_malformed.cpp.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "../fuzz/adapter_config_fuzz_input.h"
#include "../fuzz/config_fuzz_input.h"
#include "../fuzz/episodes_fuzz_input.h"
#include "../fuzz/json_files_fuzz_input.h"
#include "../fuzz/task_files_fuzz_input.h"
#include "../fuzz/tokenizer_fuzz_input.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace {

// Every file of the target's seed corpus and of its regression corpus (absent while the target has found
// nothing: git keeps no empty folder), as bytes.
std::vector<std::pair<std::string, std::string>> corpus(const std::string& target) {
  std::vector<std::pair<std::string, std::string>> files;
  const fs::path seeds = fs::path(ABMLL_SOURCE_DIR) / "fuzz" / "corpus" / target;
  REQUIRE(fs::is_directory(seeds));
  for (const fs::path& dir : {seeds, fs::path(ABMLL_TEST_DATA) / (target + "_corpus")}) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& item : fs::directory_iterator(dir))
      if (item.is_regular_file())
        files.emplace_back(item.path().string(), abmll::test::read_text(item.path()));
  }
  return files;
}

// Replays every file of `target`'s corpora through `run(data, size, scratch)`: nothing but InputError may escape
// (run_* functions catch it), and their own checks abort on a broken invariant.
template <class Run>
void replay(const std::string& target, std::size_t at_least, Run&& run) {
  const auto files = corpus(target);
  CHECK(files.size() >= at_least);
  const abmll::test::ScratchDir scratch;
  for (const auto& [name, data] : files) {
    INFO("corpus file: " << name);
    CHECK_NOTHROW(run(reinterpret_cast<const std::uint8_t*>(data.data()), data.size(), scratch / "files"));
  }
}

}  // namespace

TEST_CASE("fuzz corpora: tokenizer inputs load, encode and round-trip or are refused cleanly", "[tokenizer][fuzz]") {
  replay("tokenizer", 6, [](const std::uint8_t* data, std::size_t size, const fs::path&) {
    abmll::fuzz::run_tokenizer_input(data, size);
  });
}

TEST_CASE("fuzz corpora: task files read into well-formed tasks or are refused cleanly", "[data][fuzz]") {
  replay("task_files", 8, abmll::fuzz::run_task_files_input);
}

TEST_CASE("fuzz corpora: configs load and survive their resolved YAML, or are refused cleanly", "[config][fuzz]") {
  replay("config", 3, abmll::fuzz::run_config_input);
}

TEST_CASE("fuzz corpora: config.json, predictions files and evaluation reports parse into sane values or are refused "
          "cleanly",
          "[model][eval][fuzz]") {
  replay("json_files", 6, abmll::fuzz::run_json_files_input);
}

TEST_CASE("fuzz corpora: episodes fit max_length and keep support and query apart, or are refused cleanly",
          "[data][fuzz]") {
  replay("episodes", 4, abmll::fuzz::run_episodes_input);
}

TEST_CASE("fuzz corpora: PEFT adapter configs read into usable settings that survive a round trip, or are refused "
          "cleanly",
          "[model][fuzz]") {
  replay("adapter_config", 4, [](const std::uint8_t* data, std::size_t size, const fs::path&) {
    abmll::fuzz::run_adapter_config_input(data, size);
  });
}
