// `abmll report`'s table: evaluation reports grouped by benchmark, model and method, mean and sample standard
// deviation over seeds, the paper's figures beside ABMLL, and the errors for inputs that are not evaluation runs;
// its reliability figures: the methods' bins pooled over seeds, and refusals of bins that cannot be pooled.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "eval/reliability_figures.h"
#include "eval/results_table.h"
#include "test_support.h"

namespace {

using abmll::test::input_error_of;
using abmll::test::ScratchDir;
using abmll::test::write_text;
namespace eval = abmll::eval;

// A report as `abmll evaluate` writes it, reduced to the fields the table reads.
nlohmann::json evaluation_report(const std::string& method, long long seed, double accuracy, double ece,
                                 const std::string& partition = "runs/x/data/partitions/cls-45.json") {
  return {{"command", "evaluate"},
          {"config",
           {{"run", {{"seed", seed}, {"benchmark", ""}}},
            {"model", {{"path", "models/Llama-3-8B/"}}},
            {"data", {{"path", "data/crossfit"}, {"partition", partition}}}}},
          {"results",
           {{"method", method},
            {"aggregate", {{"mean_over_tasks", {{"accuracy", accuracy}, {"ece", ece}, {"nll", 0.5}, {"brier", 0.25}}}}}}}};
}

void write_report(const std::filesystem::path& path, const nlohmann::json& report) {
  std::filesystem::create_directories(path.parent_path());
  write_text(path, report.dump());
}

}  // namespace

TEST_CASE("the table averages each method over seeds and puts the paper's figure beside ABMLL", "[report]") {
  ScratchDir dir;
  write_report(dir / "runs/abmll-0/report.json", evaluation_report("abmll", 0, 0.70, 0.10));
  write_report(dir / "runs/abmll-1/report.json", evaluation_report("abmll", 1, 0.80, 0.20));
  write_report(dir / "runs/pretrained-0/report.json", evaluation_report("pretrained", 0, 0.50, 0.30));
  nlohmann::json scratch = evaluation_report("lora", 0, 0.55, 0.25);
  scratch["results"]["adapted_from"] = "peft_init";
  write_report(dir / "runs/lora-scratch-0/report.json", scratch);
  // Another command's report in the folder is not a run of the table.
  write_report(dir / "runs/train/report.json", {{"command", "meta-train"}});

  const auto runs = eval::collect_run_results({dir / "runs"});
  REQUIRE(runs.size() == 4);
  const auto rows = eval::results_table(runs);
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].method == "pretrained");
  CHECK(rows[1].method == "lora (from scratch)");
  CHECK(rows[2].method == "abmll");
  CHECK(rows[2].benchmark == "cls-45");
  CHECK(rows[2].model == "Llama-3-8B");
  CHECK(rows[2].seeds == std::vector<long long>{0, 1});
  CHECK(rows[2].accuracy.mean == Approx(0.75));
  CHECK(rows[2].accuracy.std == Approx(std::sqrt(0.005)));  // sample std of {0.7, 0.8}
  CHECK(rows[2].ece.mean == Approx(0.15));
  CHECK(rows[0].accuracy.std == 0);
  REQUIRE(rows[2].paper_accuracy);
  CHECK(*rows[2].paper_accuracy == "77.4 (test 75.2)");
  CHECK_FALSE(rows[0].paper_accuracy);

  const std::string md = eval::table_markdown(rows);
  CHECK(md.find("| cls-45 | Llama-3-8B | abmll | 2 | 75.0 ± 7.1 | 0.150 ± 0.071 |") != std::string::npos);
  CHECK(md.find("| cls-45 | Llama-3-8B | pretrained | 1 | 50.0 | 0.300 |") != std::string::npos);
  const std::string csv = eval::table_csv(rows);
  CHECK(csv.find("cls-45,Llama-3-8B,abmll,2,0.750000,0.070711,0.150000,0.070711,") != std::string::npos);
}

