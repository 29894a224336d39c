// Precompiled header of abmll_core and the tests: the expensive, stable headers most files include.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/Functions.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>
