// Helpers shared by the C++ tests: scratch folders, small file utilities, expected input errors.
#pragma once

#include <catch2/catch.hpp>

#include <exception>
#include <filesystem>
#include <string>
#include <string_view>

#include "util/error.h"

namespace abmll::test {

// A fresh, empty folder under the system temp folder, removed when the object goes away.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

void write_text(const std::filesystem::path& path, std::string_view text);
std::string read_text(const std::filesystem::path& path);

// Message of the InputError `body` throws (fails the test if it throws nothing or something else).
template <class F>
std::string input_error_of(F&& body) {
  try {
    body();
  } catch (const abmll::InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("expected InputError, got: " << e.what());
  }
  FAIL("expected InputError, nothing thrown");
  return {};
}

}  // namespace abmll::test
