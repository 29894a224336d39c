#include "eval/results_table.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>
#include <type_traits>

#include "util/error.h"

namespace abmll::eval {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string>& method_order() {
  static const std::vector<std::string> order = {
      "pretrained", "icl",    "lora (from scratch)", "lora (from scratch, MC dropout)", "lora", "lora (MC dropout)",
      "reptile",    "reptile (MC dropout)", "fomaml", "fomaml (MC dropout)", "abmll", "abmll_icl"};
  return order;
}

std::size_t method_rank(const std::string& method) {
  const auto& order = method_order();
  return static_cast<std::size_t>(std::find(order.begin(), order.end(), method) - order.begin());
}

// The value at JSON pointer `where` in `report`, as T; throws InputError naming the file and the field.
template <class T>
T field(const nlohmann::json& report, const std::string& where, const fs::path& source) {
  const nlohmann::json::json_pointer pointer(where);
  if (!report.contains(pointer))
    throw InputError(fmt::format("{}: not an evaluation report of abmll (no field {})", source.string(), where));
  const nlohmann::json& value = report.at(pointer);
  // An integer field must hold one: get<> would truncate a float, and convert one beyond T's range with undefined
  // behaviour.
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    if (!value.is_number_integer())
      throw InputError(fmt::format("{}: field {} must be an integer, not {}", source.string(), where, value.dump()));
  try {
    return value.get<T>();
  } catch (const nlohmann::json::exception&) {
    throw InputError(fmt::format("{}: field {} has the wrong type", source.string(), where));
  }
}

// The value at `where`, or `absent` when the report has no such field (InputError when it has another type).
template <class T>
T optional_field(const nlohmann::json& report, const std::string& where, const fs::path& source, T absent = T()) {
  if (!report.contains(nlohmann::json::json_pointer(where))) return absent;
  return field<T>(report, where, source);
}

bool is_evaluation_report(const nlohmann::json& j) {
  if (!j.is_object()) return false;
  const auto command = j.find("command");
  return command != j.end() && command->is_string() && command->get_ref<const std::string&>() == "evaluate";
}

nlohmann::json parse_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw InputError(fmt::format("{}: cannot read", path.string()));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {  // syntax errors, and numbers beyond double's range
    throw InputError(fmt::format("{}: malformed JSON: {}", path.string(), e.what()));
  }
}

// The report's pooled confidence bins ([{"lo", "hi", "count", "accuracy", "confidence"}], at least two, edges in
// order, some prediction in them), or none when it has no such field.
std::vector<CalibrationBin> read_bins(const nlohmann::json& report, const fs::path& source) {
  const std::string where = "/results/aggregate/pooled/bins";
  if (!report.contains(nlohmann::json::json_pointer(where))) return {};
  const auto& bins = report.at(nlohmann::json::json_pointer(where));
  auto bad = [&](std::size_t b, const std::string& problem) {
    return InputError(fmt::format("{}: field {}/{}: {}", source.string(), where, b, problem));
  };
  if (!bins.is_array() || bins.size() < 2)
    throw InputError(fmt::format("{}: field {} is not a list of at least two bins", source.string(), where));
  std::vector<CalibrationBin> out;
  for (std::size_t b = 0; b < bins.size(); ++b) {
    const auto& j = bins[b];
    for (const char* key : {"lo", "hi", "count", "accuracy", "confidence"})
      if (!j.is_object() || !j.contains(key) || !j.at(key).is_number())
        throw bad(b, fmt::format("no number \"{}\"", key));
    if (!j.at("count").is_number_integer() || j.at("count").get<long long>() < 0)
      throw bad(b, "\"count\" is not a count");
    CalibrationBin bin{j.at("lo").get<double>(), j.at("hi").get<double>(), j.at("count").get<std::int64_t>(),
                       j.at("accuracy").get<double>(), j.at("confidence").get<double>()};
    auto unit = [](double v) { return v >= 0 && v <= 1; };
    if (!unit(bin.lo) || !unit(bin.hi) || bin.lo > bin.hi || !unit(bin.accuracy) || !unit(bin.confidence) ||
        (b > 0 && bin.lo < out.back().lo))
      throw bad(b, "edges, accuracy or confidence outside [0, 1] or out of order");
    out.push_back(bin);
  }
  // An evaluation scores at least one query; bins holding none are not a report's.
  if (std::all_of(out.begin(), out.end(), [](const CalibrationBin& bin) { return bin.count == 0; }))
    throw InputError(fmt::format("{}: field {} holds no predictions (every count is 0)", source.string(), where));
  return out;
}

