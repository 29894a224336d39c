// The weight-space KL on a GPU (see weight_kl_cuda.h).
#include "meta/weight_kl_cuda.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/zeros_like.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "util/cuda_kernels.h"
#include "util/error.h"

#ifdef ABMLL_HAVE_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "meta/weight_kl_tile.h"
#include "weight_kl.h"
#endif

namespace abmll::meta {

#ifdef ABMLL_HAVE_CUDA
namespace {

// Entries per tile of the backward's entry gradients (three float32 [rows, I] buffers: 48 MiB at this size).
constexpr std::int64_t kTileEntries = std::int64_t{1} << 22;

cuda::WeightKlFactors pointers(const WeightGaussianFactors& f) {
  return {f.b_mu.data_ptr<float>(), f.a_mu.data_ptr<float>(), f.b_sigma.data_ptr<float>(),
          f.a_sigma.data_ptr<float>()};
}

WeightGaussianFactors contiguous(const WeightGaussianFactors& f) {
  return {f.b_mu.contiguous(), f.a_mu.contiguous(), f.b_sigma.contiguous(), f.a_sigma.contiguous()};
}

cuda::WeightKlShape shape_of(const WeightGaussianFactors& q, const WeightScaleForm& form) {
  cuda::WeightKlShape s;
  s.out = q.b_mu.size(0);
  s.in = q.a_mu.size(1);
  s.rank = q.a_mu.size(0);
  s.scaling = static_cast<float>(form.scaling);
  s.floor = static_cast<float>(form.floor);
  s.floor_squared = static_cast<float>(form.floor * form.floor);
  s.softplus = form.kind == WeightScale::softplus;
  return s;
}

void check_inputs(const WeightGaussianFactors& q, const WeightGaussianFactors& p) {
  if (!weight_kl_cuda_applies(q))
    throw Error("weight_kl_cuda: expected non-empty float32 CUDA factors of rank <= 256, O <= 524280");
  const auto device = q.b_mu.device();
  for (const WeightGaussianFactors* f : {&q, &p})
    for (const at::Tensor* t : {&f->b_mu, &f->a_mu, &f->b_sigma, &f->a_sigma})
      if (t->device() != device || t->scalar_type() != at::kFloat || t->dim() != 2)
        throw Error("weight_kl_cuda: every factor must be a float32 matrix on the same CUDA device");
  const int64_t o = q.b_mu.size(0), r = q.b_mu.size(1), i = q.a_mu.size(1);
  for (const WeightGaussianFactors* f : {&q, &p})
    if (f->b_mu.size(0) != o || f->b_sigma.size(0) != o || f->b_mu.size(1) != r || f->b_sigma.size(1) != r ||
        f->a_mu.size(0) != r || f->a_sigma.size(0) != r || f->a_mu.size(1) != i || f->a_sigma.size(1) != i)
      throw Error("weight_kl_cuda: factor shapes disagree (b [O, R], a [R, I] for q and p)");
}

}  // namespace

bool weight_kl_cuda_built() { return true; }

bool weight_kl_cuda_applies(const WeightGaussianFactors& q) {
  if (!q.b_mu.is_cuda() || !cuda_kernels_enabled() || q.b_mu.scalar_type() != at::kFloat || q.b_mu.dim() != 2 ||
      q.a_mu.dim() != 2)
    return false;
  const int64_t o = q.b_mu.size(0), r = q.b_mu.size(1), i = q.a_mu.size(1);
  return o > 0 && r > 0 && i > 0 && r <= weight_kl::kMaxTileRank &&
         (o + weight_kl::kTileRows - 1) / weight_kl::kTileRows <= 65535;
}

at::Tensor weight_kl_cuda_forward(const WeightGaussianFactors& q_in, const WeightGaussianFactors& p_in,
                                  const WeightScaleForm& form, at::Tensor* floor_hits) {
  RECORD_USER_SCOPE("abmll::weight_kl_cuda_forward");
  check_inputs(q_in, p_in);
  const c10::cuda::CUDAGuard device_guard(q_in.b_mu.device());
  const WeightGaussianFactors q = contiguous(q_in), p = contiguous(p_in);
  const cuda::WeightKlShape shape = shape_of(q, form);
  const int64_t n = cuda::weight_kl_forward_partials(shape);
  const auto on = at::TensorOptions().device(q.b_mu.device());
  at::Tensor kl = at::empty({n}, on.dtype(at::kDouble)), hits = at::empty({n}, on.dtype(at::kLong));
  try {
    cuda::weight_kl_forward(pointers(q), pointers(p), shape, kl.data_ptr<double>(),
                            reinterpret_cast<long long*>(hits.data_ptr<int64_t>()),
                            c10::cuda::getCurrentCUDAStream().stream());
  } catch (const std::runtime_error& e) {
    throw Error(e.what());
  }
  if (floor_hits) *floor_hits = hits.sum();
  return kl.sum().to(at::kFloat);
}

WeightKlValueAndGradients weight_kl_cuda_value_and_gradients(const WeightGaussianFactors& q_in,
                                                             const WeightGaussianFactors& p_in,
                                                             const WeightScaleForm& form, const WeightKlNeeded& needed,
                                                             at::Tensor* floor_hits) {
  RECORD_USER_SCOPE("abmll::weight_kl_cuda_value_and_gradients");
  check_inputs(q_in, p_in);
  const c10::cuda::CUDAGuard device_guard(q_in.b_mu.device());
  const WeightGaussianFactors q = contiguous(q_in), p = contiguous(p_in);
  const cuda::WeightKlShape shape = shape_of(q, form);
  const auto on = at::TensorOptions().device(q.b_mu.device());
  const at::Tensor one = at::ones({1}, on.dtype(at::kFloat));
  const int64_t rows_per_tile = std::max<int64_t>(1, kTileEntries / shape.in);
  const auto stream = c10::cuda::getCurrentCUDAStream().stream();
  std::vector<at::Tensor> kl_parts, hit_parts;
  WeightKlValueAndGradients out;
  out.grads = weight_kl_factor_gradients(q, p, form.scaling, rows_per_tile, [&](int64_t r0, int64_t r1) {
    std::array<at::Tensor, 3> g;
    for (at::Tensor& t : g) t = at::empty({r1 - r0, shape.in}, q.b_mu.options());
    const int64_t n = cuda::weight_kl_row_partials(shape, r1 - r0);
    kl_parts.push_back(at::empty({n}, on.dtype(at::kDouble)));
    hit_parts.push_back(at::empty({n}, on.dtype(at::kLong)));
    try {
      cuda::weight_kl_entry_gradients(pointers(q), pointers(p), shape, r0, r1 - r0, one.data_ptr<float>(),
                                      g[0].data_ptr<float>(), g[1].data_ptr<float>(), g[2].data_ptr<float>(),
                                      kl_parts.back().data_ptr<double>(),
                                      reinterpret_cast<long long*>(hit_parts.back().data_ptr<int64_t>()), stream);
    } catch (const std::runtime_error& e) {
      throw Error(e.what());
    }
    return g;
  }, needed);
  out.kl = at::cat(kl_parts).sum().to(at::kFloat);
  if (floor_hits) *floor_hits = at::cat(hit_parts).sum();
  return out;
}

#else  // built without cuda/: the ATen implementation is used everywhere

bool weight_kl_cuda_built() { return false; }
bool weight_kl_cuda_applies(const WeightGaussianFactors&) { return false; }

at::Tensor weight_kl_cuda_forward(const WeightGaussianFactors&, const WeightGaussianFactors&, const WeightScaleForm&,
                                  at::Tensor*) {
  throw Error("weight_kl_cuda: abmll was built without CUDA (no nvcc found); the ATen weight-space KL is used");
}

WeightKlValueAndGradients weight_kl_cuda_value_and_gradients(const WeightGaussianFactors&,
                                                             const WeightGaussianFactors&, const WeightScaleForm&,
                                                             const WeightKlNeeded&, at::Tensor*) {
  throw Error("weight_kl_cuda: abmll was built without CUDA (no nvcc found); the ATen weight-space KL is used");
}

#endif

}  // namespace abmll::meta
