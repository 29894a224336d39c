#include <catch2/catch.hpp>

#include "test_support.h"
#include "util/atomic_file.h"
#include "util/error.h"

using abmll::AtomicFile;
using abmll::test::read_text;
using abmll::test::ScratchDir;

namespace {
std::size_t count_entries(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}
}  // namespace

TEST_CASE("atomic write creates folders and replaces the target whole", "[util]") {
  ScratchDir dir;
  const auto target = dir / "a/b/file.txt";
  abmll::write_file_atomic(target, "first");
  CHECK(read_text(target) == "first");
  abmll::write_file_atomic(target, "second, longer");
  CHECK(read_text(target) == "second, longer");
  CHECK(count_entries(target.parent_path()) == 1);  // no temporary left behind
}

TEST_CASE("an atomic file dropped without commit leaves the old content and no temporary", "[util]") {
  ScratchDir dir;
  const auto target = dir / "file.txt";
  abmll::write_file_atomic(target, "old");
  {
    AtomicFile file(target);
    file.write("partial new content");
    // no commit: as if an exception unwound the writer
  }
  CHECK(read_text(target) == "old");
  CHECK(count_entries(dir.path()) == 1);
}

TEST_CASE("atomic write into an unwritable place is an error, not a crash", "[util]") {
  ScratchDir dir;
  abmll::test::write_text(dir / "plain", "x");
  // A path whose parent is a regular file cannot be created.
  CHECK_THROWS_AS(abmll::write_file_atomic(dir / "plain/child.txt", "y"), abmll::Error);
}