TableRow::Stat stat(const std::vector<double>& values) {
  TableRow::Stat s;
  for (double v : values) s.mean += v;
  s.mean /= static_cast<double>(values.size());
  if (values.size() > 1) {
    double squares = 0;
    for (double v : values) squares += (v - s.mean) * (v - s.mean);
    s.std = std::sqrt(squares / static_cast<double>(values.size() - 1));
  }
  return s;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "75.2 +- 1.3" (or "75.2" for one seed), values scaled by `scale`.
std::string mean_std(const TableRow::Stat& s, std::size_t n, double scale, int digits) {
  if (n <= 1) return fmt::format("{:.{}f}", s.mean * scale, digits);
  return fmt::format("{:.{}f} ± {:.{}f}", s.mean * scale, digits, s.std * scale, digits);
}

// "key=value, key=value".
std::string variant_text(const std::vector<std::pair<std::string, std::string>>& variant) {
  std::string out;
  for (const auto& [key, value] : variant) out += fmt::format("{}{}={}", out.empty() ? "" : ", ", key, value);
  return out;
}

// Orders variants value by value: numbers by value, before other text, which is in byte order.
struct VariantOrder {
  std::vector<std::pair<std::string, std::string>> values;

  static std::optional<double> number(const std::string& text) {
    if (text.empty()) return std::nullopt;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || !std::isfinite(v)) return std::nullopt;
    return v;
  }
  bool operator<(const VariantOrder& other) const {
    for (std::size_t i = 0; i < values.size() && i < other.values.size(); ++i) {
      const std::string &a = values[i].second, &b = other.values[i].second;
      if (a == b) continue;
      const auto x = number(a), y = number(b);
      if (x && y && *x != *y) return *x < *y;
      if (x.has_value() != y.has_value()) return x.has_value();
      return a < b;
    }
    return values.size() < other.values.size();
  }
};

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

RunResult read_run_result(const fs::path& report, const std::vector<std::string>& by) {
  const nlohmann::json j = parse_file(report);
  if (!is_evaluation_report(j))
    throw InputError(fmt::format("{}: not a report of `abmll evaluate`", report.string()));
  RunResult r;
  r.source = report;
  r.method = field<std::string>(j, "/results/method", report);
  std::vector<std::string> how;  // what sets the run apart from its method's usual evaluation
  if (r.method == "lora" && optional_field<std::string>(j, "/results/adapted_from", report) == "peft_init")
    how.push_back("from scratch");
  if ((r.method == "lora" || r.method == "reptile" || r.method == "fomaml") &&
      optional_field<bool>(j, "/config/eval/mc_dropout", report))
    how.push_back("MC dropout");
  if (!how.empty()) r.method += fmt::format(" ({})", fmt::join(how, ", "));
  r.seed = field<long long>(j, "/config/run/seed", report);
  const std::string data_path = field<std::string>(j, "/config/data/path", report);
  const std::string label = optional_field<std::string>(j, "/config/run/benchmark", report);
  const std::string partition = optional_field<std::string>(j, "/config/data/partition", report);
  r.benchmark = !label.empty()       ? label
                : !partition.empty() ? fs::path(partition).stem().string()
                                     : fs::path(data_path).lexically_normal().filename().string();
  r.split = optional_field<std::string>(j, "/results/split", report, "test");
  if (r.split != "test") r.benchmark += fmt::format(" ({} split)", r.split);
  fs::path model = fs::path(field<std::string>(j, "/config/model/path", report)).lexically_normal();
  if (model.filename().empty()) model = model.parent_path();
  r.model = model.filename().string();
  const std::string agg = "/results/aggregate/mean_over_tasks/";
  r.accuracy = field<double>(j, agg + "accuracy", report);
  r.ece = field<double>(j, agg + "ece", report);
  r.nll = field<double>(j, agg + "nll", report);
  r.brier = field<double>(j, agg + "brier", report);
  if (const nlohmann::json::json_pointer at(agg + "auroc"); j.contains(at) && !j.at(at).is_null()) {
    r.auroc = field<double>(j, agg + "auroc", report);
    if (!(*r.auroc >= 0 && *r.auroc <= 1))
      throw InputError(fmt::format("{}: field {}auroc is {}, not within [0, 1]", report.string(), agg, *r.auroc));
  }
  if (const nlohmann::json::json_pointer at(agg + "aurc"); j.contains(at)) {
    r.aurc = field<double>(j, agg + "aurc", report);
    if (!(*r.aurc >= 0 && *r.aurc <= 1))
      throw InputError(fmt::format("{}: field {}aurc is {}, not within [0, 1]", report.string(), agg, *r.aurc));
  }
  r.bins = read_bins(j, report);
  for (const std::string& key : by) {
    std::string pointer = "/config/" + key;
    std::replace(pointer.begin(), pointer.end(), '.', '/');
    const nlohmann::json::json_pointer at(pointer);
    std::string value;
    if (j.contains(at)) value = j.at(at).is_string() ? j.at(at).get<std::string>() : j.at(at).dump();
    r.variant.emplace_back(key, std::move(value));
  }
  return r;
}

