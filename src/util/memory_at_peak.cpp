// The memory live at a profile's peak, per allocating operator (see memory_at_peak.h).
#include "util/memory_at_peak.h"

#include <torch/csrc/profiler/collection.h>

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <unordered_map>

#include "util/error.h"

namespace abmll {
namespace {

using torch::profiler::impl::EventType;
using torch::profiler::impl::Result;

struct Allocation {
  std::int64_t time_ns, bytes;  // bytes < 0: a free
  const void* ptr;
  const Result* event;
};

bool only_allocates(const std::string& name) {
  static const std::set<std::string> names = {
      "aten::empty",     "aten::empty_strided", "aten::empty_like", "aten::new_empty", "aten::new_empty_strided",
      "aten::zeros",     "aten::zeros_like",    "aten::new_zeros",  "aten::ones",      "aten::ones_like",
      "aten::full",      "aten::full_like",     "aten::resize_",    "aten::zero_",     "aten::fill_"};
  return names.count(name) > 0;
}

// A custom autograd function's node, "torch::autograd::CppNode<abmll::model::(anonymous namespace)::RmsNorm>",
// as "CppNode<abmll::model::RmsNorm>".
std::string short_name(std::string name) {
  for (const std::string drop : {"torch::autograd::", "(anonymous namespace)::"})
    for (std::size_t at = name.find(drop); at != std::string::npos; at = name.find(drop, at))
      name.erase(at, drop.size());
  return name;
}

// The operators around `event`, outermost first.
std::vector<std::string> operators_around(const Result* event) {
  std::vector<std::string> out;
  for (std::shared_ptr<Result> p = event->parent_.lock(); p; p = p->parent_.lock())
    if (p->tag() == EventType::TorchOp) out.push_back(short_name(p->name()));
  std::reverse(out.begin(), out.end());
  return out;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : " > ") + n;
  return out;
}

void collect(const std::shared_ptr<Result>& event, c10::DeviceType type, std::vector<Allocation>& out) {
  event->visit_if_base<torch::profiler::impl::RawAllocation>([&](const auto& a) {
    if (a.device_type_ == type && a.alloc_size_ != 0)
      out.push_back({event->start_time_ns_, a.alloc_size_, a.ptr_, event.get()});
  });
  for (const auto& child : event->children_) collect(child, type, out);
}

}  // namespace

MemoryAtPeak memory_at_peak(const std::vector<torch::autograd::profiler::experimental_event_t>& event_tree,
                            c10::Device device) {
  std::vector<Allocation> events;
  for (const auto& root : event_tree) collect(root, device.type(), events);
  std::stable_sort(events.begin(), events.end(),
                   [](const Allocation& a, const Allocation& b) { return a.time_ns < b.time_ns; });
  // First pass: the peak's position. Frees of memory allocated before profiling began lower the level below 0;
  // the peak is measured from the start all the same.
  std::int64_t live = 0, peak = 0;
  std::size_t peak_at = 0;  // events [0, peak_at) were replayed at the peak
  for (std::size_t i = 0; i < events.size(); ++i) {
    live += events[i].bytes;
    if (live > peak) peak = live, peak_at = i + 1;
  }
  // Second pass: what was live then.
  std::unordered_map<const void*, const Allocation*> open;
  for (std::size_t i = 0; i < peak_at; ++i) {
    if (events[i].bytes > 0) {
      open[events[i].ptr] = &events[i];
    } else {
      open.erase(events[i].ptr);
    }
  }
  std::map<std::string, MemoryAtPeak::Row> rows;
  for (const auto& [ptr, a] : open) {
    std::vector<std::string> around = operators_around(a->event);
    around.erase(std::remove_if(around.begin(), around.end(), only_allocates), around.end());
    if (around.size() > 3) around.erase(around.begin(), around.end() - 3);
    const std::string where = around.empty() ? "(outside any operator)" : join(around);
    MemoryAtPeak::Row& row = rows[where];
    row.allocated_in = where;
    row.bytes += a->bytes;
    ++row.allocations;
  }
  MemoryAtPeak out;
  out.peak_bytes = peak;
  if (peak_at > 0) out.peak_inside = join(operators_around(events[peak_at - 1].event));
  for (auto& [where, row] : rows) out.rows.push_back(std::move(row));
  std::sort(out.rows.begin(), out.rows.end(),
            [](const MemoryAtPeak::Row& a, const MemoryAtPeak::Row& b) { return a.bytes > b.bytes; });
  return out;
}

void write_memory_table(const std::filesystem::path& path, const MemoryAtPeak& m) {
  std::ofstream out(path);
  auto clean = [](std::string s) {
    std::replace(s.begin(), s.end(), '\t', ' ');
    std::replace(s.begin(), s.end(), '\n', ' ');
    return s;
  };
  out << "mb\tallocations\tallocated_in\n";
  std::int64_t count = 0, bytes = 0;
  for (const auto& row : m.rows) count += row.allocations, bytes += row.bytes;
  out << fmt::format("{:.3f}\t{}\t(all of the below; the peak was reached in: {})\n",
                     static_cast<double>(bytes) / 1048576.0, count, m.peak_inside.empty() ? "-" : clean(m.peak_inside));
  for (const auto& row : m.rows)
    out << fmt::format("{:.3f}\t{}\t{}\n", static_cast<double>(row.bytes) / 1048576.0, row.allocations,
                       clean(row.allocated_in));
  if (!out) throw Error(fmt::format("{}: cannot write the memory table", path.string()));
}

}  // namespace abmll
