// The fused CPU loop of the weight-space KL (see weight_kl_cpu.h).
#include "meta/weight_kl_cpu.h"

#include <ATen/Parallel.h>
#include <ATen/TensorOperators.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/scalar_tensor.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <vector>

#include "meta/weight_kl_entry.h"

namespace abmll::meta {
namespace {

// Rows [r0, r1) of B A for the mean and the scale of one Gaussian, contiguous float32 [rows, I]: M and Z before the
// scaling s, which the entry loop applies (one pass over the tile fewer per matrix).
struct TileInputs {
  at::Tensor m, z;
};

TileInputs tile_inputs(const WeightGaussianFactors& f, int64_t r0, int64_t r1) {
  return {at::matmul(f.b_mu.slice(0, r0, r1), f.a_mu).contiguous(),
          at::matmul(f.b_sigma.slice(0, r0, r1), f.a_sigma).contiguous()};
}

weight_kl::EntryForm entry_form(const WeightScaleForm& form) {
  return {static_cast<float>(form.floor), static_cast<float>(form.floor * form.floor),
          form.kind == WeightScale::softplus};
}

// Every entry of one tile (tq and tp of the same rows): the KL added to *total and the floor hits to *hits (one
// partial sum per row, added in row order: the same total for any number of threads); with kGradients also the
// entry gradients at grad 1 into g[0..2] ([rows, I] each: dKL/dMq, dKL/dZq, dKL/dZp).
template <bool kGradients>
void tile_pass(const TileInputs& tq, const TileInputs& tp, float sc, const weight_kl::EntryForm& ef,
               float* const* g, double* total, int64_t* hits) {
  const int64_t rows = tq.m.size(0), in = tq.m.size(1);
  const float *mq = tq.m.const_data_ptr<float>(), *zq = tq.z.const_data_ptr<float>();
  const float *mp = tp.m.const_data_ptr<float>(), *zp = tp.z.const_data_ptr<float>();
  std::vector<double> row_kl(static_cast<std::size_t>(rows));
  std::vector<int64_t> row_hits(static_cast<std::size_t>(rows));
  at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      double kl = 0;
      int64_t h = 0;
      for (int64_t i = r * in; i < (r + 1) * in; ++i) {
        int floored = 0;
        float entry = 0;
        if constexpr (kGradients) {
          const weight_kl::EntryGradients e = weight_kl::entry_kl_and_gradients(
              sc * mq[i], sc * zq[i], sc * mp[i], sc * zp[i], 1.f, ef, &entry, &floored);
          g[0][i] = e.mq;
          g[1][i] = e.zq;
          g[2][i] = e.zp;
        } else {
          entry = weight_kl::entry_kl(sc * mq[i], sc * zq[i], sc * mp[i], sc * zp[i], ef, &floored);
        }
        kl += entry;
        h += floored;
      }
      row_kl[static_cast<std::size_t>(r)] = kl;
      row_hits[static_cast<std::size_t>(r)] = h;
    }
  });
  for (std::size_t r = 0; r < row_kl.size(); ++r) *total += row_kl[r], *hits += row_hits[r];
}

}  // namespace

bool weight_kl_cpu_applies(const WeightGaussianFactors& q) {
  return q.b_mu.is_cpu() && q.b_mu.scalar_type() == at::kFloat;
}

at::Tensor weight_kl_cpu_forward(const WeightGaussianFactors& q, const WeightGaussianFactors& p,
                                 const WeightScaleForm& form, std::int64_t tile_rows, std::int64_t* floor_hits) {
  RECORD_USER_SCOPE("abmll::weight_kl_cpu_forward");
  const int64_t rows = q.b_mu.size(0);
  const weight_kl::EntryForm ef = entry_form(form);
  const float sc = static_cast<float>(form.scaling);
  double total = 0;
  int64_t hits = 0;
  for (int64_t r0 = 0; r0 < rows; r0 += tile_rows) {
    const int64_t r1 = std::min(rows, r0 + tile_rows);
    tile_pass<false>(tile_inputs(q, r0, r1), tile_inputs(p, r0, r1), sc, ef, nullptr, &total, &hits);
  }
  if (floor_hits) *floor_hits = hits;
  return at::scalar_tensor(total, q.b_mu.options());
}

WeightKlValueAndGradients weight_kl_cpu_value_and_gradients(const WeightGaussianFactors& q,
                                                            const WeightGaussianFactors& p, const WeightScaleForm& form,
                                                            std::int64_t tile_rows, const WeightKlNeeded& needed,
                                                            std::int64_t* floor_hits) {
  RECORD_USER_SCOPE("abmll::weight_kl_cpu_value_and_gradients");
  const weight_kl::EntryForm ef = entry_form(form);
  const float sc = static_cast<float>(form.scaling);
  double total = 0;
  int64_t hits = 0;
  WeightKlValueAndGradients out;
  out.grads = weight_kl_factor_gradients(q, p, form.scaling, tile_rows, [&](int64_t r0, int64_t r1) {
    std::array<at::Tensor, 3> g;
    for (at::Tensor& t : g) t = at::empty({r1 - r0, q.a_mu.size(1)}, q.b_mu.options());
    float* const outputs[3] = {g[0].data_ptr<float>(), g[1].data_ptr<float>(), g[2].data_ptr<float>()};
    tile_pass<true>(tile_inputs(q, r0, r1), tile_inputs(p, r0, r1), sc, ef, outputs, &total, &hits);
    return g;
  }, needed);
  if (floor_hits) *floor_hits = hits;
  out.kl = at::scalar_tensor(total, q.b_mu.options());
  return out;
}

}  // namespace abmll::meta
