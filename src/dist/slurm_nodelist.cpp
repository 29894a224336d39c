#include "dist/slurm_nodelist.h"

#include <fmt/format.h>

#include <cctype>
#include <cstdint>

#include "util/error.h"

namespace abmll::dist {
namespace {

constexpr std::size_t kMaxHosts = 1u << 20;

[[noreturn]] void fail(std::string_view nodelist, const std::string& problem) {
  throw InputError(fmt::format("SLURM node list '{}': {}", nodelist, problem));
}

// The numbers of one bracket's content ("01-04,07"), formatted with their padding.
std::vector<std::string> expand_ranges(std::string_view nodelist, std::string_view body) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= body.size()) {
    const std::size_t comma = std::min(body.find(',', start), body.size());
    const std::string_view part = body.substr(start, comma - start);
    const std::size_t dash = part.find('-');
    const std::string_view lo_text = part.substr(0, dash);
    const std::string_view hi_text = dash == std::string_view::npos ? lo_text : part.substr(dash + 1);
    auto number = [&](std::string_view text) {
      if (text.empty() || text.size() > 18)
        fail(nodelist, fmt::format("'[{}]' holds '{}', not a number or a range lo-hi", body, part));
      std::uint64_t v = 0;
      for (char c : text) {
        if (!std::isdigit(static_cast<unsigned char>(c)))
          fail(nodelist, fmt::format("'[{}]' holds '{}', not a number or a range lo-hi", body, part));
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
      }
      return v;
    };
    const std::uint64_t lo = number(lo_text), hi = number(hi_text);
    if (hi < lo) fail(nodelist, fmt::format("range '{}' ends below its start", part));
    if (hi - lo >= kMaxHosts) fail(nodelist, fmt::format("range '{}' is too long", part));
    const std::size_t width = lo_text.size();  // "08-11": two digits, as SLURM pads
    for (std::uint64_t v = lo; v <= hi; ++v) out.push_back(fmt::format("{:0{}}", v, width));
    start = comma + 1;
  }
  return out;
}

// The hosts of one item ("gpu[01-02]-ib", no top-level commas): the cartesian product of its bracket sets.
std::vector<std::string> expand_item(std::string_view nodelist, std::string_view item) {
  if (item.empty()) fail(nodelist, "empty host name (two commas in a row, or a leading or trailing comma)");
  std::vector<std::string> hosts{""};
  std::size_t i = 0;
  while (i < item.size()) {
    const std::size_t open = item.find('[', i);
    const std::string_view literal = item.substr(i, open == std::string_view::npos ? item.npos : open - i);
    if (literal.find(']') != std::string_view::npos) fail(nodelist, "']' without a matching '['");
    for (auto& h : hosts) h += literal;
    if (open == std::string_view::npos) break;
    const std::size_t close = item.find(']', open);
    if (close == std::string_view::npos) fail(nodelist, "'[' without a matching ']'");
    const std::string_view body = item.substr(open + 1, close - open - 1);
    if (body.find('[') != std::string_view::npos) fail(nodelist, "nested '['");
    const std::vector<std::string> numbers = expand_ranges(nodelist, body);
    if (hosts.size() * numbers.size() > kMaxHosts) fail(nodelist, "more than 1048576 hosts");
    std::vector<std::string> next;
    next.reserve(hosts.size() * numbers.size());
    for (const auto& h : hosts)
      for (const auto& n : numbers) next.push_back(h + n);
    hosts = std::move(next);
    i = close + 1;
  }
  return hosts;
}

// Splits at commas outside brackets.
std::vector<std::string_view> top_level_items(std::string_view nodelist) {
  std::vector<std::string_view> items;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < nodelist.size(); ++i) {
    const char c = nodelist[i];
    if (c == '[') ++depth;
    if (c == ']' && --depth < 0) fail(nodelist, "']' without a matching '['");
    if (c == ',' && depth == 0) {
      items.push_back(nodelist.substr(start, i - start));
      start = i + 1;
    }
    if (std::isspace(static_cast<unsigned char>(c))) fail(nodelist, "white space in the list");
  }
  if (depth != 0) fail(nodelist, "'[' without a matching ']'");
  items.push_back(nodelist.substr(start));
  return items;
}

}  // namespace

std::vector<std::string> expand_slurm_nodelist(std::string_view nodelist) {
  if (nodelist.empty()) fail(nodelist, "empty");
  std::vector<std::string> hosts;
  for (std::string_view item : top_level_items(nodelist)) {
    std::vector<std::string> more = expand_item(nodelist, item);
    if (hosts.size() + more.size() > kMaxHosts) fail(nodelist, "more than 1048576 hosts");
    hosts.insert(hosts.end(), more.begin(), more.end());
  }
  return hosts;
}

std::string first_slurm_host(std::string_view nodelist) { return expand_slurm_nodelist(nodelist).front(); }

}  // namespace abmll::dist
