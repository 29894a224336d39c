// Closed forms for the entry-wise Gaussians of ABMLL (ABMLL.md sections 2 and 3): the KL divergence between two
// diagonal Gaussians, the scale parameterisation sigma = softplus(rho) + c, and the hyperprior -log p(theta).
// Everything is accumulated in float32 or wider: with beta ~ 1e-7 the KL terms vanish in bf16.
#pragma once

#include <ATen/core/Tensor.h>

namespace abmll::meta {

// sigma = softplus(rho) + c, elementwise (c > 0 keeps scales away from zero).
at::Tensor scale_from_rho(const at::Tensor& rho, double floor_c);

// Inverse of scale_from_rho for initialisation: rho with softplus(rho) + c = sigma (requires sigma > c).
at::Tensor rho_from_scale(const at::Tensor& sigma, double floor_c);

// sum over entries of KL( N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2) )
//   = sum log(sigma_p / sigma_q) + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2,
// computed in float32 (or float64 when the inputs are float64). Shapes must broadcast. Returns a 0-dim tensor.
// Written without the cancellation of the textbook form (see kl_scale_term), which in float32 loses most digits
// exactly where ABMLL lives: posteriors a few inner steps away from their prior.
at::Tensor diagonal_gaussian_kl(const at::Tensor& mu_q, const at::Tensor& sigma_q, const at::Tensor& mu_p,
                                const at::Tensor& sigma_p);

// The same KL entry by entry (broadcast shape, not summed), e.g. to sum per task over a leading group dimension.
at::Tensor diagonal_gaussian_kl_terms(const at::Tensor& mu_q, const at::Tensor& sigma_q, const at::Tensor& mu_p,
                                      const at::Tensor& sigma_p);

// The part of the KL that depends on the variance ratio: with u = v_q / v_p - 1 (pass it computed without
// cancellation, e.g. (s_q - s_p)(s_q + s_p) / v_p), returns 1/2 (u - log(1 + u)) elementwise, by its Taylor series
// where |u| is small (where u - log1p(u) would cancel) and directly elsewhere. Its gradient is accurate too.
at::Tensor kl_scale_term(const at::Tensor& u);

// The ABML hyperprior on the prior's parameters theta: means ~ N(0, mean_std^2) and precisions
// tau = 1 / sigma^2 ~ Gamma(a0, b0) (shape a0, rate b0). Returns the negative log density (with constants)
// of the given means and scales, summed, as a 0-dim float32/float64 tensor. theta is a point estimate, so this
// is the whole KL(q(theta) || p(theta)) term up to a constant.
at::Tensor hyperprior_neg_log_density(const at::Tensor& means, const at::Tensor& sigmas, double mean_std, double a0,
                                      double b0);

// The hyperprior's pieces, for callers that sum many tensors' terms at once: the entries of -log N(m; 0, std^2)
// and of -log Gamma(1 / sigma^2; a0, b0) without their constants (elementwise, float32 or wider), and the constants
// per entry. hyperprior_neg_log_density(m, s) = (mean_terms(m).sum() + mean_constant * numel)
//                                              + (scale_terms(s).sum() + scale_constant * numel).
at::Tensor hyperprior_mean_terms(const at::Tensor& means, double mean_std);
at::Tensor hyperprior_scale_terms(const at::Tensor& sigmas, double a0, double b0);
double hyperprior_mean_constant(double mean_std);
double hyperprior_scale_constant(double a0, double b0);

}  // namespace abmll::meta
