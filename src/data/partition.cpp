#include "data/partition.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <set>

#include "util/error.h"
#include "util/log.h"

namespace abmll::data {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct KnownPartition {
  std::string_view name, stem, test_key;
};
// ABMLL.md section 7: the paper's names, CrossFit's files and where their held-out tasks sit.
constexpr KnownPartition kKnown[] = {
    {"cls-45", "train_classification_test_classification", "test"},
    {"cls-23", "train_halfhalf_test_classification", "dev"},
    {"nli", "train_non_nli_test_nli", "dev"},
    {"para", "train_nonparaphrase_classification_test_paraphrase", "dev"},
    {"mcqa", "train_non_multiple_choice_qa_test_multiple_choice", "dev"},
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::vector<std::string> task_list(const json& j, const std::string& key, const fs::path& file) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_array())
    throw InputError(fmt::format("{}: \"{}\" must be a list of task names, found {}", file.string(), key,
                                 it->type_name()));
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const json& v = (*it)[i];
    if (!v.is_string() || v.get_ref<const std::string&>().empty())
      throw InputError(fmt::format("{}: \"{}\"[{}] must be a task name, found {}", file.string(), key, i, v.dump()));
    if (seen.insert(v.get<std::string>()).second) names.push_back(v.get<std::string>());
  }
  return names;
}

}  // namespace

std::optional<std::string_view> crossfit_partition_stem(std::string_view name) {
  std::string n = lower(name);
  for (const auto& k : kKnown)
    if (k.name == n) return k.stem;
  return std::nullopt;
}

Partition load_partition(const std::string& partition, const fs::path& data_root) {
  std::error_code ec;
  fs::path file;
  std::vector<fs::path> tried;
  auto try_path = [&](const fs::path& p) {
    tried.push_back(p);
    if (file.empty() && fs::is_regular_file(p, ec)) file = p;
  };
  bool is_path = partition.find('/') != std::string::npos || partition.ends_with(".json");
  if (is_path) {
    try_path(partition);
    if (fs::path(partition).is_relative()) try_path(data_root / partition);
  } else {
    std::string stem(crossfit_partition_stem(partition).value_or(partition));
    try_path(data_root / "partitions" / (stem + ".json"));
    try_path(data_root / (stem + ".json"));
  }
  if (file.empty()) {
    std::string places;
    for (const auto& p : tried) places += (places.empty() ? "" : ", ") + p.string();
    std::string known;
    for (const auto& k : kKnown) known += (known.empty() ? "" : ", ") + std::string(k.name);
    throw InputError(fmt::format("partition '{}': no file at {} (names: {}, a CrossFit partition file stem, or a "
                                 "path to a partition JSON file; scripts/data/crossfit_layout.py copies CrossFit's)",
                                 partition, places, known));
  }

  std::ifstream in(file, std::ios::binary);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {  // syntax errors, and numbers beyond double's range
    throw InputError(fmt::format("{}: not JSON: {}", file.string(), e.what()));
  }
  if (!j.is_object())
    throw InputError(fmt::format("{}: a partition must be a JSON object with \"train\" and \"test\" or \"dev\" "
                                 "lists, found {}",
                                 file.string(), j.type_name()));
  Partition out;
  out.file = file;
  out.train = task_list(j, "train", file);
  std::string stem = file.stem().string();
  auto known = std::find_if(std::begin(kKnown), std::end(kKnown), [&](const auto& k) { return k.stem == stem; });
  if (known != std::end(kKnown)) {
    out.test_key = std::string(known->test_key);
  } else {
    out.test_key = task_list(j, "test", file).empty() ? "dev" : "test";
  }
  out.test = task_list(j, out.test_key, file);
  if (out.train.empty() && out.test.empty())
    throw InputError(fmt::format("{}: the partition lists no tasks under \"train\" or \"{}\"", file.string(),
                                 out.test_key));
  std::set<std::string> train(out.train.begin(), out.train.end());
  for (const auto& name : out.test)
    if (train.count(name))
      log::warn("{}: task '{}' is listed both for training and as held out (under \"{}\"); kept in both",
                file.string(), name, out.test_key);
  return out;
}

}  // namespace abmll::data