TEST_CASE("the benchmark label comes from run.benchmark, then the partition, then the data folder", "[report]") {
  ScratchDir dir;
  nlohmann::json labelled = evaluation_report("icl", 3, 0.6, 0.1);
  labelled["config"]["run"]["benchmark"] = "LegalBench";
  write_report(dir / "a.json", labelled);
  CHECK(eval::read_run_result(dir / "a.json").benchmark == "LegalBench");
  CHECK(eval::read_run_result(dir / "a.json").seed == 3);
  write_report(dir / "b.json", evaluation_report("icl", 3, 0.6, 0.1, ""));
  CHECK(eval::read_run_result(dir / "b.json").benchmark == "crossfit");

  // An evaluation of the dev files is a row of its own, without the paper's (test) figure.
  nlohmann::json dev = evaluation_report("abmll", 0, 0.6, 0.1);
  dev["results"]["split"] = "dev";
  write_report(dir / "dev/report.json", dev);
  write_report(dir / "test/report.json", evaluation_report("abmll", 0, 0.7, 0.1));
  const auto rows = eval::results_table(eval::collect_run_results({dir / "dev", dir / "test"}));
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].benchmark == "cls-45");
  CHECK(rows[0].paper_accuracy);
  CHECK(rows[1].benchmark == "cls-45 (dev split)");
  CHECK(rows[1].accuracy.mean == Approx(0.6));
  CHECK_FALSE(rows[1].paper_accuracy);

  CHECK(eval::paper_abmll_accuracy("crossfit-nli") == std::optional<std::string>("85.2 (test 83.6)"));
  CHECK(eval::paper_abmll_accuracy("unifiedqa-mcqa") == std::optional<std::string>("82.1 (test 77.4)"));
  CHECK_FALSE(eval::paper_abmll_accuracy("paraphrase-free"));
  CHECK_FALSE(eval::paper_abmll_accuracy("demo"));
}

TEST_CASE("report refuses files that are not evaluation runs, and a seed counted twice", "[report]") {
  ScratchDir dir;
  write_report(dir / "train.json", {{"command", "meta-train"}});
  CHECK_THAT(input_error_of([&] { eval::read_run_result(dir / "train.json"); }),
             Catch::Contains("train.json") && Catch::Contains("not a report of `abmll evaluate`"));
  write_text(dir / "broken.json", "{\"command\": ");
  CHECK_THAT(input_error_of([&] { eval::read_run_result(dir / "broken.json"); }),
             Catch::Contains("broken.json") && Catch::Contains("malformed JSON"));
  nlohmann::json partial = evaluation_report("abmll", 0, 0.7, 0.1);
  partial["results"]["aggregate"]["mean_over_tasks"].erase("ece");
  write_report(dir / "partial.json", partial);
  CHECK_THAT(input_error_of([&] { eval::read_run_result(dir / "partial.json"); }),
             Catch::Contains("/results/aggregate/mean_over_tasks/ece"));
  CHECK_THAT(input_error_of([&] { eval::collect_run_results({dir / "missing"}); }),
             Catch::Contains("no such report file or folder"));
  // Fields missing or of another type deeper in: named, never read through.
  nlohmann::json no_data = evaluation_report("abmll", 0, 0.7, 0.1);
  no_data["config"].erase("data");
  write_report(dir / "no-data.json", no_data);
  CHECK_THAT(input_error_of([&] { eval::read_run_result(dir / "no-data.json"); }),
             Catch::Contains("/config/data/path"));
  nlohmann::json odd = evaluation_report("abmll", 0, 0.7, 0.1);
  odd["config"]["run"]["benchmark"] = 7;
  write_report(dir / "odd.json", odd);
  CHECK_THAT(input_error_of([&] { eval::read_run_result(dir / "odd.json"); }),
             Catch::Contains("/config/run/benchmark has the wrong type"));
  // A seed that is not an integer (a float is never truncated, nor converted beyond range).
  for (const double seed : {42.5, 3e80}) {
    nlohmann::json float_seed = evaluation_report("abmll", 0, 0.7, 0.1);
    float_seed["config"]["run"]["seed"] = seed;
    write_report(dir / "float-seed.json", float_seed);
    CHECK_THAT(input_error_of([&] { eval::read_run_result(dir / "float-seed.json"); }),
               Catch::Contains("/config/run/seed must be an integer"));
  }
  write_report(dir / "command.json", {{"command", 3}});
  CHECK_THAT(input_error_of([&] { eval::read_run_result(dir / "command.json"); }),
             Catch::Contains("not a report of `abmll evaluate`"));

  write_report(dir / "x/1/report.json", evaluation_report("abmll", 0, 0.7, 0.1));
  write_report(dir / "x/2/report.json", evaluation_report("abmll", 0, 0.8, 0.1));
  CHECK_THAT(input_error_of([&] { eval::collect_run_results({dir / "x"}); }),
             Catch::Contains("seed 0") && Catch::Contains("counts each seed once"));
}

