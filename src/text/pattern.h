// The "pattern" of tokenizer.json components (Split pre-tokenizer, Replace normalizer and decoder): either
// {"String": "literal"} or {"Regex": "PCRE-compatible pattern"}. Matches are non-overlapping, leftmost first.
// Thread-safety: immutable after construction.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/regex.h"

namespace abmll::text {

class Pattern {
 public:
  // From a {"String": ...} or {"Regex": ...} object. Throws InputError, naming `component`, for any other shape, an
  // empty literal or a regex that does not compile.
  static Pattern from_json(const nlohmann::json& j, std::string_view component);

  // Every match in `text` (valid UTF-8) as [begin, end) byte offsets.
  std::vector<std::pair<std::size_t, std::size_t>> find_all(std::string_view text) const;
  // `text` with every non-empty match replaced by `content`.
  std::string replace_all(std::string_view text, std::string_view content) const;

 private:
  Pattern() = default;  // only from_json makes one: an empty literal would match everywhere
  std::shared_ptr<const Regex> regex_;  // null for a literal
  std::string literal_;
};

}  // namespace abmll::text
