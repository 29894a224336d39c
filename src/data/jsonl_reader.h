// Reader of abmll's own task format, JSONL, for data that is neither CrossFit nor UnifiedQA (LegalBench, ChemBench,
// users' tasks; scripts/data/ converts the first two). One JSON object a line:
//   {"input": "question text", "output": "answer text", "options": ["answer text", "other", ...]}
// `input` and `output`: non-empty strings. `options` (optional): at least two strings, among them `output`; when
// one line of a task has options every line must. Without options the task's label set is its distinct outputs
// (a generation task when there are more than ReaderOptions::max_labels). Other keys are ignored.
// Layout: a file {name}.jsonl is one task named {name} whose examples all go to its `train` split (episodes then
// draw support and query from it without overlap); a folder {name}/ holding train.jsonl, dev.jsonl and/or
// test.jsonl is one task with those splits. A data path may be such a file, such a task folder, or a folder of them.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "data/lines.h"
#include "data/task.h"

namespace abmll::data {

// The task of a {name}.jsonl file or of a {name}/ folder of split files.
Task read_jsonl_task(const std::filesystem::path& path, const ReaderOptions& options);

// The examples of one JSONL file as written (options as given, labels unset), appended to `out`; malformed lines
// go to `problems`. Without `need_output` a line may leave out "output" (queries whose answer is unknown), which
// then stays empty.
void read_jsonl_examples(const std::filesystem::path& file, ProblemLog& problems, std::vector<Example>& out,
                         bool need_output = true);

// True for a {name}.jsonl file or a folder holding at least one of train.jsonl, dev.jsonl, test.jsonl.
bool is_jsonl_task(const std::filesystem::path& path);

// The tasks under `path`: itself when is_jsonl_task(path), else its entries that are tasks, sorted by name.
// InputError when there are none.
std::vector<std::filesystem::path> list_jsonl_tasks(const std::filesystem::path& path);

}  // namespace abmll::data
