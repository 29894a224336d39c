// Config parsing: every kind of bad config gives an InputError naming the file, the line and the problem;
// good configs, overrides and the resolved-config echo behave as documented.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "config/config_loader.h"
#include "config/config_schema.h"
#include "test_support.h"
#include "util/error.h"

using abmll::ExperimentConfig;
using abmll::InputError;
using abmll::load_experiment_config;
using abmll::test::ScratchDir;
using abmll::test::write_text;
using Catch::Matchers::Contains;

namespace {

const char* kMinimal =
    "model:\n"
    "  path: /models/llama\n"
    "data:\n"
    "  path: /data/crossfit\n";

// Loads `yaml` written to a file named config.yaml; returns the error message, or "" if it loaded.
std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  ScratchDir dir;
  write_text(dir / "config.yaml", yaml);
  try {
    load_experiment_config(dir / "config.yaml", overrides);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

ExperimentConfig load(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  ScratchDir dir;
  write_text(dir / "config.yaml", yaml);
  return load_experiment_config(dir / "config.yaml", overrides);
}

}  // namespace

TEST_CASE("a minimal config takes every other key's default", "[config]") {
  ExperimentConfig c = load(kMinimal);
  CHECK(c.model.path == "/models/llama");
  CHECK(c.data.path == "/data/crossfit");
  CHECK(c.method == abmll::Method::abmll);
  CHECK(c.posterior.family == abmll::PosteriorFamily::factor);
  CHECK(c.outer.beta == 1e-7);
  CHECK(c.eval.bins == 15);
  CHECK(c.lora.targets == std::vector<std::string>{"q_proj", "v_proj"});
}

TEST_CASE("values of every type are read", "[config]") {
  ExperimentConfig c = load(std::string(kMinimal) +
                            "method: reptile\n"
                            "lora: {rank: 8, alpha: 16.5, rslora: true, targets: [q_proj, k_proj, down_proj]}\n"
                            "posterior:\n  family: weight\n  weight_scale: softplus\n"
                            "outer:\n  beta: 5e-10\n  second_order: True\n");
  CHECK(c.method == abmll::Method::reptile);
  CHECK(c.lora.rank == 8);
  CHECK(c.lora.alpha == 16.5);
  CHECK(c.lora.rslora);
  CHECK(c.lora.targets == std::vector<std::string>{"q_proj", "k_proj", "down_proj"});
  CHECK(c.posterior.family == abmll::PosteriorFamily::weight);
  CHECK(c.posterior.weight_scale == abmll::WeightScale::softplus);
  CHECK(c.outer.beta == 5e-10);
  CHECK(c.outer.second_order);
}

TEST_CASE("unknown keys are refused with their line and a suggestion", "[config]") {
  std::string e = error_of(std::string(kMinimal) + "outer:\n  lrr: 0.1\n");
  CHECK_THAT(e, Contains("config.yaml:6:3") && Contains("unknown key 'outer.lrr'") &&
                    Contains("did you mean 'outer.lr'?"));
  e = error_of(std::string(kMinimal) + "outr:\n  lr: 0.1\n");
  CHECK_THAT(e, Contains("config.yaml:5:1") && Contains("unknown key 'outr'"));
  e = error_of(std::string(kMinimal) + "mehtod: abmll\n");
  CHECK_THAT(e, Contains("did you mean 'method'?"));
}

TEST_CASE("wrong types are refused with the line, the key and what was expected", "[config]") {
  CHECK_THAT(error_of(std::string(kMinimal) + "outer:\n  lr: fast\n"),
             Contains("config.yaml:6:7") && Contains("outer.lr: expected a number, got 'fast'"));
  CHECK_THAT(error_of(std::string(kMinimal) + "lora:\n  rank: 8.5\n"),
             Contains("lora.rank: expected an integer, got '8.5'"));
  CHECK_THAT(error_of(std::string(kMinimal) + "lora:\n  rslora: yes please\n"),
             Contains("lora.rslora: expected true or false"));
  CHECK_THAT(error_of(std::string(kMinimal) + "lora:\n  targets: q_proj\n"),
             Contains("lora.targets: expected a list, got 'q_proj'"));
  CHECK_THAT(error_of(std::string(kMinimal) + "lora: 16\n"), Contains("'lora' is a section"));
  CHECK_THAT(error_of(std::string(kMinimal) + "posterior:\n  family: factr\n"),
             Contains("expected one of factor|weight, got 'factr' (did you mean 'factor'?)"));
  CHECK_THAT(error_of(std::string(kMinimal) + "outer:\n  lr:\n"), Contains("outer.lr: expected a number, got nothing"));
  CHECK_THAT(error_of(std::string(kMinimal) + "outer:\n  lr: .nan\n"), Contains("expected a number"));
}

TEST_CASE("values out of range are refused", "[config]") {
  CHECK_THAT(error_of(std::string(kMinimal) + "lora:\n  rank: 0\n"),
             Contains("config.yaml:6:9") && Contains("lora.rank: must be between 1 and 4096, got 0"));
  CHECK_THAT(error_of(std::string(kMinimal) + "outer:\n  lr: -1e-3\n"), Contains("outer.lr: must be positive"));
  CHECK_THAT(error_of(std::string(kMinimal) + "lora:\n  dropout: 1.0\n"), Contains("lora.dropout: must be in [0, 1)"));
  CHECK_THAT(error_of(std::string(kMinimal) + "lora:\n  targets: [q_proj, qproj]\n"),
             Contains("unknown module 'qproj'") && Contains("did you mean 'q_proj'?"));
  CHECK_THAT(error_of(std::string(kMinimal) + "run:\n  device: gpu\n"), Contains("must be auto, cpu, cuda or cuda:N"));
  CHECK_THAT(error_of(std::string(kMinimal) + "run:\n  seed: 99999999999999999999999\n"), Contains("out of range"));
}

TEST_CASE("missing required keys and files are named", "[config]") {
  CHECK_THAT(error_of("model:\n  path: /m\n"),
             Contains("config.yaml: missing required key 'data.path'") && Contains("--set data.path="));
  CHECK_THAT(error_of(""), Contains("missing required key 'model.path'"));
  try {
    load_experiment_config(std::filesystem::path("/nonexistent/exp.yaml"), {});
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK_THAT(e.what(), Contains("config file '/nonexistent/exp.yaml' does not exist"));
  }
}

TEST_CASE("malformed YAML, duplicates and a non-mapping top level are refused with their place", "[config]") {
  CHECK_THAT(error_of(std::string(kMinimal) + "outer:\n  lr: [1, 2\n"), Contains("config.yaml:") && Contains("invalid YAML"));
  CHECK_THAT(error_of(std::string(kMinimal) + "method: abmll\nmethod: lora\n"),
             Contains("config.yaml:6:1") && Contains("key 'method' is given twice"));
  CHECK_THAT(error_of("- a\n- b\n"), Contains("top level must be a mapping"));
}

TEST_CASE("command-line overrides apply in order with the same validation", "[config]") {
  ExperimentConfig c = load(kMinimal, {"outer.lr=3e-4", "lora.targets=[q_proj, o_proj]", "outer.lr=5e-4",
                                       "method=abmll_icl"});
  CHECK(c.outer.lr == 5e-4);
  CHECK(c.lora.targets == std::vector<std::string>{"q_proj", "o_proj"});
  CHECK(c.method == abmll::Method::abmll_icl);
  // Required keys can come from --set alone.
  c = load_experiment_config(std::nullopt, {"model.path=/m", "data.path=/d"});
  CHECK(c.model.path == "/m");

  CHECK_THAT(error_of(kMinimal, {"outer.lrr=1"}), Contains("--set outer.lrr=1: unknown key") &&
                                                      Contains("did you mean 'outer.lr'?"));
  CHECK_THAT(error_of(kMinimal, {"outer.lr=abc"}), Contains("--set outer.lr=abc: expected a number, got 'abc'"));
  CHECK_THAT(error_of(kMinimal, {"outer.lr"}), Contains("expected key=value"));
  CHECK_THAT(error_of(kMinimal, {"outer=1"}), Contains("'outer' is a section"));
  CHECK_THAT(error_of(kMinimal, {"lora.targets=[q_proj"}), Contains("not valid YAML"));
}

TEST_CASE("the resolved config echoed as YAML reads back to the same config", "[config]") {
  ExperimentConfig c = load(std::string(kMinimal) + "posterior: {scale_floor: 2.0611536224385579e-09}\n",
                            {"data.prompt_template=Q: {input} \"quoted\" A:", "outer.beta=1e-16"});
  const std::string yaml = abmll::config_to_yaml(c);
  ExperimentConfig back = load(yaml);
  CHECK(abmll::config_to_json(back) == abmll::config_to_json(c));
  CHECK(back.posterior.scale_floor == c.posterior.scale_floor);
  CHECK(back.data.prompt_template == "Q: {input} \"quoted\" A:");
}

TEST_CASE("help lists every key with its type, default and help", "[config]") {
  const std::string help = abmll::config_help_text();
  for (const auto& key : abmll::config_keys()) {
    CHECK_THAT(help, Contains(key.path));
    CHECK_THAT(help, Contains(key.help));
  }
  CHECK_THAT(help, Contains("(required)"));
  CHECK_THAT(help, Contains("one of factor|weight"));
}

TEST_CASE("the example configs in configs/ load", "[config]") {
  std::size_t seen = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(ABMLL_SOURCE_DIR "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    INFO(entry.path().string());
    CHECK_NOTHROW(load_experiment_config(entry.path(), {}));
    ++seen;
  }
  CHECK(seen >= 3);
}

TEST_CASE("floats are echoed in a form YAML 1.1 readers also take for numbers", "[config]") {
  ExperimentConfig c = load(kMinimal, {"outer.beta=5e-10", "outer.gamma=1e+20"});
  const std::string yaml = abmll::config_to_yaml(c);
  CHECK_THAT(yaml, Contains("beta: 5.0e-10"));
  CHECK_THAT(yaml, Contains("gamma: 1.0e+20"));
  CHECK(load(yaml).outer.beta == 5e-10);
}
