// Operator-level profile of a stretch of the run (one or more outer steps), through LibTorch's profiler (Kineto):
// every ATen operator on the CPU and, on a GPU, every kernel and memory copy with its device time. Writes
//   <stem>.trace.json   a Chrome trace (chrome://tracing, https://ui.perfetto.dev, TensorBoard)
//   <stem>.ops.tsv      one line per operator or kernel name: calls and milliseconds, sorted by the time spent
//   <stem>.memory.tsv   with memory recording: what was live at the stretch's peak, per allocating operator
//                       (util/memory_at_peak.h), on the GPU for a GPU run
// The table's columns: kind (`cpu` for operators and runtime calls on host threads, `device` for kernels and copies
// on the GPU), name, calls, self_ms (time not spent in nested operators of the same thread; device events do not
// nest) and total_ms.
#pragma once

#include <c10/core/Device.h>

#include <filesystem>

namespace abmll {

class StepProfiler {
 public:
  // Starts profiling this thread's operators and, when `device` is a GPU, its kernels; with `memory`, every
  // allocation and free too (slower still).
  explicit StepProfiler(c10::Device device, bool memory = false);
  // Stops (if still running) without writing anything.
  ~StepProfiler();
  StepProfiler(const StepProfiler&) = delete;
  StepProfiler& operator=(const StepProfiler&) = delete;

  // Waits for the GPU's queued work, stops and writes <stem>.trace.json, <stem>.ops.tsv and with memory recording
  // <stem>.memory.tsv (creating the folder). Returns the peak's live bytes above the start (0 without memory
  // recording). Throws abmll::Error if a file cannot be written.
  std::int64_t finish(const std::filesystem::path& stem);

 private:
  c10::Device device_;
  bool memory_ = false;
  bool running_ = false;
};

}  // namespace abmll
