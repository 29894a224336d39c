// Position ids and attention pattern of a padded batch (see padding.h).
#include "model/padding.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/cumsum.h>
#include <ATen/ops/eye.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/tril.h>

namespace abmll::model {

at::Tensor position_ids_from_mask(const at::Tensor& attention_mask) {
  at::Tensor real = attention_mask.ne(0).to(at::kLong);  // [B, T]
  return (at::cumsum(real, 1) - 1).clamp_min(0);
}

at::Tensor causal_pattern(int64_t t, const at::Device& device) {
  return at::tril(at::ones({t, t}, at::TensorOptions().dtype(at::kBool).device(device)));
}

at::Tensor attention_pattern(const at::Tensor& attention_mask) {
  const int64_t t = attention_mask.size(1);
  const auto bool_options = at::TensorOptions().dtype(at::kBool).device(attention_mask.device());
  at::Tensor causal = causal_pattern(t, attention_mask.device());                  // [T(query), T(key)]
  at::Tensor key_real = attention_mask.ne(0).view({-1, 1, 1, t});                   // [B, 1, 1, T]
  at::Tensor self = at::eye(t, bool_options);                                        // [T, T]
  return causal.logical_and(key_real).logical_or(self);                            // [B, 1, T, T]
}

TokenLayout layout_from_mask(const at::Tensor& attention_mask) {
  TokenLayout layout;
  layout.positions = position_ids_from_mask(attention_mask);
  layout.pattern = attention_pattern(attention_mask);
  // Right padding: no real token after a padding position.
  const at::Tensor real = attention_mask.ne(0);
  layout.tokens = real;
  const int64_t t = real.size(1);
  layout.causal =
      t < 2 || !real.narrow(1, 1, t - 1).logical_and(real.narrow(1, 0, t - 1).logical_not()).any().item<bool>();
  return layout;
}

}  // namespace abmll::model
