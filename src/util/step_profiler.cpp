// LibTorch's Kineto profiler around a stretch of the run (see step_profiler.h).
#include "util/step_profiler.h"

#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "util/error.h"
#include "util/memory_at_peak.h"

namespace abmll {
namespace {

namespace kineto = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

struct OpTotals {
  std::int64_t calls = 0;
  double self_ns = 0, total_ns = 0;
};

// Per-name totals. Host events nest within a thread (an operator calls others): each event's self time is its
// duration less its direct children's, found by walking the thread's events in start order with a stack of the
// open ones.
std::map<std::pair<bool, std::string>, OpTotals> op_totals(const std::vector<kineto::KinetoEvent>& events) {
  std::map<std::pair<bool, std::string>, OpTotals> totals;
  std::map<std::uint64_t, std::vector<const kineto::KinetoEvent*>> host_by_thread;
  for (const kineto::KinetoEvent& e : events) {
    if (e.deviceType() == c10::DeviceType::CPU) {
      host_by_thread[e.startThreadId()].push_back(&e);
    } else {
      OpTotals& t = totals[{true, e.name()}];
      ++t.calls;
      t.self_ns += static_cast<double>(e.durationNs());
      t.total_ns += static_cast<double>(e.durationNs());
    }
  }
  for (auto& [thread, list] : host_by_thread) {
    std::sort(list.begin(), list.end(), [](const kineto::KinetoEvent* a, const kineto::KinetoEvent* b) {
      return a->startNs() != b->startNs() ? a->startNs() < b->startNs() : a->endNs() > b->endNs();
    });
    std::vector<std::pair<const kineto::KinetoEvent*, double>> open;  // event, its children's time so far
    auto close = [&totals](const kineto::KinetoEvent* e, double children_ns) {
      OpTotals& t = totals[{false, e->name()}];
      ++t.calls;
      t.total_ns += static_cast<double>(e->durationNs());
      t.self_ns += std::max(0.0, static_cast<double>(e->durationNs()) - children_ns);
    };
    for (const kineto::KinetoEvent* e : list) {
      while (!open.empty() && open.back().first->endNs() <= e->startNs()) {
        close(open.back().first, open.back().second);
        open.pop_back();
      }
      if (!open.empty()) open.back().second += static_cast<double>(e->durationNs());
      open.emplace_back(e, 0.0);
    }
    for (auto it = open.rbegin(); it != open.rend(); ++it) close(it->first, it->second);
  }
  return totals;
}

void write_table(const std::filesystem::path& path, const std::vector<kineto::KinetoEvent>& events) {
  const auto totals = op_totals(events);
  std::vector<std::pair<std::pair<bool, std::string>, OpTotals>> rows(totals.begin(), totals.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.first.first != b.first.first ? a.first.first > b.first.first : a.second.self_ns > b.second.self_ns;
  });
  std::ofstream out(path);
  out << "kind\tname\tcalls\tself_ms\ttotal_ms\n";
  for (const auto& [key, t] : rows) {
    std::string name = key.second;
    std::replace(name.begin(), name.end(), '\t', ' ');
    std::replace(name.begin(), name.end(), '\n', ' ');
    out << fmt::format("{}\t{}\t{}\t{:.3f}\t{:.3f}\n", key.first ? "device" : "cpu", name, t.calls, t.self_ns / 1e6,
                       t.total_ns / 1e6);
  }
  if (!out) throw Error(fmt::format("{}: cannot write the profile table", path.string()));
}

}  // namespace

StepProfiler::StepProfiler(c10::Device device, bool memory) : device_(device), memory_(memory) {
  const ProfilerConfig config(ProfilerState::KINETO, /*report_input_shapes=*/false, /*profile_memory=*/memory);
  std::set<ActivityType> activities{ActivityType::CPU};
  if (device.is_cuda()) activities.insert(ActivityType::CUDA);
  kineto::prepareProfiler(config, activities);
  kineto::enableProfiler(config, activities);
  running_ = true;
}

StepProfiler::~StepProfiler() {
  if (running_) kineto::disableProfiler();
}

std::int64_t StepProfiler::finish(const std::filesystem::path& stem) {
  if (!running_) throw Error("StepProfiler::finish: the profiler is not running");
  running_ = false;
  if (device_.is_cuda()) at::detail::getCUDAHooks().deviceSynchronize(device_.index() < 0 ? 0 : device_.index());
  const std::unique_ptr<kineto::ProfilerResult> result = kineto::disableProfiler();
  std::error_code ec;
  std::filesystem::create_directories(stem.parent_path(), ec);
  if (ec)
    throw Error(fmt::format("{}: cannot create the profile folder: {}", stem.parent_path().string(), ec.message()));
  result->save(stem.string() + ".trace.json");
  write_table(stem.string() + ".ops.tsv", result->events());
  if (!memory_) return 0;
  const MemoryAtPeak m = memory_at_peak(result->event_tree(), device_);
  write_memory_table(stem.string() + ".memory.tsv", m);
  return m.peak_bytes;
}

}  // namespace abmll
