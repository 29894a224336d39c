#include "config/config_loader.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "config/config_schema.h"
#include "util/error.h"
#include "util/text_distance.h"

namespace abmll {
namespace {

const ConfigKey* find_key(const std::string& path) {
  for (const auto& key : config_keys())
    if (key.path == path) return &key;
  return nullptr;
}

// True when `path` names a section, i.e. some key lies below it ("outer" for "outer.lr").
bool is_section(const std::string& path) {
  const std::string prefix = path + ".";
  for (const auto& key : config_keys())
    if (key.path.compare(0, prefix.size(), prefix) == 0) return true;
  return false;
}

std::string did_you_mean(const std::string& path) {
  std::vector<std::string> candidates;
  for (const auto& key : config_keys()) candidates.push_back(key.path);
  std::string hint = closest_match(path, candidates);
  // A section name misspelt at the top ("outr.lr"): compare the last component too.
  if (hint.empty()) {
    const std::string leaf = path.substr(path.rfind('.') + 1);
    for (const auto& key : config_keys())
      if (key.path.substr(key.path.rfind('.') + 1) == leaf) return fmt::format(" (did you mean '{}'?)", key.path);
    return "";
  }
  return fmt::format(" (did you mean '{}'?)", hint);
}

std::string place(const std::filesystem::path& file, const YAML::Mark& mark) {
  if (mark.is_null()) return file.string();
  return fmt::format("{}:{}:{}", file.string(), mark.line + 1, mark.column + 1);
}

// Applies the mapping `node` (the section `prefix`) of `file` to `config`, recording the keys it sets in `given`.
void apply_mapping(ExperimentConfig& config, const YAML::Node& node, const std::string& prefix,
                   const std::filesystem::path& file, std::set<std::string>& given) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    // Copies: the iterator's pair is a temporary proxy, so references to its members would dangle.
    const YAML::Node name = it->first;
    const YAML::Node value = it->second;
    if (!name.IsScalar()) throw InputError(fmt::format("{}: a key must be a plain name", place(file, name.Mark())));
    const std::string path = prefix.empty() ? name.Scalar() : prefix + "." + name.Scalar();
    if (given.count(path)) throw InputError(fmt::format("{}: key '{}' is given twice", place(file, name.Mark()), path));
    if (const ConfigKey* key = find_key(path)) {
      try {
        key->assign(config, value);
      } catch (const InputError& e) {
        throw InputError(fmt::format("{}: {}: {}", place(file, value.Mark()), path, e.what()));
      }
      given.insert(path);
    } else if (is_section(path)) {
      if (!value.IsMap())
        throw InputError(fmt::format("{}: '{}' is a section and must hold keys (e.g. '{}: {{...}}')",
                                     place(file, value.Mark()), path, path));
      given.insert(path);
      apply_mapping(config, value, path, file, given);
    } else {
      throw InputError(fmt::format("{}: unknown key '{}'{}", place(file, name.Mark()), path, did_you_mean(path)));
    }
  }
}

void apply_override(ExperimentConfig& config, const std::string& assignment, std::set<std::string>& given) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw InputError(fmt::format("--set {}: expected key=value, e.g. --set outer.lr=3e-4", assignment));
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  const ConfigKey* key = find_key(path);
  if (!key) {
    if (is_section(path))
      throw InputError(fmt::format("--set {}: '{}' is a section; set one of its keys (--set {}.KEY=VALUE)",
                                   assignment, path, path));
    throw InputError(fmt::format("--set {}: unknown key '{}'{}", assignment, path, did_you_mean(path)));
  }
  YAML::Node value;
  try {
    value = key->is_text ? YAML::Node(text) : YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw InputError(fmt::format("--set {}: value is not valid YAML: {}", assignment, e.msg));
  }
  try {
    key->assign(config, value);
  } catch (const InputError& e) {
    throw InputError(fmt::format("--set {}: {}", assignment, e.what()));
  }
  given.insert(path);
}

