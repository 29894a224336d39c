// One fuzzing input, run through the task readers (src/data). Shared by the libFuzzer target (task_files_fuzz.cpp)
// and the regression test over tests/data/task_files_corpus, so that every saved input is replayed as the fuzzer
// ran it.
//
// The first byte says what the rest is (bits 0-1) and how malformed lines are treated (bit 2: skip_malformed):
//   0  a CrossFit training file, task/task_16_100_train.tsv
//   1  a UnifiedQA training file, task/train.tsv
//   2  a JSONL task file, task.jsonl; with bit 3 also a query file (data/query_file.h), as JSONL and as TSV, read
//      for a classification, a multiple-choice and a generation task
//   3  a partition JSON file (train/dev/test task lists)
// The file is written into a fresh folder under `scratch`. A task that reads must satisfy what episodes and
// scoring rely on (task.h): non-empty valid UTF-8 inputs and answers; classification: every example's options are
// the task's label set and its label points at its answer (data::find_option's match); multiple choice: at least
// two options, the label pointing at the answer; generation: no options, label -1. Queries: non-empty valid UTF-8
// inputs, at least two options (the task's label set where the line gives none), a label pointing at the answer
// where one was given, else -1. abmll::InputError is the only acceptable failure;
// anything else (another exception, a broken invariant: abort) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data/jsonl_reader.h"
#include "data/options.h"
#include "data/partition.h"
#include "data/query_file.h"
#include "data/task.h"
#include "data/tsv_reader.h"
#include "text/utf8.h"
#include "util/error.h"

namespace abmll::fuzz {

[[noreturn]] inline void task_finding(const char* what, const data::Example& ex) {
  std::fprintf(stderr, "task files fuzz finding: %s (%s)\n", what, data::to_string(ex.source).c_str());
  std::abort();
}

inline void check_task(const data::Task& task) {
  for (data::Split split : data::kSplits) {
    for (const data::Example& ex : task.examples(split)) {
      if (ex.input.empty() || ex.output.empty()) task_finding("empty input or answer", ex);
      if (text::utf8::find_invalid(ex.input) != std::string_view::npos ||
          text::utf8::find_invalid(ex.output) != std::string_view::npos)
        task_finding("invalid UTF-8", ex);
      switch (task.kind) {
        case data::TaskKind::classification:
          if (ex.options != task.options) task_finding("options other than the task's label set", ex);
          [[fallthrough]];
        case data::TaskKind::multiple_choice:
          if (ex.options.size() < 2 && task.kind == data::TaskKind::multiple_choice)
            task_finding("fewer than two options", ex);
          if (ex.label < 0 || static_cast<std::size_t>(ex.label) >= ex.options.size())
            task_finding("label out of range", ex);
          // The answer matches its option exactly or ignoring ASCII case and whitespace runs (options.h).
          if (data::find_option({ex.options[static_cast<std::size_t>(ex.label)]}, ex.output) != 0)
            task_finding("label is not the answer", ex);
          break;
        case data::TaskKind::generation:
          if (!ex.options.empty() || ex.label != -1) task_finding("a generation example with options", ex);
          break;
      }
    }
  }
}

inline void check_queries(const std::vector<data::Example>& queries) {
  if (queries.empty()) std::abort();  // read_query_file throws instead
  for (const data::Example& ex : queries) {
    if (ex.input.empty()) task_finding("empty query input", ex);
    if (text::utf8::find_invalid(ex.input) != std::string_view::npos ||
        text::utf8::find_invalid(ex.output) != std::string_view::npos)
      task_finding("invalid UTF-8 in a query", ex);
    if (ex.options.size() < 2) task_finding("a query with fewer than two options", ex);
    if (ex.output.empty() != (ex.label == -1)) task_finding("a label without an answer, or the reverse", ex);
    if (ex.label >= static_cast<std::int64_t>(ex.options.size()) || ex.label < -1)
      task_finding("query label out of range", ex);
    if (ex.label >= 0 && data::find_option({ex.options[static_cast<std::size_t>(ex.label)]}, ex.output) != 0)
      task_finding("query label is not the answer", ex);
  }
}

// read_query_file of `file`, and of the same bytes as a .tsv (plain and UnifiedQA's), for a task of each kind.
inline void run_query_file(const std::filesystem::path& file, const data::ReaderOptions& options) {
  const std::filesystem::path tsv = std::filesystem::path(file).replace_extension(".tsv");
  std::filesystem::copy_file(file, tsv, std::filesystem::copy_options::overwrite_existing);
  for (data::TaskKind kind :
       {data::TaskKind::classification, data::TaskKind::multiple_choice, data::TaskKind::generation}) {
    data::Task task;
    task.name = "queried";
    task.kind = kind;
    if (kind == data::TaskKind::classification) task.options = {"negative", "positive"};
    for (const auto& [path, unifiedqa] : {std::pair{file, false}, std::pair{tsv, false}, std::pair{tsv, true}}) {
      try {
        check_queries(data::read_query_file(path, task, options, unifiedqa));
      } catch (const InputError&) {
      }
    }
  }
}

inline void run_task_files_input(const std::uint8_t* data, std::size_t size, const std::filesystem::path& scratch) {
  if (size == 0) return;
  namespace fs = std::filesystem;
  const int kind = data[0] & 3;
  data::ReaderOptions options;
  options.skip_malformed = (data[0] & 4) != 0;
  const std::string_view content(reinterpret_cast<const char*>(data) + 1, size - 1);
  fs::remove_all(scratch);
  fs::create_directories(scratch / "task");
  const fs::path file = kind == 0   ? scratch / "task" / "task_16_100_train.tsv"
                        : kind == 1 ? scratch / "task" / "train.tsv"
                        : kind == 2 ? scratch / "task.jsonl"
                                    : scratch / "partition.json";
  std::ofstream(file, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
  try {
    switch (kind) {
      case 0: check_task(data::read_crossfit_task(scratch, "task", options)); break;
      case 1: check_task(data::read_unifiedqa_task(scratch / "task", options)); break;
      case 2:
        if (data[0] & 8) run_query_file(file, options);
        check_task(data::read_jsonl_task(file, options));
        break;
      default: data::load_partition(file.string(), scratch); break;
    }
  } catch (const InputError&) {
  }
}

}  // namespace abmll::fuzz
