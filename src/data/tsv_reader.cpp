#include "data/tsv_reader.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <optional>

#include "data/lines.h"
#include "data/options.h"
#include "util/error.h"

namespace abmll::data {

namespace fs = std::filesystem;

namespace {

// UnifiedQA's literal "\n" separators (with the spaces around them) as newlines.
std::string unescape_unifiedqa(std::string_view text) {
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    std::size_t found = text.find("\\n", pos);
    std::string_view part = text.substr(pos, found == std::string_view::npos ? std::string_view::npos : found - pos);
    if (pos > 0) {
      while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    }
    if (found != std::string_view::npos) {
      while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    }
    out += part;
    if (found == std::string_view::npos) return out;
    out += '\n';
    pos = found + 2;
  }
}


}  // namespace

void read_tsv_examples(const fs::path& file, bool unifiedqa, ProblemLog& problems, std::vector<Example>& out,
                       bool need_output) {
  for (Line& line : read_lines(file)) {
    SourceLine where{file, line.number};
    if (!problems.check_utf8(where, line.text)) continue;
    if (!need_output && trim(line.text).empty()) continue;
    const std::size_t tab = line.text.find('\t');
    if (tab == std::string::npos && need_output) {
      problems.report(where, "expected input<TAB>output, found no tab");
      continue;
    }
    std::string_view input = trim(std::string_view(line.text).substr(0, tab));
    std::string_view output;
    if (tab != std::string::npos) {
      std::string_view rest = std::string_view(line.text).substr(tab + 1);
      output = trim(rest.substr(0, rest.find('\t')));
    }
    if (input.empty()) {
      problems.report(where, "empty input");
      continue;
    }
    if (output.empty() && need_output) {
      problems.report(where, "empty output");
      continue;
    }
    Example ex;
    ex.input = unifiedqa ? unescape_unifiedqa(input) : std::string(input);
    ex.output = std::string(output);
    ex.source = std::move(where);
    out.push_back(std::move(ex));
  }
}

namespace {

// k of a CrossFit file name "{task}_{k}_{seed}_{split}.tsv", if it is one of `task`'s with this seed and split.
std::optional<std::int64_t> crossfit_k(const std::string& filename, const std::string& task, std::int64_t seed,
                                       Split split) {
  std::string prefix = task + "_";
  std::string suffix = fmt::format("_{}_{}.tsv", seed, to_string(split));
  if (filename.size() <= prefix.size() + suffix.size() || !filename.starts_with(prefix) ||
      !filename.ends_with(suffix))
    return std::nullopt;
  std::string middle = filename.substr(prefix.size(), filename.size() - prefix.size() - suffix.size());
  if (middle.empty() || middle.size() > 9 || !std::all_of(middle.begin(), middle.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return std::stoll(middle);
}

void finish_task(Task& task, const ReaderOptions& options, ProblemLog& problems) {
  assign_options(task, OptionSource::input, options, problems);
  task.skipped = problems.finish();
}

}  // namespace

Task read_crossfit_task(const fs::path& root, const std::string& name, const ReaderOptions& options) {
  std::string pattern = fmt::format("{}_{}_{}_{{train,dev,test}}.tsv",
                                    name, options.crossfit_k > 0 ? std::to_string(options.crossfit_k) : "*",
                                    options.crossfit_seed);
  // The task's files, by split and k, from its folder, else from the root folder.
  std::map<std::int64_t, std::map<Split, fs::path>> found;
  for (const fs::path& dir : {root / name, root}) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      std::string filename = entry.path().filename().string();
      for (Split split : kSplits) {
        auto k = crossfit_k(filename, name, options.crossfit_seed, split);
        if (k && (options.crossfit_k == 0 || *k == options.crossfit_k)) found[*k][split] = entry.path();
      }
    }
    if (!found.empty()) break;
  }
  if (found.empty())
    throw InputError(fmt::format("CrossFit task '{}': no files {} in {} or {}", name, pattern,
                                 (root / name).string(), root.string()));
  if (found.size() > 1) {
    std::vector<std::int64_t> ks;
    for (const auto& [k, files] : found) ks.push_back(k);
    throw InputError(fmt::format("CrossFit task '{}': files for several k ({}) in {}; choose one (crossfit_k)",
                                 name, fmt::join(ks, ", "), found.begin()->second.begin()->second.parent_path().string()));
  }
  Task task;
  task.name = name;
  ProblemLog problems(options.skip_malformed);
  for (const auto& [split, file] : found.begin()->second) {
    read_tsv_examples(file, false, problems, task.examples(split));
    task.files.push_back(file);
  }
  finish_task(task, options, problems);
  return task;
}

Task read_unifiedqa_task(const fs::path& folder, const ReaderOptions& options) {
  Task task;
  task.name = folder.filename().string();
  ProblemLog problems(options.skip_malformed);
  bool any = false;
  for (Split split : kSplits) {
    fs::path file = folder / fmt::format("{}.tsv", to_string(split));
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) continue;
    any = true;
    read_tsv_examples(file, true, problems, task.examples(split));
    task.files.push_back(file);
  }
  if (!any)
    throw InputError(fmt::format("UnifiedQA task '{}': no train.tsv, dev.tsv or test.tsv in {}", task.name,
                                 folder.string()));
  finish_task(task, options, problems);
  return task;
}

std::vector<std::string> list_unifiedqa_tasks(const fs::path& root) {
  std::vector<std::string> names;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw InputError(fmt::format("{}: not a folder (UnifiedQA data)", root.string()));
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (!entry.is_directory()) continue;
    for (Split split : kSplits) {
      std::error_code file_ec;
      if (fs::is_regular_file(entry.path() / fmt::format("{}.tsv", to_string(split)), file_ec)) {
        names.push_back(entry.path().filename().string());
        break;
      }
    }
  }
  if (ec) throw InputError(fmt::format("{}: cannot list folder: {}", root.string(), ec.message()));
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace abmll::data
