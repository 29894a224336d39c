// Every rank's text (a JSON document, say) on every rank, over the process group's all-reduce: the ranks sum a
// table of lengths, then a zero-padded byte table in which each rank wrote only its own span. Sums with zeros are
// exact, so each rank reads back the others' bytes unchanged. For results of a few megabytes at most (a task's
// predictions), exchanged between steps of work that take far longer.
#pragma once

#include <string>
#include <vector>

#include "dist/process_group.h"

namespace abmll::dist {

// Returns the texts of ranks 0 .. size-1 (this rank's `mine` among them). `what` names the exchange in errors.
std::vector<std::string> all_gather_text(ProcessGroup& group, const std::string& mine, const std::string& what);

}  // namespace abmll::dist
