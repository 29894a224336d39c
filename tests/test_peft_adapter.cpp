// PEFT adapter folders: config parsing and refusal of unsupported options (naming file and field), a written adapter
// reads back identically, and broken folders name the tensor. Parity with PEFT itself (both directions) is
// tests/python/test_lora_parity.py, which also drives the hidden "[.peft_export]" case below to write an adapter.
#include <catch2/catch.hpp>

#include <ATen/Context.h>
#include <ATen/TensorOperators.h>
#include <ATen/ops/randn.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <string>

#include "io/safetensors_writer.h"
#include "io/tensor_store.h"
#include "model/peft_adapter.h"
#include "test_support.h"
#include "tiny_model.h"
#include "util/error.h"

using namespace abmll::model;
using abmll::test::ScratchDir;

namespace {

const char* kConfig = R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_rslora": false, "lora_dropout": 0.05,
  "target_modules": ["q_proj", "v_proj", "down_proj"], "bias": "none", "use_dora": false, "rank_pattern": {},
  "alpha_pattern": {}, "modules_to_save": null, "layers_to_transform": null, "init_lora_weights": true,
  "task_type": "CAUSAL_LM", "peft_version": "0.21.2", "loftq_config": {}, "megatron_core": "megatron.core"})";

std::string with(const std::string& key, const nlohmann::json& value) {
  nlohmann::json j = nlohmann::json::parse(kConfig);
  j[key] = value;
  return j.dump();
}

// The message of the InputError `f` throws, or "" if it throws none.
template <class F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const abmll::InputError& e) {
    return e.what();
  }
  return "";
}

BatchedLora random_adapter(const ModelConfig& c, int64_t groups, double alpha, bool rslora) {
  LoraSettings s;
  s.rank = 3;
  s.alpha = alpha;
  s.rslora = rslora;
  // (Latent attention: every projection it has, each shape differing.)
  const std::vector<Projection> all = model_projections(c);
  // (Qwen3.5: three of its DeltaNet layers' five, two of its attention layers' and one of every layer's MLP, which
  // Qwen3.5-MoE has not; Granite-4.0: its Mamba-2 layers' two, and its shared MLP's output, which its mixtures of
  // experts do not adapt.)
  s.targets = c.mla.defined()          ? std::set<Projection>(all.begin(), all.end())
              : c.mamba.defined()      ? std::set<Projection>{Projection::mamba_in, Projection::mamba_out,
                                                              Projection::k, Projection::o}
              : c.recurrent()          ? std::set<Projection>{Projection::delta_qkv, Projection::delta_b,
                                                              Projection::delta_out, Projection::k, Projection::o}
              : c.fused_qkv            ? std::set<Projection>{Projection::qkv, Projection::o, Projection::gate_up}
              : c.fused_gate_up        ? std::set<Projection>{Projection::k, Projection::o, Projection::gate_up}
              : c.moe.num_experts > 0  ? std::set<Projection>{Projection::q, Projection::k, Projection::o}
                                       : std::set<Projection>{Projection::k, Projection::o, Projection::up};
  if (c.recurrent() && c.moe.num_experts == 0)
    s.targets.insert(c.mamba.defined() ? Projection::shared_down : Projection::up);
  BatchedLora lora(s, groups);
  for (const LinearSite& site : lora_sites(c, s)) {
    const auto shape = projection_shape(c, site.projection);
    lora.set_factors(site, {at::randn({groups, s.rank, shape[1]}) * 0.3, at::randn({groups, shape[0], s.rank}) * 0.3});
  }
  return lora;
}

}  // namespace