// Inserts `value` at the dotted `path` of the nested JSON object `root`.
void put(nlohmann::json& root, const std::string& path, nlohmann::json value) {
  nlohmann::json* node = &root;
  std::size_t start = 0;
  for (std::size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', start)) {
    node = &(*node)[path.substr(start, dot - start)];
    start = dot + 1;
  }
  (*node)[path.substr(start)] = std::move(value);
}

// A value as YAML text: JSON's scalars are YAML flow scalars (strings double-quoted, numbers with full precision),
// except that YAML 1.1 readers (PyYAML) take an exponent without a dot ("5e-10") for a string, so floats get one.
std::string yaml_scalar(const nlohmann::json& value) {
  if (value.is_array()) {
    std::string out = "[";
    for (std::size_t i = 0; i < value.size(); ++i) out += (i ? ", " : "") + yaml_scalar(value[i]);
    return out + "]";
  }
  std::string text = value.dump();
  if (value.is_number_float()) {
    const auto e = text.find('e');
    if (e != std::string::npos && text.find('.') == std::string::npos) text.insert(e, ".0");
  }
  return text;
}

}  // namespace

ExperimentConfig load_experiment_config(const std::optional<std::filesystem::path>& file,
                                        const std::vector<std::string>& overrides) {
  ExperimentConfig config = default_experiment_config();
  std::set<std::string> given;
  if (file) {
    std::error_code ec;
    if (!std::filesystem::exists(*file, ec))
      throw InputError(fmt::format("config file '{}' does not exist", file->string()));
    if (!std::filesystem::is_regular_file(*file, ec))
      throw InputError(fmt::format("config file '{}' is not a regular file", file->string()));
    YAML::Node root;
    try {
      root = YAML::LoadFile(file->string());
    } catch (const YAML::ParserException& e) {
      throw InputError(fmt::format("{}: invalid YAML: {}", place(*file, e.mark), e.msg));
    } catch (const YAML::Exception& e) {
      throw InputError(fmt::format("{}: cannot read: {}", file->string(), e.msg));
    }
    if (root.IsMap()) {
      apply_mapping(config, root, "", *file, given);
    } else if (!root.IsNull()) {
      throw InputError(fmt::format("{}: the top level must be a mapping of keys (e.g. 'method: abmll'), got {}",
                                   place(*file, root.Mark()), root.IsSequence() ? "a list" : "a single value"));
    }
  }
  for (const auto& assignment : overrides) apply_override(config, assignment, given);

  for (const auto& key : config_keys()) {
    if (!key.required || given.count(key.path)) continue;
    throw InputError(fmt::format("{}missing required key '{}' ({}); set it in the config or with --set {}=...",
                                 file ? file->string() + ": " : "", key.path, key.help, key.path));
  }
  return config;
}

nlohmann::json config_to_json(const ExperimentConfig& config) {
  nlohmann::json root = nlohmann::json::object();
  for (const auto& key : config_keys()) put(root, key.path, key.value(config));
  return root;
}

std::string config_to_yaml(const ExperimentConfig& config) {
  std::string out;
  std::string section;
  for (const auto& key : config_keys()) {
    const auto dot = key.path.find('.');
    std::string value = yaml_scalar(key.value(config));
    if (dot == std::string::npos) {
      out += fmt::format("{}: {}\n", key.path, value);
      section.clear();
      continue;
    }
    const std::string this_section = key.path.substr(0, dot);
    if (this_section != section) {
      out += fmt::format("{}:\n", this_section);
      section = this_section;
    }
    out += fmt::format("  {}: {}\n", key.path.substr(dot + 1), value);
  }
  return out;
}

std::string config_help_text() {
  std::string out = "Config keys (YAML path, type, default). Set them in the YAML file or with --set key=value.\n";
  std::string section = "?";
  for (const auto& key : config_keys()) {
    const auto dot = key.path.find('.');
    const std::string this_section = dot == std::string::npos ? "" : key.path.substr(0, dot);
    if (this_section != section) {
      out += this_section.empty() ? "\n" : fmt::format("\n{}:\n", this_section);
      section = this_section;
    }
    out += fmt::format("  {:<32} {:<24} {}\n      {}\n", key.path, key.type,
                       key.required ? "(required)" : "default " + key.default_text, key.help);
  }
  return out;
}

}  // namespace abmll
