// Partitions: which tasks are meta-trained on and which are held out. A partition is a JSON file
//   {"train": ["task", ...], "dev": [...], "test": [...]}
// as in CrossFit's repository (dataloader/custom_tasks_splits/*.json). The config names one either by a path to
// such a file or by name: the paper's names map to CrossFit's files (ABMLL.md section 7),
//   cls-45 -> train_classification_test_classification      held-out tasks under "test"
//   cls-23 -> train_halfhalf_test_classification            held-out tasks under "dev"
//   nli    -> train_non_nli_test_nli                        "dev"
//   para   -> train_nonparaphrase_classification_test_paraphrase  "dev"
//   mcqa   -> train_non_multiple_choice_qa_test_multiple_choice   "dev"
// and any other name is taken as a file stem; a name is looked up as {data}/partitions/{stem}.json, then
// {data}/{stem}.json. Files of other stems hold their held-out tasks under "test" when that list is non-empty,
// else under "dev".
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace abmll::data {

struct Partition {
  std::filesystem::path file;
  std::vector<std::string> train;  // from "train"
  std::vector<std::string> test;   // from `test_key`
  std::string test_key;            // "test" or "dev"
};

// The CrossFit file stem of a paper partition name (case-insensitive), or nullopt.
std::optional<std::string_view> crossfit_partition_stem(std::string_view name);

// Resolves `partition` (a path or a name, see above) against the data folder `data_root` and reads it. Throws
// InputError naming the places looked in, or the file and the problem (not JSON, a list that is not of strings).
// A task listed in both train and held-out lists is kept in both, with a warning.
Partition load_partition(const std::string& partition, const std::filesystem::path& data_root);

}  // namespace abmll::data
