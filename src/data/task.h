// Tasks as the rest of abmll sees them, whatever file format they came from: plain structs filled by the readers
// (crossfit_reader, unifiedqa_reader, jsonl_reader) and consumed by episode sampling (episode.h).
//
// Answer options. Every scored example carries the list of answer texts the model chooses among and the index of
// the right one, so scoring never depends on the format:
//   classification   the task's label set: every distinct output across all its files, sorted bytewise;
//   multiple_choice  each example's own options, parsed from its input (" (A) text (B) text ...") or given
//                    explicitly (JSONL `options`); the output is the answer's text;
//   generation       free-text answers (too many distinct outputs to be a label set): no options; such tasks can
//                    be meta-trained on (NLL of the answer) but not scored by option likelihood.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace abmll::data {

// The file splits of a task. CrossFit: {task}_{k}_{seed}_{train|dev|test}.tsv; UnifiedQA: {train,dev,test}.tsv;
// JSONL: {train,dev,test}.jsonl, or one {task}.jsonl read as `train`.
enum class Split { train = 0, dev = 1, test = 2 };
inline constexpr std::array<Split, 3> kSplits = {Split::train, Split::dev, Split::test};
std::string_view to_string(Split split);

enum class TaskKind { classification, multiple_choice, generation };
std::string_view to_string(TaskKind kind);

// Where an example came from, for messages ("data/sst2/sst2_16_100_train.tsv:12").
struct SourceLine {
  std::filesystem::path file;
  std::int64_t line = 0;  // 1-based
};
std::string to_string(const SourceLine& where);

struct Example {
  std::string input;                 // as in the file (UnifiedQA's literal "\n" turned into newlines)
  std::string output;                // the answer text (the first output when a line lists several)
  std::vector<std::string> options;  // answer texts to choose among; empty for generation tasks
  std::int64_t label = -1;           // index of `output` in `options`; -1 for generation tasks
  SourceLine source;
};

struct Task {
  std::string name;
  TaskKind kind = TaskKind::classification;
  std::array<std::vector<Example>, 3> splits;  // indexed by Split
  std::vector<std::string> options;            // classification: the label set (examples share it); else empty
  std::int64_t skipped = 0;                    // lines skipped under ReaderOptions::skip_malformed
  std::vector<std::filesystem::path> files;    // the files read, for messages

  bool is_multiple_choice() const { return kind == TaskKind::multiple_choice; }
  const std::vector<Example>& examples(Split split) const { return splits[static_cast<int>(split)]; }
  std::vector<Example>& examples(Split split) { return splits[static_cast<int>(split)]; }
  std::size_t size() const { return splits[0].size() + splits[1].size() + splits[2].size(); }
};

// Train tasks are meta-trained on; test tasks are held out (adapted to from their support sets and evaluated).
struct TaskSet {
  std::vector<Task> train;
  std::vector<Task> test;
  std::string partition;  // what the partition resolved to (a file path), or "" when all tasks are test tasks
};

struct ReaderOptions {
  // Skip malformed lines and queries whose answer is not among their options, counting them and logging one
  // warning per file, instead of failing on the first (InputError naming file and line).
  bool skip_malformed = false;
  // CrossFit: the sampling seed in the file names ({task}_{k}_{seed}_{split}.tsv); CrossFit used 100, 13, 21, 42, 87.
  std::int64_t crossfit_seed = 100;
  // CrossFit: k in the file names; 0 accepts whichever single k the task's folder holds (16 or 32 in CrossFit).
  std::int64_t crossfit_k = 0;
  // A task with more distinct outputs than this, that is not multiple choice, is a generation task.
  std::int64_t max_labels = 64;
};

}  // namespace abmll::data