TEST_CASE("model peft: adapter_config.json is read, unsupported options are refused by name", "[model][lora]") {
  const PeftAdapterConfig read = parse_peft_adapter_config(kConfig, "a/adapter_config.json");
  const LoraSettings& s = read.settings;
  CHECK(s.rank == 4);
  CHECK(s.alpha == 8);
  CHECK(s.dropout == 0.05);
  CHECK((s.targets == std::set<Projection>{Projection::q, Projection::v, Projection::down}));
  CHECK(read.target_pattern.empty());
  CHECK(parse_peft_adapter_config(with("target_modules", "all-linear"), "x").settings.targets.size() == 7);
  CHECK(parse_peft_adapter_config(with("use_rslora", true), "x").settings.scale() == 4.0);
  // A regular expression: the tensors will say which modules.
  const PeftAdapterConfig pattern = parse_peft_adapter_config(with("target_modules", ".*q_proj"), "x");
  CHECK((pattern.target_pattern == ".*q_proj" && pattern.targets_from_tensors));
  CHECK(pattern.settings.targets.empty());
  // Module paths, as PEFT writes "all-linear" resolved for small models: from the tensors too.
  const PeftAdapterConfig paths =
      parse_peft_adapter_config(with("target_modules", {"model.layers.0.mlp.up_proj", "q_proj"}), "x");
  CHECK((paths.targets_from_tensors && paths.target_pattern.empty() && paths.settings.targets.empty()));
  CHECK_FALSE(read.targets_from_tensors);
  // exclude_modules leaves out some of the targets: from the tensors too.
  const PeftAdapterConfig excluded = parse_peft_adapter_config(with("exclude_modules", ".*vision_tower.*"), "x");
  CHECK((excluded.targets_from_tensors && excluded.settings.targets.empty()));
  CHECK_FALSE(parse_peft_adapter_config(with("exclude_modules", nullptr), "x").targets_from_tensors);
  // What abmll writes for a multimodal model's language model.
  const nlohmann::json written = peft_adapter_config_json(s, "", /*multimodal=*/true);
  CHECK(written["target_modules"] == R"(.*language_model.*\.(q_proj|v_proj|down_proj))");
  CHECK(parse_peft_adapter_config(written.dump(), "x").target_pattern == written["target_modules"]);

  const std::vector<std::pair<std::string, nlohmann::json>> refused = {
      {"use_dora", true},
      {"bias", "lora_only"},
      {"rank_pattern", {{"q_proj", 8}}},
      {"alpha_pattern", {{"q_proj", 8}}},
      {"modules_to_save", {"lm_head"}},
      {"layers_to_transform", {0}},
      {"lora_bias", true},
      {"fan_in_fan_out", true},
      {"init_lora_weights", "pissa"},
      {"target_modules", ""},
      {"exclude_modules", 3},
      {"target_modules", {"q_proj", "lm_head"}},
      {"peft_type", "IA3"},
      {"r", 0},
      {"some_future_option", {{"enabled", true}}},
  };
  for (const auto& [field, value] : refused) {
    INFO(field << " = " << value.dump());
    const std::string message =
        input_error([&] { parse_peft_adapter_config(with(field, value), "a/adapter_config.json"); });
    CHECK(message.find("a/adapter_config.json") != std::string::npos);
    CHECK(message.find(field) != std::string::npos);
  }
  CHECK_THROWS_AS(parse_peft_adapter_config("{", "x"), abmll::InputError);
}

TEST_CASE("model peft: a written adapter reads back identically, a broken folder names the tensor", "[model][lora]") {
  ScratchDir dir;
  abmll::test::write_tiny_model(dir / "model", abmll::test::TinyModel::llama31);
  const ModelConfig c = load_model_config(dir / "model");
  at::manual_seed(9);
  const BatchedLora lora = random_adapter(c, 2, 6.5, true);
  write_peft_adapter(dir / "adapter", lora, c, /*group=*/1, "some/base");
  const BatchedLora back = load_peft_adapter(dir / "adapter", c);
  CHECK(back.groups() == 1);
  CHECK(back.settings().rank == 3);
  CHECK(back.settings().alpha == 6.5);
  CHECK(back.settings().rslora);
  CHECK(back.all_factors().size() == lora.all_factors().size());
  for (const auto& [site, f] : lora.all_factors()) {
    CHECK(back.factors(site)->a[0].equal(f.a[1]));
    CHECK(back.factors(site)->b[0].equal(f.b[1]));
  }

  // A tensor missing, one mis-shaped, one unexpected.
  const auto store = abmll::io::TensorStore::open(dir / "adapter" / "adapter_model.safetensors");
  const std::string victim = "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight";
  auto rewrite = [&](auto edit) {
    abmll::io::NamedTensors tensors;
    for (const auto& name : store.names()) tensors.emplace_back(name, store.tensor(name).clone());
    edit(tensors);
    abmll::io::write_safetensors(dir / "broken" / "adapter_model.safetensors", tensors);
    std::filesystem::copy_file(dir / "adapter" / "adapter_config.json", dir / "broken" / "adapter_config.json",
                               std::filesystem::copy_options::overwrite_existing);
    return input_error([&] { load_peft_adapter(dir / "broken", c); });
  };
  std::string message = rewrite([&](abmll::io::NamedTensors& t) {
    std::erase_if(t, [&](const auto& p) { return p.first == victim; });
  });
  CHECK(message.find(victim) != std::string::npos);
  message = rewrite([&](abmll::io::NamedTensors& t) {
    for (auto& [name, tensor] : t)
      if (name == victim) tensor = at::randn({48, 4});
  });
  CHECK(message.find(victim) != std::string::npos);
  CHECK(message.find("[48, 4]") != std::string::npos);
  message = rewrite([&](abmll::io::NamedTensors& t) {
    t.emplace_back("base_model.model.model.layers.2.self_attn.k_proj.lora_A.weight", at::randn({3, 32}));
  });
  CHECK(message.find("layers.2.self_attn.k_proj") != std::string::npos);
  CHECK(input_error([&] { load_peft_adapter(dir / "nowhere", c); }).find("adapter_config.json") != std::string::npos);
}

