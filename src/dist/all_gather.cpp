#include "dist/all_gather.h"

#include <ATen/ops/zeros.h>

#include <cstring>

namespace abmll::dist {

std::vector<std::vector<std::uint8_t>> all_gather_bytes(ProcessGroup& group, const std::vector<std::uint8_t>& mine,
                                                        const std::string& what) {
  const int world = group.size(), rank = group.rank();
  std::vector<at::Tensor> lengths = {at::zeros({world}, at::kLong)};
  lengths[0][rank] = static_cast<std::int64_t>(mine.size());
  lengths[0] = lengths[0].to(group.device());
  group.all_reduce(lengths, ReduceOp::sum, what + ": lengths");
  const at::Tensor sizes = lengths[0].cpu();
  const std::int64_t* size = sizes.data_ptr<std::int64_t>();
  std::vector<std::int64_t> offset(static_cast<std::size_t>(world) + 1, 0);
  for (int r = 0; r < world; ++r) offset[r + 1] = offset[r] + size[r];

  std::vector<std::vector<std::uint8_t>> gathered(static_cast<std::size_t>(world));
  if (offset[world] == 0) return gathered;  // every rank knows it: none enters the exchange
  std::vector<at::Tensor> bytes = {at::zeros({offset[world]}, at::kByte)};
  if (!mine.empty()) std::memcpy(bytes[0].data_ptr<std::uint8_t>() + offset[rank], mine.data(), mine.size());
  bytes[0] = bytes[0].to(group.device());
  group.all_reduce(bytes, ReduceOp::sum, what);
  const at::Tensor all = bytes[0].cpu();
  const std::uint8_t* data = all.data_ptr<std::uint8_t>();
  for (int r = 0; r < world; ++r) gathered[r].assign(data + offset[r], data + offset[r + 1]);
  return gathered;
}

std::vector<nlohmann::json> all_gather_json(ProcessGroup& group, const nlohmann::json& mine, const std::string& what) {
  std::vector<nlohmann::json> out;
  for (const auto& bytes : all_gather_bytes(group, nlohmann::json::to_cbor(mine), what))
    out.push_back(nlohmann::json::from_cbor(bytes));
  return out;
}

}  // namespace abmll::dist
