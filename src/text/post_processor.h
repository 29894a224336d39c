// The "post_processor" stage of a tokenizer.json, for a single sequence: adds the special tokens of the model's
// template around the encoded text when special tokens are asked for. Supported: TemplateProcessing (Llama-3's
// "<|begin_of_text|> $A"), ByteLevel (which only adjusts offsets, so leaves ids alone), a Sequence of them, null.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace abmll::text {

class PostProcessor {
 public:
  // Throws InputError naming an unsupported type, or a template that refers to an unknown special token.
  static PostProcessor from_json(const nlohmann::json& j);

  // `ids` of one sequence with the template applied.
  std::vector<int32_t> apply(std::vector<int32_t> ids) const;

 private:
  // The single-sequence template: each item is either the sequence itself or fixed ids.
  struct Item {
    bool is_sequence = false;
    std::vector<int32_t> ids;
  };
  static void add_processors(const nlohmann::json& j, std::vector<std::vector<Item>>& templates);
  std::vector<std::vector<Item>> templates_;  // applied in order (a Sequence may hold several)
};

// The TemplateProcessing post-processor of Llama-3's tokenizer.json: `bos` (id `bos_id`) before each sequence,
// "bos $A" and, for pairs, "bos $A bos $B". For writing tokenizer.json files (the demo model's, test fixtures).
nlohmann::json bos_template_json(const std::string& bos, int32_t bos_id);

}  // namespace abmll::text