TEST_CASE("model peft: a target_modules pattern is read from the tensors, the same modules in every layer",
          "[model][lora]") {
  ScratchDir dir;
  abmll::test::write_tiny_model(dir / "model", abmll::test::TinyModel::llama31);
  const ModelConfig c = load_model_config(dir / "model");
  at::manual_seed(3);
  const BatchedLora lora = random_adapter(c, 1, 4, false);  // k, o, up
  write_peft_adapter(dir / "adapter", lora, c);
  const auto store = abmll::io::TensorStore::open(dir / "adapter" / "adapter_model.safetensors");
  auto write_with_pattern = [&](const std::string& folder, auto keep) {
    abmll::io::NamedTensors tensors;
    for (const auto& name : store.names())
      if (keep(name)) tensors.emplace_back(name, store.tensor(name).clone());
    abmll::io::write_safetensors(dir / folder / "adapter_model.safetensors", tensors);
    nlohmann::json j = nlohmann::json::parse(R"({"peft_type": "LORA", "r": 3, "lora_alpha": 4})");
    j["target_modules"] = R"(.*\.(k_proj|o_proj|up_proj))";
    std::ofstream(dir / folder / "adapter_config.json") << j.dump();
  };
  write_with_pattern("pattern", [](const std::string&) { return true; });
  const BatchedLora back = load_peft_adapter(dir / "pattern", c);
  CHECK((back.settings().targets == std::set<Projection>{Projection::k, Projection::o, Projection::up}));
  for (const auto& [site, f] : lora.all_factors()) CHECK(back.factors(site)->a[0].equal(f.a[0]));

  // Layer 1 without its up_proj: not what abmll can apply.
  write_with_pattern("uneven", [](const std::string& name) { return name.find("layers.1.mlp.up_proj") == name.npos; });
  const std::string message = input_error([&] { load_peft_adapter(dir / "uneven", c); });
  CHECK(message.find("uneven") != std::string::npos);
  CHECK(message.find("[k_proj, o_proj, up_proj] in layer 0 but [k_proj, o_proj] in layer 1") != std::string::npos);
}

// Hidden: run by tests/python/test_lora_parity.py. Writes group 1 of a random 2-group adapter for the model folder
// $ABMLL_PEFT_MODEL to the folder $ABMLL_PEFT_OUT, so that PEFT can load what abmll writes.
TEST_CASE("model peft: write a random adapter for the Python parity test", "[.peft_export]") {
  const char* model = std::getenv("ABMLL_PEFT_MODEL");
  const char* out = std::getenv("ABMLL_PEFT_OUT");
  REQUIRE(model != nullptr);
  REQUIRE(out != nullptr);
  const ModelConfig c = load_model_config(model);
  at::manual_seed(2024);
  write_peft_adapter(out, random_adapter(c, 2, 5, false), c, 1, model);
}