namespace {

// Pooled bins as an evaluation report writes them: two regular bins and the [1, 1] bin.
nlohmann::json bins_json(long long low, double low_accuracy, long long high, double high_accuracy) {
  return nlohmann::json::array(
      {{{"lo", 0.0}, {"hi", 0.5}, {"count", low}, {"accuracy", low_accuracy}, {"confidence", 0.4}},
       {{"lo", 0.5}, {"hi", 1.0}, {"count", high}, {"accuracy", high_accuracy}, {"confidence", 0.8}},
       {{"lo", 1.0}, {"hi", 1.0}, {"count", 0}, {"accuracy", 0.0}, {"confidence", 0.0}}});
}

nlohmann::json with_bins(nlohmann::json report, nlohmann::json bins) {
  report["results"]["aggregate"]["pooled"]["bins"] = std::move(bins);
  return report;
}

}  // namespace

TEST_CASE("reliability figures: one per benchmark and model, a curve per method pooling its seeds' bins",
          "[report]") {
  ScratchDir dir;
  write_report(dir / "runs/a0/report.json",
               with_bins(evaluation_report("abmll", 0, 0.7, 0.1), bins_json(10, 0.5, 30, 0.9)));
  write_report(dir / "runs/a1/report.json",
               with_bins(evaluation_report("abmll", 1, 0.7, 0.1), bins_json(30, 0.1, 10, 0.7)));
  write_report(dir / "runs/p0/report.json",
               with_bins(evaluation_report("pretrained", 0, 0.5, 0.3), bins_json(0, 0.0, 4, 0.25)));
  // Another benchmark, and a run without bins (left out of the figures).
  write_report(dir / "runs/n0/report.json",
               with_bins(evaluation_report("abmll", 0, 0.7, 0.1, "p/nli.json"), bins_json(2, 0.5, 2, 1.0)));
  write_report(dir / "runs/n1/report.json", evaluation_report("pretrained", 0, 0.6, 0.2, "p/nli.json"));

  const auto figures = eval::reliability_figures(eval::collect_run_results({dir / "runs"}));
  REQUIRE(figures.size() == 2);
  CHECK(figures[0].benchmark == "cls-45");
  REQUIRE(figures[0].curves.size() == 2);
  CHECK(figures[0].curves[0].method == "pretrained");
  const eval::MethodCurve& abmll = figures[0].curves[1];
  CHECK(abmll.seeds == std::vector<long long>{0, 1});
  CHECK(abmll.pooled.n == 80);
  CHECK(abmll.pooled.bins[0].count == 40);
  CHECK(abmll.pooled.bins[0].accuracy == Approx((10 * 0.5 + 30 * 0.1) / 40));
  CHECK(abmll.pooled.bins[1].accuracy == Approx((30 * 0.9 + 10 * 0.7) / 40));
  CHECK(abmll.pooled.accuracy == Approx((5 + 3 + 27 + 7) / 80.0));
  CHECK(abmll.pooled.ece == Approx((40 * std::abs(0.2 - 0.4) + 40 * std::abs(0.85 - 0.8)) / 80));
  CHECK(figures[1].benchmark == "nli");
  REQUIRE(figures[1].curves.size() == 1);
  CHECK(eval::figure_file_stem(figures[1]) == "reliability-nli-Llama-3-8B");

  const std::string svg = eval::figure_svg(figures[0]);
  CHECK(svg.find("<polyline") != std::string::npos);
  CHECK(svg.find("abmll (2 seeds)") != std::string::npos);
  CHECK(svg.find("pretrained (1 seed)") != std::string::npos);
  const nlohmann::json j = eval::to_json(figures[0]);
  CHECK(j["curves"][1]["seeds"] == nlohmann::json::array({0, 1}));
  CHECK(j["curves"][1]["n"] == 80);
  CHECK_FALSE(j["curves"][1].contains("nll"));
}

