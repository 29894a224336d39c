#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "config/config_loader.h"
#include "io/report.h"
#include "test_support.h"

TEST_CASE("a report records what ran, where, how long and the results", "[report]") {
  abmll::test::ScratchDir dir;
  abmll::Report report("meta-train", {"abmll", "meta-train", "--config", "x.yaml"});
  auto config = abmll::load_experiment_config(std::nullopt, {"model.path=/m", "data.path=/d"});
  report.set_config(abmll::config_to_json(config));
  report.set_device("cpu", "CPU: test");
  report.add_timing("load_seconds", 1.5);
  report.set_result("accuracy", 0.75);
  report.write(dir / "out/report.json");

  const auto json = nlohmann::json::parse(abmll::test::read_text(dir / "out/report.json"));
  CHECK(json["schema_version"] == abmll::kReportSchemaVersion);
  CHECK(json["command"] == "meta-train");
  CHECK(json["argv"][2] == "--config");
  CHECK(json["config"]["model"]["path"] == "/m");
  CHECK(json["config"]["outer"]["beta"] == 1e-7);
  CHECK(json["device"]["name"] == "cpu");
  CHECK(json["timings"]["load_seconds"] == 1.5);
  CHECK(json["timings"]["total_seconds"].get<double>() >= 0);
  CHECK(json["results"]["accuracy"] == 0.75);
  CHECK(json["abmll"]["git_commit"].is_string());
  CHECK(json["abmll"]["libraries"]["libtorch"].is_string());
  CHECK(json["machine"]["cpu"].is_string());
  CHECK(json["created_utc"].get<std::string>().size() == 20);
}
