// TemplateProcessing for single sequences. See post_processor.h.
#include "text/post_processor.h"

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace abmll::text {

void PostProcessor::add_processors(const nlohmann::json& j, std::vector<std::vector<Item>>& templates) {
  const std::string type = j.at("type").get<std::string>();
  if (type == "Sequence") {
    for (const auto& item : j.at("processors")) add_processors(item, templates);
  } else if (type == "ByteLevel") {
    // Offsets only.
  } else if (type == "TemplateProcessing") {
    const auto& special = j.at("special_tokens");
    std::vector<Item> items;
    for (const auto& piece : j.at("single")) {
      Item item;
      if (piece.contains("Sequence")) {
        const auto name = piece.at("Sequence").at("id").get<std::string>();
        if (name != "A")
          throw InputError("post_processor TemplateProcessing: single template refers to sequence '" + name +
                           "' (only A exists for one sequence)");
        item.is_sequence = true;
      } else if (piece.contains("SpecialToken")) {
        const auto name = piece.at("SpecialToken").at("id").get<std::string>();
        if (!special.contains(name))
          throw InputError("post_processor TemplateProcessing: special token '" + name +
                           "' is used in the template but missing from special_tokens");
        item.ids = special.at(name).at("ids").get<std::vector<int32_t>>();
      } else {
        throw InputError("post_processor TemplateProcessing: template item " + piece.dump() +
                         " is neither Sequence nor SpecialToken");
      }
      items.push_back(std::move(item));
    }
    templates.push_back(std::move(items));
  } else {
    throw InputError("post_processor type '" + type +
                     "' is not supported (supported: TemplateProcessing, ByteLevel, Sequence)");
  }
}

PostProcessor PostProcessor::from_json(const nlohmann::json& j) {
  PostProcessor p;
  if (!j.is_null()) add_processors(j, p.templates_);
  return p;
}

std::vector<int32_t> PostProcessor::apply(std::vector<int32_t> ids) const {
  for (const auto& items : templates_) {
    std::vector<int32_t> out;
    out.reserve(ids.size() + 4);
    for (const auto& item : items) {
      if (item.is_sequence) out.insert(out.end(), ids.begin(), ids.end());
      else out.insert(out.end(), item.ids.begin(), item.ids.end());
    }
    ids = std::move(out);
  }
  return ids;
}

nlohmann::json bos_template_json(const std::string& bos, int32_t bos_id) {
  auto special = [&](int type_id) { return nlohmann::json{{"SpecialToken", {{"id", bos}, {"type_id", type_id}}}}; };
  auto sequence = [](const char* id, int type_id) {
    return nlohmann::json{{"Sequence", {{"id", id}, {"type_id", type_id}}}};
  };
  return {{"type", "TemplateProcessing"},
          {"single", {special(0), sequence("A", 0)}},
          {"pair", {special(0), sequence("A", 0), special(1), sequence("B", 1)}},
          {"special_tokens", {{bos, {{"id", bos}, {"ids", {bos_id}}, {"tokens", {bos}}}}}}};
}

}  // namespace abmll::text