std::vector<RunResult> collect_run_results(const std::vector<fs::path>& paths, const std::vector<std::string>& by) {
  std::vector<RunResult> runs;
  for (const auto& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<fs::path> found;
      for (const auto& entry : fs::recursive_directory_iterator(path))
        if (entry.is_regular_file() && entry.path().filename() == "report.json") found.push_back(entry.path());
      std::sort(found.begin(), found.end());
      for (const auto& report : found) {
        const nlohmann::json j = parse_file(report);
        if (is_evaluation_report(j)) runs.push_back(read_run_result(report, by));
      }
    } else if (fs::is_regular_file(path, ec)) {
      runs.push_back(read_run_result(path, by));
    } else {
      throw InputError(fmt::format("{}: no such report file or folder", path.string()));
    }
  }
  std::map<std::tuple<std::string, std::string, std::string, std::string, long long>, fs::path> seen;
  for (const auto& r : runs) {
    auto [it, fresh] =
        seen.emplace(std::make_tuple(r.benchmark, r.model, r.method, variant_text(r.variant), r.seed), r.source);
    if (!fresh)
      throw InputError(fmt::format("{} and {}: both report {}{} on {} with {} and seed {}; a table counts each seed "
                                   "once (runs that differ in a config key are told apart by `--by KEY`)",
                                   it->second.string(), r.source.string(), r.method,
                                   r.variant.empty() ? "" : " (" + variant_text(r.variant) + ")", r.benchmark, r.model,
                                   r.seed));
  }
  return runs;
}

