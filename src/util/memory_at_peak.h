// What holds memory at the peak of a profiled stretch of a run: from LibTorch's profiler with memory recording on,
// every allocation and free on one device is replayed in time order to find the moment the most memory was live
// (above what was live when profiling began), and what was live then is summed per operator that allocated it.
// Tensors kept for backward show up under the forward operator that made them; gradient buffers under the
// backward node ("autograd::engine::evaluate_function: MulBackward0 > ...").
#pragma once

#include <c10/core/Device.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace abmll {

struct MemoryAtPeak {
  // Live at the peak, above the start of profiling: the rows' sum less what was allocated before profiling began
  // and freed before the peak.
  std::int64_t peak_bytes = 0;
  std::string peak_inside;      // the operators open when the peak was reached, outermost first
  struct Row {
    std::string allocated_in;  // up to three innermost operators around the allocation, outermost first
    std::int64_t bytes = 0, allocations = 0;
  };
  std::vector<Row> rows;  // what was allocated while profiling and live at the peak, largest first
};

// From a profile's event tree (ProfilerResult::event_tree()), the allocations on `device` (its type; every index
// of that type). Operators that only allocate (aten::empty, aten::zeros, ...) are skipped in the paths so that the
// operator that asked for the memory is named.
MemoryAtPeak memory_at_peak(const std::vector<torch::autograd::profiler::experimental_event_t>& event_tree,
                            c10::Device device);

// Writes `m` as a table: mb, allocations, allocated_in; the first row is the rows' total, with where the peak was.
// Throws abmll::Error if the file cannot be written.
void write_memory_table(const std::filesystem::path& path, const MemoryAtPeak& m);

}  // namespace abmll
