#include "dist/all_gather_text.h"

#include <ATen/ops/zeros.h>

#include <cstdint>
#include <cstring>

namespace abmll::dist {

std::vector<std::string> all_gather_text(ProcessGroup& group, const std::string& mine, const std::string& what) {
  const int world = group.size(), rank = group.rank();
  std::vector<at::Tensor> lengths = {at::zeros({world}, at::kLong)};
  lengths[0][rank] = static_cast<std::int64_t>(mine.size());
  lengths[0] = lengths[0].to(group.device());
  group.all_reduce(lengths, ReduceOp::sum, what + ": lengths");
  const at::Tensor sizes = lengths[0].cpu();
  const std::int64_t* size = sizes.data_ptr<std::int64_t>();
  std::vector<std::int64_t> offset(static_cast<std::size_t>(world) + 1, 0);
  for (int r = 0; r < world; ++r) offset[r + 1] = offset[r] + size[r];

  std::vector<std::string> texts(static_cast<std::size_t>(world));
  if (offset[world] == 0) return texts;  // every rank knows it: none enters the exchange
  std::vector<at::Tensor> bytes = {at::zeros({offset[world]}, at::kByte)};
  if (!mine.empty()) std::memcpy(bytes[0].data_ptr<std::uint8_t>() + offset[rank], mine.data(), mine.size());
  bytes[0] = bytes[0].to(group.device());
  group.all_reduce(bytes, ReduceOp::sum, what);
  const at::Tensor all = bytes[0].cpu();
  const auto* data = reinterpret_cast<const char*>(all.data_ptr<std::uint8_t>());
  for (int r = 0; r < world; ++r) texts[r].assign(data + offset[r], static_cast<std::size_t>(size[r]));
  return texts;
}

}  // namespace abmll::dist