std::vector<TableRow> results_table(const std::vector<RunResult>& runs) {
  std::map<std::tuple<std::string, std::string, std::size_t, std::string, VariantOrder>, std::vector<const RunResult*>>
      groups;
  for (const auto& r : runs)
    groups[{r.benchmark, r.model, method_rank(r.method), r.method, VariantOrder{r.variant}}].push_back(&r);
  std::vector<TableRow> rows;
  for (const auto& [key, members] : groups) {
    TableRow row;
    row.benchmark = std::get<0>(key);
    row.model = std::get<1>(key);
    row.method = std::get<3>(key);
    row.variant = std::get<4>(key).values;
    std::vector<double> acc, ece, nll, brier, auroc, aurc;
    for (const RunResult* r : members) {
      row.seeds.push_back(r->seed);
      acc.push_back(r->accuracy), ece.push_back(r->ece), nll.push_back(r->nll), brier.push_back(r->brier);
      if (r->auroc) auroc.push_back(*r->auroc);
      if (r->aurc) aurc.push_back(*r->aurc);
    }
    if (!auroc.empty()) row.auroc = stat(auroc);
    row.auroc_seeds = auroc.size();
    if (!aurc.empty()) row.aurc = stat(aurc);
    row.aurc_seeds = aurc.size();
    std::sort(row.seeds.begin(), row.seeds.end());
    row.accuracy = stat(acc), row.ece = stat(ece), row.nll = stat(nll), row.brier = stat(brier);
    // The paper's figures are of test splits.
    if ((row.method == "abmll" || row.method == "abmll_icl") && members.front()->split == "test") {
      row.paper_accuracy = paper_abmll_accuracy(row.benchmark);
      // The paper reports these benchmarks with ICL only: its figure belongs beside abmll_icl, not abmll.
      const bool icl_only = row.paper_accuracy && row.paper_accuracy->find("with ICL") != std::string::npos;
      if (icl_only && row.method != "abmll_icl") row.paper_accuracy.reset();
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string table_markdown(const std::vector<TableRow>& rows) {
  std::string keys, rule;
  if (!rows.empty())
    for (const auto& [key, value] : rows.front().variant) keys += " " + key + " |", rule += "---|";
  std::string out = fmt::format(
      "| benchmark | model | method |{} seeds | accuracy (%) | ECE | NLL | Brier | AUROC | AURC | paper ABMLL accuracy "
      "(%) |\n"
      "|---|---|---|{}---|---|---|---|---|---|---|---|\n",
      keys, rule);
  for (const auto& r : rows) {
    const std::size_t n = r.seeds.size();
    const std::string auroc = r.auroc ? mean_std(*r.auroc, r.auroc_seeds, 1, 3) : "";
    const std::string aurc = r.aurc ? mean_std(*r.aurc, r.aurc_seeds, 1, 3) : "";
    std::string values;
    for (const auto& [key, value] : r.variant) values += " " + value + " |";
    out += fmt::format("| {} | {} | {} |{} {} | {} | {} | {} | {} | {} | {} | {} |\n", r.benchmark, r.model,
                       r.method, values, n, mean_std(r.accuracy, n, 100, 1), mean_std(r.ece, n, 1, 3),
                       mean_std(r.nll, n, 1, 3), mean_std(r.brier, n, 1, 3), auroc, aurc,
                       r.paper_accuracy.value_or(""));
  }
  return out;
}

std::string table_csv(const std::vector<TableRow>& rows) {
  std::string keys;
  if (!rows.empty())
    for (const auto& [key, value] : rows.front().variant) keys += csv_field(key) + ",";
  std::string out =
      "benchmark,model,method," + keys +
      "seeds,accuracy_mean,accuracy_std,ece_mean,ece_std,nll_mean,nll_std,brier_mean,brier_std,auroc_mean,"
      "auroc_std,aurc_mean,aurc_std,paper_abmll_accuracy\n";
  for (const auto& r : rows) {
    const std::string auroc = r.auroc ? fmt::format("{:.6f},{:.6f}", r.auroc->mean, r.auroc->std) : ",";
    const std::string aurc = r.aurc ? fmt::format("{:.6f},{:.6f}", r.aurc->mean, r.aurc->std) : ",";
    std::string values;
    for (const auto& [key, value] : r.variant) values += csv_field(value) + ",";
    out += fmt::format("{},{},{},{}{},{:.6f},{:.6f},{:.6f},{:.6f},{:.6f},{:.6f},{:.6f},{:.6f},{},{},{}\n",
                       csv_field(r.benchmark), csv_field(r.model), csv_field(r.method), values, r.seeds.size(),
                       r.accuracy.mean, r.accuracy.std, r.ece.mean, r.ece.std, r.nll.mean, r.nll.std, r.brier.mean,
                       r.brier.std, auroc, aurc, csv_field(r.paper_accuracy.value_or("")));
  }
  return out;
}

bool in_row(const RunResult& run, const TableRow& row) {
  return run.benchmark == row.benchmark && run.model == row.model && run.method == row.method &&
         run.variant == row.variant;
}

std::string method_label(const TableRow& row) {
  return row.variant.empty() ? row.method : fmt::format("{} ({})", row.method, variant_text(row.variant));
}

std::optional<std::string> paper_abmll_accuracy(const std::string& benchmark) {
  // ABMLL.md section 8: the seed page's figures; where it gives two (the benchmark's dev-style split and its test
  // split), both are shown.
  static const std::vector<std::pair<std::string, std::string>> known = {
      {"cls-23", "75.4"},        {"cls-45", "77.4 (test 75.2)"}, {"nli", "85.2 (test 83.6)"},
      {"para", "66.1 (test)"},  {"mcqa", "82.1 (test 77.4)"},   {"legalbench", "79.5 (with ICL)"},
      {"chembench", "58.4 (with ICL)"}};
  const std::string label = lower(benchmark);
  for (const auto& [key, value] : known) {
    const auto at = label.find(key);
    if (at == std::string::npos) continue;
    // Whole words only: "para" must not match "paraphrase-free" inside another name by accident.
    const bool starts = at == 0 || !std::isalnum(static_cast<unsigned char>(label[at - 1]));
    const auto end = at + key.size();
    const bool ends = end == label.size() || !std::isalnum(static_cast<unsigned char>(label[end]));
    if (starts && ends) return value;
  }
  return std::nullopt;
}

}  // namespace abmll::eval
