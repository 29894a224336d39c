#include "data/task_set.h"

#include <fmt/format.h>

#include <functional>
#include <map>

#include "data/jsonl_reader.h"
#include "data/partition.h"
#include "data/tsv_reader.h"
#include "util/error.h"
#include "util/log.h"

namespace abmll::data {

namespace fs = std::filesystem;

namespace {

// Every task of the data folder, by name, as a function reading it (tasks are read only when selected).
using TaskReaders = std::map<std::string, std::function<Task()>>;

TaskReaders available_tasks(const DataConfig& config, const ReaderOptions& options) {
  const fs::path root = config.path;
  TaskReaders readers;
  switch (config.format) {
    case DataFormat::crossfit:
      break;  // CrossFit tasks are found by name (read_crossfit_task), not listed
    case DataFormat::unifiedqa:
      for (const auto& name : list_unifiedqa_tasks(root))
        readers[name] = [root, name, options] { return read_unifiedqa_task(root / name, options); };
      break;
    case DataFormat::jsonl:
      for (const auto& path : list_jsonl_tasks(root)) {
        std::string name = fs::is_directory(path) ? path.filename().string() : path.stem().string();
        readers[name] = [path, options] { return read_jsonl_task(path, options); };
      }
      break;
  }
  return readers;
}

}  // namespace

TaskSet load_task_set(const DataConfig& config, const ReaderOptions& options) {
  std::error_code ec;
  const fs::path root = config.path;
  if (config.path.empty()) throw InputError("data.path: no data folder given");
  if (!fs::exists(root, ec)) throw InputError(fmt::format("data.path: {} does not exist", root.string()));
  const bool root_is_folder = fs::is_directory(root, ec);

  TaskReaders readers = available_tasks(config, options);
  TaskSet set;
  std::vector<std::string> train_names, test_names;
  std::string partition_file;
  if (!config.partition.empty()) {
    Partition p = load_partition(config.partition, root_is_folder ? root : root.parent_path());
    train_names = std::move(p.train);
    test_names = std::move(p.test);
    set.partition = p.file.string();
  } else if (config.format == DataFormat::crossfit) {
    throw InputError("data.partition: required with format crossfit (cls-45, cls-23, nli, para, mcqa, or a "
                     "partition JSON file)");
  } else {
    for (const auto& [name, read] : readers) test_names.push_back(name);
  }

  std::map<std::string, Task> cache;  // a task listed twice is read once
  auto load = [&](const std::string& name) -> const Task* {
    auto it = cache.find(name);
    if (it == cache.end()) {
      Task task;
      if (config.format == DataFormat::crossfit) {
        if (!root_is_folder) throw InputError(fmt::format("data.path: {} is not a folder", root.string()));
        task = read_crossfit_task(root, name, options);
      } else {
        auto reader = readers.find(name);
        if (reader == readers.end())
          throw InputError(fmt::format("partition {} names task '{}', which {} does not hold", set.partition, name,
                                       root.string()));
        task = reader->second();
      }
      it = cache.emplace(name, std::move(task)).first;
    }
    const Task& task = it->second;
    if (task.size() > 0) return &task;
    std::string files;
    for (const auto& f : task.files) files += (files.empty() ? "" : ", ") + f.string();
    std::string problem = fmt::format("task '{}' has no examples ({})", name, files.empty() ? root.string() : files);
    if (!options.skip_malformed) throw InputError(problem);
    log::warn("{}; left out", problem);
    return nullptr;
  };
  for (const auto& name : train_names)
    if (const Task* t = load(name)) set.train.push_back(*t);
  for (const auto& name : test_names)
    if (const Task* t = load(name)) set.test.push_back(*t);

  std::int64_t skipped = 0;
  for (const auto& [name, task] : cache) skipped += task.skipped;
  log::info("data: {} training and {} held-out tasks from {} ({}){}", set.train.size(), set.test.size(),
            root.string(), to_string(config.format), skipped ? fmt::format("; {} lines skipped", skipped) : "");
  return set;
}

}  // namespace abmll::data
