#include "meta/adamw.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/lerp.h>
#include <ATen/ops/zeros_like.h>

#include <cmath>

#include "util/error.h"
#include "util/read_scalars.h"

namespace abmll::meta {

AdamW::AdamW(std::vector<at::Tensor> params, AdamWOptions options) : params_(std::move(params)), options_(options) {
  for (const auto& p : params_) {
    m_.push_back(at::zeros_like(p, at::MemoryFormat::Contiguous).detach());
    v_.push_back(at::zeros_like(p, at::MemoryFormat::Contiguous).detach());
  }
}

void AdamW::step(const std::vector<at::Tensor>& grads, double lr) {
  if (grads.size() != params_.size()) throw Error("AdamW::step: one gradient per parameter expected");
  at::NoGradGuard no_grad;
  ++steps_;
  const double bias1 = 1.0 - std::pow(options_.beta1, double(steps_));
  const double bias2 = 1.0 - std::pow(options_.beta2, double(steps_));
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i];
    p.mul_(1.0 - lr * options_.weight_decay);
    if (!grads[i].defined()) continue;
    const at::Tensor g = grads[i].to(p.scalar_type());
    m_[i].lerp_(g, 1.0 - options_.beta1);  // as torch.optim.AdamW, for the same rounding
    v_[i].mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
    const at::Tensor denom = (v_[i].sqrt() / std::sqrt(bias2)).add_(options_.eps);
    p.addcdiv_(m_[i], denom, -lr / bias1);
  }
}

void AdamW::restore(std::vector<at::Tensor> m, std::vector<at::Tensor> v, std::int64_t steps) {
  if (m.size() != params_.size() || v.size() != params_.size()) throw Error("AdamW::restore: state size mismatch");
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!m[i].sizes().equals(params_[i].sizes()) || !v[i].sizes().equals(params_[i].sizes()))
      throw InputError("optimiser state does not match theta's shapes (a checkpoint of a different config?)");
    m_[i] = m[i].to(params_[i].options()).contiguous().clone();
    v_[i] = v[i].to(params_[i].options()).contiguous().clone();
  }
  steps_ = steps;
}

double global_norm(const std::vector<at::Tensor>& grads) {
  // Each tensor's sum of squares stays on the device; one read for all (util/read_scalars.h).
  std::vector<at::Tensor> squares;
  for (const auto& g : grads)
    if (g.defined()) squares.push_back(g.detach().to(at::kFloat).pow(2).sum());
  double sum = 0;
  for (double s : read_scalars(squares)) sum += s;
  return std::sqrt(sum);
}

double clip_global_norm(std::vector<at::Tensor>& grads, double max_norm) {
  const double norm = global_norm(grads);
  if (max_norm > 0 && norm > max_norm) {
    // torch.nn.utils.clip_grad_norm_'s factor: max_norm / (norm + 1e-6).
    const double factor = max_norm / (norm + 1e-6);
    for (auto& g : grads)
      if (g.defined()) g = g * factor;
  }
  return norm;
}

}  // namespace abmll::meta
