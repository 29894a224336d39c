// Answer options: parsing " (A) text (B) text ..." out of a multiple-choice input, and deciding, once a task's
// files are read, what kind of task it is and which options each example chooses among (see task.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/lines.h"
#include "data/task.h"

namespace abmll::data {

struct ParsedOptions {
  std::vector<std::string> options;
  std::int64_t label = -1;  // index of the answer among `options`, -1 when it is not among them
};

// The option list of a multiple-choice input: markers "(A) ", "(B) ", ... with consecutive letters of one case
// (UnifiedQA lowercases them to "(a) "), the first at the start of the input or after whitespace, each later one
// after a space. An option's text runs to the next marker; the last one's to the end of its line, to " [SEP] " or
// to the end of the input. Texts are trimmed. When the input holds several such lists (a question may quote
// "(A)" itself), the first with at least two options that contains `answer` wins, else the last found.
// nullopt when the input holds no list of at least two options.
std::optional<ParsedOptions> parse_options(std::string_view input, std::string_view answer);

// Index of `answer` in `options`: an exact match after trimming, else one ignoring ASCII case and runs of
// whitespace; -1 if none.
std::int64_t find_option(const std::vector<std::string>& options, std::string_view answer);

// Where a task's options come from.
enum class OptionSource {
  input,     // CrossFit, UnifiedQA: multiple choice when most inputs carry an option list, else a label set
  explicit_  // JSONL: multiple choice when lines give `options`, else a label set
};

// Sets the task's kind, its label set and each example's options and label; examples that cannot be scored (the
// answer is not among its options; a multiple-choice task's input without options; JSONL lines without
// `options` in a task whose other lines have them) are reported to `problems` and, when it skips, removed.
void assign_options(Task& task, OptionSource source, const ReaderOptions& options, ProblemLog& problems);

// `text` in double quotes, cut to `max` bytes (at a character boundary) with "..." when longer: for messages.
std::string excerpt(std::string_view text, std::size_t max = 60);

// `options` as "(A) "text" (B) "other"", each cut by excerpt: for messages.
std::string option_list(const std::vector<std::string>& options);

}  // namespace abmll::data
