#include "data/jsonl_reader.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "data/lines.h"
#include "data/options.h"
#include "util/error.h"

namespace abmll::data {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path split_file(const fs::path& folder, Split split) {
  return folder / fmt::format("{}.jsonl", to_string(split));
}

// The string value of `key`, or a reported problem ("" returned).
std::string required_string(const json& j, const char* key, const SourceLine& where, ProblemLog& problems) {
  auto it = j.find(key);
  if (it == j.end()) {
    problems.report(where, fmt::format("missing \"{}\"", key));
    return {};
  }
  if (!it->is_string()) {
    problems.report(where, fmt::format("\"{}\" must be a string, found {}", key, it->type_name()));
    return {};
  }
  std::string value(trim(it->get_ref<const std::string&>()));
  if (value.empty()) problems.report(where, fmt::format("empty \"{}\"", key));
  return value;
}

}  // namespace

void read_jsonl_examples(const fs::path& file, ProblemLog& problems, std::vector<Example>& out, bool need_output) {
  for (Line& line : read_lines(file)) {
    SourceLine where{file, line.number};
    if (trim(line.text).empty()) continue;
    if (!problems.check_utf8(where, line.text)) continue;
    json j;
    try {
      j = json::parse(line.text);
    } catch (const json::parse_error& e) {
      // nlohmann's message: "[json.exception.parse_error.101] parse error at line 1, column 2: <problem>".
      std::string what = e.what();
      std::size_t p = what.find(": ", what.find("] "));
      problems.report(where, fmt::format("not JSON (at byte {}): {}", e.byte,
                                         p == std::string::npos ? what : what.substr(p + 2)));
      continue;
    } catch (const json::out_of_range& e) {  // a number beyond double's range ("1e999")
      std::string what = e.what();
      std::size_t p = what.find("] ");
      problems.report(where, fmt::format("not JSON: {}", p == std::string::npos ? what : what.substr(p + 2)));
      continue;
    }
    if (!j.is_object()) {
      problems.report(where, fmt::format("expected a JSON object, found {}", j.type_name()));
      continue;
    }
    Example ex;
    ex.source = where;
    ex.input = required_string(j, "input", where, problems);
    if (ex.input.empty()) continue;
    if (need_output || j.contains("output")) {
      ex.output = required_string(j, "output", where, problems);
      if (ex.output.empty()) continue;
    }
    if (auto it = j.find("options"); it != j.end() && !it->is_null()) {
      bool ok = it->is_array() && it->size() >= 2 &&
                std::all_of(it->begin(), it->end(), [](const json& o) { return o.is_string(); });
      if (!ok) {
        problems.report(where, "\"options\" must be an array of at least two strings");
        continue;
      }
      for (const auto& o : *it) ex.options.emplace_back(trim(o.get_ref<const std::string&>()));
    }
    out.push_back(std::move(ex));
  }
}

bool is_jsonl_task(const fs::path& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path.extension() == ".jsonl";
  if (!fs::is_directory(path, ec)) return false;
  for (Split split : kSplits)
    if (fs::is_regular_file(split_file(path, split), ec)) return true;
  return false;
}

std::vector<fs::path> list_jsonl_tasks(const fs::path& path) {
  if (is_jsonl_task(path)) return {path};
  std::error_code ec;
  std::vector<fs::path> tasks;
  if (fs::is_directory(path, ec))
    for (const auto& entry : fs::directory_iterator(path, ec))
      if (is_jsonl_task(entry.path())) tasks.push_back(entry.path());
  if (tasks.empty())
    throw InputError(fmt::format("{}: no JSONL tasks ({{name}}.jsonl files or folders with train.jsonl, dev.jsonl "
                                 "or test.jsonl)",
                                 path.string()));
  std::sort(tasks.begin(), tasks.end());
  return tasks;
}

Task read_jsonl_task(const fs::path& path, const ReaderOptions& options) {
  Task task;
  ProblemLog problems(options.skip_malformed);
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    task.name = path.stem().string();
    read_jsonl_examples(path, problems, task.examples(Split::train));
    task.files.push_back(path);
  } else {
    task.name = path.filename().string();
    bool any = false;
    for (Split split : kSplits) {
      fs::path file = split_file(path, split);
      if (!fs::is_regular_file(file, ec)) continue;
      any = true;
      read_jsonl_examples(file, problems, task.examples(split));
      task.files.push_back(file);
    }
    if (!any)
      throw InputError(fmt::format("JSONL task '{}': no train.jsonl, dev.jsonl or test.jsonl in {}", task.name,
                                   path.string()));
  }
  assign_options(task, OptionSource::explicit_, options, problems);
  task.skipped = problems.finish();
  return task;
}

}  // namespace abmll::data
