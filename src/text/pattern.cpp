// Literal or regex patterns of tokenizer.json components. See pattern.h.
#include "text/pattern.h"

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace abmll::text {

Pattern Pattern::from_json(const nlohmann::json& j, std::string_view component) {
  Pattern p;
  if (j.is_object() && j.size() == 1 && j.contains("Regex")) {
    p.regex_ = std::make_shared<const Regex>(j.at("Regex").get<std::string>());
  } else if (j.is_object() && j.size() == 1 && j.contains("String")) {
    p.literal_ = j.at("String").get<std::string>();
    if (p.literal_.empty()) throw InputError(std::string(component) + " has an empty String pattern");
  } else {
    throw InputError(std::string(component) + " pattern must be {\"String\": ...} or {\"Regex\": ...}, got " +
                     j.dump());
  }
  return p;
}

std::vector<std::pair<std::size_t, std::size_t>> Pattern::find_all(std::string_view text) const {
  if (regex_) return regex_->find_all(text);
  std::vector<std::pair<std::size_t, std::size_t>> matches;
  for (std::size_t pos = text.find(literal_); pos != std::string_view::npos;
       pos = text.find(literal_, pos + literal_.size()))
    matches.emplace_back(pos, pos + literal_.size());
  return matches;
}

std::string Pattern::replace_all(std::string_view text, std::string_view content) const {
  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;
  for (auto [begin, end] : find_all(text)) {
    if (end == begin) continue;
    out.append(text.substr(copied, begin - copied));
    out.append(content);
    copied = end;
  }
  out.append(text.substr(copied));
  return out;
}

}  // namespace abmll::text
