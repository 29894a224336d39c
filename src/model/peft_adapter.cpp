// PEFT LoRA folders (see peft_adapter.h).
#include "model/peft_adapter.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>
#include <set>
#include <string_view>
#include <vector>

#include "io/safetensors_writer.h"
#include "io/tensor_store.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace abmll::model {
namespace {

constexpr std::string_view kConfigFile = "adapter_config.json";
constexpr std::string_view kWeightsFile = "adapter_model.safetensors";
constexpr std::string_view kPrefix = "base_model.model.";

std::string tensor_name(const LinearSite& site, char factor) {
  return fmt::format("{}{}.lora_{}.weight", kPrefix, projection_path(site.layer, site.projection), factor);
}

}  // namespace

BatchedLora load_peft_adapter(const std::filesystem::path& dir, const ModelConfig& config, at::Device device) {
  const std::filesystem::path config_path = dir / kConfigFile, weights_path = dir / kWeightsFile;
  if (!std::filesystem::is_regular_file(config_path))
    throw InputError(fmt::format("{}: no {} (is this a PEFT adapter folder?)", dir.string(), kConfigFile));
  if (!std::filesystem::is_regular_file(weights_path))
    throw InputError(fmt::format("{}: no {} (only safetensors adapters are read)", dir.string(), kWeightsFile));
  std::string text;
  {
    std::ifstream in(config_path, std::ios::binary);
    text.assign(std::istreambuf_iterator<char>(in), {});
    if (!in.good() && !in.eof()) throw InputError(fmt::format("cannot read {}", config_path.string()));
  }
  BatchedLora lora(parse_peft_adapter_config(text, config_path.string()), 1);

  const io::TensorStore store = io::TensorStore::open(weights_path);
  std::set<std::string> expected;
  for (const LinearSite& site : lora_sites(config, lora.settings())) {
    const auto shape = projection_shape(config, site.projection);  // [out, in]
    const int64_t r = lora.settings().rank;
    LoraFactors f;
    for (char factor : {'A', 'B'}) {
      const std::string name = tensor_name(site, factor);
      expected.insert(name);
      if (!store.has(name))
        throw InputError(fmt::format("{}: no tensor '{}', which target_modules implies (an adapter for another "
                                     "model?)", weights_path.string(), name));
      at::Tensor t = store.tensor(name);
      const std::vector<int64_t> want = factor == 'A' ? std::vector<int64_t>{r, shape[1]}
                                                      : std::vector<int64_t>{shape[0], r};
      if (t.sizes().vec() != want)
        throw InputError(fmt::format("{}: tensor '{}' is [{}], expected [{}] (r={}; an adapter for another "
                                     "model?)", weights_path.string(), name, fmt::join(t.sizes(), ", "),
                                     fmt::join(want, ", "), r));
      if (!at::isFloatingType(t.scalar_type()))
        throw InputError(fmt::format("{}: tensor '{}' has dtype {}", weights_path.string(), name,
                                     c10::toString(t.scalar_type())));
      t = t.to(device, at::kFloat, /*non_blocking=*/false, /*copy=*/true).unsqueeze(0);  // [1, ...]
      (factor == 'A' ? f.a : f.b) = t;
    }
    lora.set_factors(site, std::move(f));
  }
  for (const auto& name : store.names())
    if (expected.count(name) == 0)
      throw InputError(fmt::format("{}: unexpected tensor '{}' (only lora_A / lora_B of the target_modules of "
                                   "layers 0..{} are supported)", weights_path.string(), name,
                                   config.num_layers - 1));
  return lora;
}

void write_peft_adapter(const std::filesystem::path& dir, const BatchedLora& lora, const ModelConfig& config,
                        int64_t group, const std::string& base_model) {
  const LoraSettings& s = lora.settings();
  if (group < 0 || group >= lora.groups())
    throw Error(fmt::format("write_peft_adapter: group {} of {}", group, lora.groups()));
  io::NamedTensors tensors;
  for (const LinearSite& site : lora_sites(config, s)) {
    const LoraFactors* f = lora.factors(site);
    if (f == nullptr)
      throw Error(fmt::format("write_peft_adapter: no factors for {}", projection_path(site.layer, site.projection)));
    tensors.emplace_back(tensor_name(site, 'A'), f->a[group].detach().to(at::kCPU, at::kFloat).contiguous());
    tensors.emplace_back(tensor_name(site, 'B'), f->b[group].detach().to(at::kCPU, at::kFloat).contiguous());
  }
  std::filesystem::create_directories(dir);
  io::write_safetensors(dir / kWeightsFile, tensors, {{"format", "pt"}});
  write_file_atomic(dir / kConfigFile, peft_adapter_config_json(s, base_model).dump(2) + "\n");
}

}  // namespace abmll::model
