// AdamW for theta, written out so that its state is plain named tensors a checkpoint can hold and restore
// exactly. The update is torch.optim.AdamW's (decoupled weight decay; bias-corrected moments; eps added to the
// bias-corrected square root), so a Python reference using torch.optim.AdamW takes the same steps.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace abmll::meta {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class AdamW {
 public:
  // `params`: the tensors updated in place (leaf tensors that require grad).
  AdamW(std::vector<at::Tensor> params, AdamWOptions options);

  // One update with learning rate `lr` from `grads` (one per parameter, same shapes; undefined = zero).
  void step(const std::vector<at::Tensor>& grads, double lr);

  std::int64_t steps_taken() const { return steps_; }
  const std::vector<at::Tensor>& first_moments() const { return m_; }
  const std::vector<at::Tensor>& second_moments() const { return v_; }
  // Restores state saved from first_moments(), second_moments() and steps_taken().
  void restore(std::vector<at::Tensor> m, std::vector<at::Tensor> v, std::int64_t steps);

 private:
  std::vector<at::Tensor> params_, m_, v_;
  AdamWOptions options_;
  std::int64_t steps_ = 0;
};

// The global L2 norm of `grads` (undefined entries skipped), in float64 arithmetic on a float32 accumulation.
double global_norm(const std::vector<at::Tensor>& grads);

// Scales `grads` in place so their global norm is at most max_norm (when max_norm > 0). Returns the norm before.
double clip_global_norm(std::vector<at::Tensor>& grads, double max_norm);

}  // namespace abmll::meta
