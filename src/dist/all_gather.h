// Every rank's bytes (or JSON document) on every rank, over the process group's all-reduce: the ranks sum a table
// of lengths, then a zero-padded byte table in which each rank wrote only its own span. Sums with zeros are exact,
// so each rank reads back the others' bytes unchanged. For results of a few megabytes at most (a task's
// predictions), exchanged between steps of work that take far longer.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "dist/process_group.h"

namespace abmll::dist {

// Returns the bytes of ranks 0 .. size-1 (this rank's `mine` among them). `what` names the exchange in errors.
std::vector<std::vector<std::uint8_t>> all_gather_bytes(ProcessGroup& group, const std::vector<std::uint8_t>& mine,
                                                        const std::string& what);

// The same for JSON documents, sent as CBOR: numbers keep every bit, NaN and infinities included (JSON text would
// turn those into null).
std::vector<nlohmann::json> all_gather_json(ProcessGroup& group, const nlohmann::json& mine, const std::string& what);

}  // namespace abmll::dist