TEST_CASE("reliability figures refuse bins of another layout, and reports whose bins are malformed", "[report]") {
  ScratchDir dir;
  nlohmann::json fewer = bins_json(1, 1.0, 1, 1.0);
  fewer.erase(0);
  write_report(dir / "x/a0/report.json", with_bins(evaluation_report("abmll", 0, 0.7, 0.1), bins_json(1, 0, 1, 1)));
  write_report(dir / "x/a1/report.json", with_bins(evaluation_report("abmll", 1, 0.7, 0.1), fewer));
  const auto runs = eval::collect_run_results({dir / "x"});
  CHECK_THAT(input_error_of([&] { eval::reliability_figures(runs); }),
             Catch::Contains("a0/report.json") && Catch::Contains("a1/report.json") &&
                 Catch::Contains("another eval.bins"));

  nlohmann::json bad = bins_json(1, 0.5, 1, 1.0);
  bad[1]["accuracy"] = 1.5;
  write_report(dir / "bad.json", with_bins(evaluation_report("abmll", 0, 0.7, 0.1), bad));
  CHECK_THAT(input_error_of([&] { eval::read_run_result(dir / "bad.json"); }),
             Catch::Contains("bad.json") && Catch::Contains("/results/aggregate/pooled/bins/1"));
  bad = bins_json(1, 0.5, 1, 1.0);
  bad[0]["count"] = -3;
  write_report(dir / "bad.json", with_bins(evaluation_report("abmll", 0, 0.7, 0.1), bad));
  CHECK_THAT(input_error_of([&] { eval::read_run_result(dir / "bad.json"); }), Catch::Contains("not a count"));
  write_report(dir / "bad.json", with_bins(evaluation_report("abmll", 0, 0.7, 0.1), "many"));
  CHECK_THAT(input_error_of([&] { eval::read_run_result(dir / "bad.json"); }),
             Catch::Contains("not a list of at least two bins"));
  // Bins without a prediction (which a figure could not pool).
  write_report(dir / "bad.json", with_bins(evaluation_report("abmll", 0, 0.7, 0.1), bins_json(0, 0.5, 0, 1.0)));
  CHECK_THAT(input_error_of([&] { eval::read_run_result(dir / "bad.json"); }),
             Catch::Contains("bad.json") && Catch::Contains("holds no predictions"));
}

TEST_CASE("the table's AUROC and AURC average the seeds that report them, blank where none does", "[report]") {
  ScratchDir dir;
  nlohmann::json a0 = evaluation_report("abmll", 0, 0.7, 0.1), a1 = evaluation_report("abmll", 1, 0.8, 0.2);
  nlohmann::json a2 = evaluation_report("abmll", 2, 0.9, 0.3);
  a0["results"]["aggregate"]["mean_over_tasks"]["auroc"] = 0.6;
  a1["results"]["aggregate"]["mean_over_tasks"]["auroc"] = 0.8;
  a2["results"]["aggregate"]["mean_over_tasks"]["auroc"] = nullptr;  // undefined in every task of that run
  a0["results"]["aggregate"]["mean_over_tasks"]["aurc"] = 0.1;
  a1["results"]["aggregate"]["mean_over_tasks"]["aurc"] = 0.2;
  a2["results"]["aggregate"]["mean_over_tasks"]["aurc"] = 0.3;
  write_report(dir / "runs/a0/report.json", a0);
  write_report(dir / "runs/a1/report.json", a1);
  write_report(dir / "runs/a2/report.json", a2);
  write_report(dir / "runs/p0/report.json", evaluation_report("pretrained", 0, 0.5, 0.3));  // an older report

  const auto rows = eval::results_table(eval::collect_run_results({dir / "runs"}));
  REQUIRE(rows.size() == 2);
  CHECK_FALSE(rows[0].auroc);
  REQUIRE(rows[1].auroc);
  CHECK(rows[1].auroc_seeds == 2);
  CHECK(rows[1].auroc->mean == Approx(0.7));
  CHECK_FALSE(rows[0].aurc);
  REQUIRE(rows[1].aurc);
  CHECK(rows[1].aurc_seeds == 3);
  CHECK(rows[1].aurc->mean == Approx(0.2));
  const std::string md = eval::table_markdown(rows);
  CHECK(md.find("| 0.700 ± 0.141 | 0.200 ± 0.100 | 77.4 (test 75.2) |") != std::string::npos);
  CHECK(md.find("| 0.250 |  |  |  |") != std::string::npos);  // pretrained: Brier, no AUROC, AURC, paper figure
  const std::string csv = eval::table_csv(rows);
  CHECK(csv.find(",auroc_mean,auroc_std,aurc_mean,aurc_std,paper_abmll_accuracy\n") != std::string::npos);
  CHECK(csv.find(",0.700000,0.141421,0.200000,0.100000,77.4 (test 75.2)\n") != std::string::npos);
  CHECK(csv.find(",0.250000,0.000000,,,,,\n") != std::string::npos);

  a0["results"]["aggregate"]["mean_over_tasks"]["auroc"] = 1.5;
  write_report(dir / "bad.json", a0);
  CHECK_THAT(input_error_of([&] { eval::read_run_result(dir / "bad.json"); }),
             Catch::Contains("bad.json") && Catch::Contains("auroc is 1.5, not within [0, 1]"));
}

