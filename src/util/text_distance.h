// Edit distance for "did you mean ...?" suggestions on misspelt keys and names.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace abmll {

// Levenshtein distance (insert, delete, substitute; each costs 1).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, or "" when none is close enough to be a plausible typo
// (distance at most max(2, |word| / 3)).
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace abmll
