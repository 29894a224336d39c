// Queries to predict for a task that has been adapted to (`abmll predict`), one a line, whose answer may be unknown:
// a JSONL file in the JSONL task format's line shape (jsonl_reader.h),
//   {"input": "question text"}                                   the task's options
//   {"input": "question text", "output": "answer text"}          the same, with the right answer (scored)
//   {"input": "...", "options": ["yes", "no"], "output": "no"}   the query's own options
// or a .tsv file as CrossFit and UnifiedQA write tasks (tsv_reader.h): input[<TAB>answer[<TAB>...]], so that a
// task's own files can be given as they are (UnifiedQA's literal "\n" separators become newlines with `unifiedqa`).
// Options. A line's own `options` (at least two strings) are used as given. Without them the query takes the
// task's: a classification task's label set, or for a multiple-choice task the list " (A) text (B) text ..." in
// the input (options.h); a generation task has none to offer, so its lines must carry their own. Other keys are
// ignored. An `output` must be among the query's options (matched as find_option matches).
#pragma once

#include <filesystem>
#include <vector>

#include "data/task.h"

namespace abmll::data {

// The queries of `file` for `task`, each with its options and its label (-1 without `output`), in file order.
// Malformed lines and answers not among their options are InputErrors naming the file and line (skipped with a
// warning under options.skip_malformed); a file without queries is an InputError.
std::vector<Example> read_query_file(const std::filesystem::path& file, const Task& task,
                                     const ReaderOptions& options, bool unifiedqa = false);

}  // namespace abmll::data
