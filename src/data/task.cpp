#include "data/task.h"

#include <fmt/format.h>

namespace abmll::data {

std::string_view to_string(Split split) {
  switch (split) {
    case Split::train: return "train";
    case Split::dev: return "dev";
    case Split::test: return "test";
  }
  return "?";
}

std::string_view to_string(TaskKind kind) {
  switch (kind) {
    case TaskKind::classification: return "classification";
    case TaskKind::multiple_choice: return "multiple_choice";
    case TaskKind::generation: return "generation";
  }
  return "?";
}

std::string to_string(const SourceLine& where) { return fmt::format("{}:{}", where.file.string(), where.line); }

}  // namespace abmll::data
