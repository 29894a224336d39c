#include "data/query_file.h"

#include <fmt/format.h>

#include "data/jsonl_reader.h"
#include "data/lines.h"
#include "data/options.h"
#include "data/tsv_reader.h"
#include "util/error.h"

namespace abmll::data {

std::vector<Example> read_query_file(const std::filesystem::path& file, const Task& task,
                                     const ReaderOptions& options, bool unifiedqa) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    throw InputError(fmt::format("{}: no such file (queries to predict: JSON Lines, or TSV as the tasks' files)",
                                 file.string()));
  ProblemLog problems(options.skip_malformed);
  std::vector<Example> read;
  if (file.extension() == ".tsv") read_tsv_examples(file, unifiedqa, problems, read, /*need_output=*/false);
  else read_jsonl_examples(file, problems, read, /*need_output=*/false);

  std::vector<Example> queries;
  queries.reserve(read.size());
  for (Example& ex : read) {
    if (ex.options.empty()) {
      if (task.kind == TaskKind::classification) {
        ex.options = task.options;
      } else if (task.kind == TaskKind::multiple_choice) {
        std::optional<ParsedOptions> parsed = parse_options(ex.input, ex.output);
        if (!parsed) {
          problems.report(ex.source, fmt::format("no \"options\", and no options \" (A) ... (B) ...\" in the input "
                                                 "(task '{}' is multiple choice)",
                                                 task.name));
          continue;
        }
        ex.options = std::move(parsed->options);
      } else {
        problems.report(ex.source, fmt::format("no \"options\" (task '{}' answers in free text, so each query needs "
                                               "options of its own to score)",
                                               task.name));
        continue;
      }
    }
    if (!ex.output.empty()) {
      ex.label = find_option(ex.options, ex.output);
      if (ex.label < 0) {
        problems.report(ex.source, fmt::format("answer {} is not among the options {}", excerpt(ex.output),
                                               option_list(ex.options)));
        continue;
      }
    }
    queries.push_back(std::move(ex));
  }
  problems.finish();
  if (queries.empty()) throw InputError(fmt::format("{}: no queries", file.string()));
  return queries;
}

}  // namespace abmll::data
