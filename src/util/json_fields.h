// Typed fields of JSON objects read from files (untrusted): the value, or InputError naming the field. nlohmann's
// get<int64_t> would convert a float (undefined behaviour beyond long's range), so integers are checked first.
#pragma once

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdint>

#include "util/error.h"

namespace abmll {

inline std::int64_t integer_field(const nlohmann::json& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_number_integer())
    throw InputError(fmt::format("no integer '{}'", key));
  return object[key].get<std::int64_t>();
}

inline double number_field(const nlohmann::json& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_number())
    throw InputError(fmt::format("no number '{}'", key));
  return object[key].get<double>();
}

}  // namespace abmll
