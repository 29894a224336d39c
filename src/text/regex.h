// A compiled PCRE2 regular expression in UTF + UCP mode (\s, \p{L}, \w... follow Unicode), JIT-compiled when the
// platform allows. Used for the pre-tokenizer Split patterns of Llama-3 and Qwen2, which need look-ahead `(?!\S)`,
// inline case-insensitive groups `(?i:...)` and Unicode properties, so std::regex will not do.
// Thread-safety: a Regex is immutable after construction; find_all may be called from several threads at once.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace abmll::text {

class Regex {
 public:
  // Throws InputError with the PCRE2 message and offset when `pattern` does not compile.
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  const std::string& pattern() const { return pattern_; }

  // Every non-overlapping match in `text` (valid UTF-8), leftmost first, as [begin, end) byte offsets. An empty
  // match is reported and the search resumes one character further, as the reference (Oniguruma) does.
  std::vector<std::pair<std::size_t, std::size_t>> find_all(std::string_view text) const;

 private:
  struct Impl;
  std::string pattern_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace abmll::text
