#include "meta/gaussian.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/abs.h>
#include <ATen/ops/expm1.h>
#include <ATen/ops/log1p.h>
#include <ATen/ops/where.h>
#include <ATen/ops/log.h>
#include <ATen/ops/softplus.h>
#include <ATen/ops/square.h>

#include <cmath>

namespace abmll::meta {
namespace {

// Work in float32 at least: the KL and hyperprior terms are scaled by beta, gamma ~ 1e-7.
at::Tensor widened(const at::Tensor& t) {
  return t.scalar_type() == at::kDouble ? t : t.to(at::kFloat);
}

}  // namespace

at::Tensor scale_from_rho(const at::Tensor& rho, double floor_c) { return at::softplus(rho) + floor_c; }

at::Tensor rho_from_scale(const at::Tensor& sigma, double floor_c) {
  // softplus^-1(y) = log(exp(y) - 1) = y + log(1 - exp(-y)) = y + log(-expm1(-y)); stable for small and large y.
  const at::Tensor y = sigma - floor_c;
  return y + at::log(-at::expm1(-y));
}

at::Tensor kl_scale_term(const at::Tensor& u) {
  // u - log1p(u) = u^2/2 - u^3/3 + u^4/4 - ...; for |u| < 1e-2 six terms leave a relative error below 1e-10.
  const at::Tensor series = u * u * (0.5 + u * (-1.0 / 3 + u * (0.25 + u * (-0.2 + u * (1.0 / 6 - u / 7)))));
  const at::Tensor direct = u - at::log1p(u);
  return 0.5 * at::where(at::abs(u) < 1e-2, series, direct);
}

at::Tensor diagonal_gaussian_kl(const at::Tensor& mu_q, const at::Tensor& sigma_q, const at::Tensor& mu_p,
                                const at::Tensor& sigma_p) {
  return diagonal_gaussian_kl_terms(mu_q, sigma_q, mu_p, sigma_p).sum();
}

at::Tensor diagonal_gaussian_kl_terms(const at::Tensor& mu_q, const at::Tensor& sigma_q, const at::Tensor& mu_p,
                                      const at::Tensor& sigma_p) {
  const at::Tensor sq = widened(sigma_q), sp = widened(sigma_p);
  const at::Tensor diff = widened(mu_q) - widened(mu_p);
  const at::Tensor vp = at::square(sp);
  // log(sp/sq) + (sq^2 - sp^2) / (2 sp^2) = 1/2 (u - log1p(u)) with u = sq^2/sp^2 - 1.
  const at::Tensor u = (sq - sp) * (sq + sp) / vp;
  return kl_scale_term(u) + at::square(diff) / (2 * vp);
}

at::Tensor hyperprior_mean_terms(const at::Tensor& means, double mean_std) {
  // -log N(m; 0, std^2) = m^2 / (2 std^2) + log(std) + log(2 pi) / 2
  return at::square(widened(means)) / (2 * mean_std * mean_std);
}

double hyperprior_mean_constant(double mean_std) { return std::log(mean_std) + 0.5 * std::log(2 * M_PI); }

at::Tensor hyperprior_scale_terms(const at::Tensor& sigmas, double a0, double b0) {
  // -log Gamma(tau; a0, b0) = -a0 log b0 + lgamma(a0) - (a0 - 1) log tau + b0 tau, tau = 1 / sigma^2
  const at::Tensor tau = 1.0 / at::square(widened(sigmas));
  return b0 * tau - (a0 - 1) * at::log(tau);
}

double hyperprior_scale_constant(double a0, double b0) { return -a0 * std::log(b0) + std::lgamma(a0); }

at::Tensor hyperprior_neg_log_density(const at::Tensor& means, const at::Tensor& sigmas, double mean_std, double a0,
                                      double b0) {
  const at::Tensor mean_term =
      hyperprior_mean_terms(means, mean_std).sum() + hyperprior_mean_constant(mean_std) * means.numel();
  const at::Tensor scale_term =
      hyperprior_scale_terms(sigmas, a0, b0).sum() + hyperprior_scale_constant(a0, b0) * sigmas.numel();
  return mean_term + scale_term;
}

}  // namespace abmll::meta
