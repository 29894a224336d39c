#include <catch2/catch.hpp>

#include "util/text_distance.h"

using abmll::closest_match;
using abmll::edit_distance;

TEST_CASE("edit distance counts insertions, deletions and substitutions", "[util]") {
  CHECK(edit_distance("", "") == 0);
  CHECK(edit_distance("abc", "") == 3);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("outer.lr", "outer.lrr") == 1);
  CHECK(edit_distance("flaw", "lawn") == 2);
}

TEST_CASE("closest match suggests plausible typos only", "[util]") {
  const std::vector<std::string> keys = {"outer.lr", "outer.beta", "inner.lr", "lora.rank"};
  CHECK(closest_match("outer.lrr", keys) == "outer.lr");
  CHECK(closest_match("outer.betta", keys) == "outer.beta");
  CHECK(closest_match("lora.rnak", keys) == "lora.rank");
  CHECK(closest_match("completely.different", keys).empty());
}
