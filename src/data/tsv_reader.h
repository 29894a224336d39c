// Readers of the two TSV task formats.
//
// CrossFit (Ye et al. 2021), as its task scripts write it:
//   {root}/{task}/{task}_{k}_{seed}_{train|dev|test}.tsv   (or the same files directly in {root})
//   each line: input<TAB>output[<TAB>output...]; the first output is the answer, later ones alternatives.
// UnifiedQA (Khashabi et al. 2020):
//   {root}/{task}/{train|dev|test}.tsv, each line question<TAB>answer; the parts of the question (question,
//   options "(a) ... (b) ...", context) are separated by a literal backslash-n, which becomes a newline here.
//   UnifiedQA's text is lowercased; it is kept as it is.
// Options and task kinds are assigned as task.h describes (OptionSource::input). Malformed lines (no tab, empty
// input or answer, invalid UTF-8) follow the ProblemLog policy.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "data/lines.h"
#include "data/task.h"

namespace abmll::data {

// The examples of one TSV file as written (labels unset), appended to `out`; malformed lines go to `problems`.
// `unifiedqa`: the input's literal "\n" separators become newlines. Without `need_output` a line may be the input
// alone (no tab: queries whose answer is unknown), and blank lines are skipped.
void read_tsv_examples(const std::filesystem::path& file, bool unifiedqa, ProblemLog& problems,
                       std::vector<Example>& out, bool need_output = true);

// Task `name` of a CrossFit data folder, with ReaderOptions::crossfit_seed (and crossfit_k) picking the files.
// Throws InputError naming the files looked for when the task has none, and when several k fit.
Task read_crossfit_task(const std::filesystem::path& root, const std::string& name, const ReaderOptions& options);

// The task in UnifiedQA folder `folder` (its name is the folder's). InputError when it holds no split file.
Task read_unifiedqa_task(const std::filesystem::path& folder, const ReaderOptions& options);

// Names of the subfolders of `root` holding at least one UnifiedQA split file, sorted.
std::vector<std::string> list_unifiedqa_tasks(const std::filesystem::path& root);

}  // namespace abmll::data