TEST_CASE("report --by splits rows by config values, ordered as numbers, with a column per key", "[report]") {
  ScratchDir dir;
  // An ablation of beta over two seeds, and a baseline whose runs all have one beta.
  for (const auto& [beta, accuracy] : {std::pair{1e-16, 0.6}, std::pair{1e-7, 0.7}, std::pair{5e-10, 0.8}})
    for (long long seed : {0, 1}) {
      nlohmann::json report = evaluation_report("abmll", seed, accuracy + 0.01 * seed, 0.1);
      report["config"]["outer"] = {{"beta", beta}};
      report["config"]["lora"] = {{"targets", {"q_proj", "v_proj"}}};
      write_report(dir / fmt::format("runs/abmll-{}-{}/report.json", beta, seed), report);
    }
  nlohmann::json lora = evaluation_report("lora", 0, 0.65, 0.2);
  lora["config"]["outer"] = {{"beta", 1e-7}};
  write_report(dir / "runs/lora-0/report.json", lora);

  // Without --by the seeds of one method collide, and the message says how to tell them apart.
  CHECK_THAT(input_error_of([&] { eval::collect_run_results({dir / "runs"}); }),
             Catch::Contains("both report abmll on cls-45") && Catch::Contains("`--by KEY`"));

  const auto runs = eval::collect_run_results({dir / "runs"}, {"outer.beta", "lora.targets"});
  const auto rows = eval::results_table(runs);
  REQUIRE(rows.size() == 4);
  CHECK(rows[0].method == "lora");
  CHECK(rows[0].variant == std::vector<std::pair<std::string, std::string>>{{"outer.beta", "1e-07"},
                                                                            {"lora.targets", ""}});
  // 1e-16 < 5e-10 < 1e-07 as numbers (not as text).
  CHECK(rows[1].variant[0].second == "1e-16");
  CHECK(rows[2].variant[0].second == "5e-10");
  CHECK(rows[3].variant[0].second == "1e-07");
  CHECK(rows[3].variant[1].second == "[\"q_proj\",\"v_proj\"]");
  CHECK(rows[2].seeds == std::vector<long long>{0, 1});
  CHECK(rows[2].accuracy.mean == Approx(0.805));
  CHECK(eval::method_label(rows[1]) == "abmll (outer.beta=1e-16, lora.targets=[\"q_proj\",\"v_proj\"])");
  for (const auto& run : runs)  // every run in exactly one row
    CHECK(std::count_if(rows.begin(), rows.end(), [&](const auto& row) { return eval::in_row(run, row); }) == 1);

  const std::string md = eval::table_markdown(rows);
  CHECK(md.find("| benchmark | model | method | outer.beta | lora.targets | seeds | accuracy (%) |") == 0);
  CHECK(md.find("| cls-45 | Llama-3-8B | abmll | 5e-10 | [\"q_proj\",\"v_proj\"] | 2 | 80.5 ± 0.7 |") !=
        std::string::npos);
  const std::string csv = eval::table_csv(rows);
  CHECK(csv.find("benchmark,model,method,outer.beta,lora.targets,seeds,accuracy_mean,") == 0);
  CHECK(csv.find("cls-45,Llama-3-8B,abmll,1e-16,\"[\"\"q_proj\"\",\"\"v_proj\"\"]\",2,0.605000,") !=
        std::string::npos);
}
