// Outer-loop parts: learning-rate schedule, AdamW against torch's update rule, gradient clipping, checkpoints
// (round trip, corrupt newest skipped, foreign files refused).
#include <catch2/catch.hpp>

#include <ATen/ATen.h>

#include "meta/adamw.h"
#include "meta/checkpoint.h"
#include "meta/lr_schedule.h"
#include "test_support.h"
#include "util/error.h"

using namespace abmll;
using Catch::Matchers::Contains;

TEST_CASE("learning rate warms up linearly then decays", "[meta]") {
  const double peak = 1e-3;
  CHECK(meta::learning_rate(0, 100, 10, peak, LrSchedule::cosine) == Approx(1e-4));
  CHECK(meta::learning_rate(9, 100, 10, peak, LrSchedule::cosine) == Approx(peak));
  CHECK(meta::learning_rate(10, 100, 10, peak, LrSchedule::cosine) == Approx(peak));
  CHECK(meta::learning_rate(55, 100, 10, peak, LrSchedule::cosine) == Approx(peak / 2));
  CHECK(meta::learning_rate(100, 100, 10, peak, LrSchedule::cosine) == Approx(0).margin(1e-15));
  CHECK(meta::learning_rate(55, 100, 10, peak, LrSchedule::linear) == Approx(peak / 2));
  CHECK(meta::learning_rate(70, 100, 0, peak, LrSchedule::constant) == peak);
}

TEST_CASE("AdamW follows torch.optim.AdamW's update", "[meta]") {
  // Two steps by hand with torch's formulas: decoupled decay, bias-corrected moments, eps after the square root.
  const auto o = at::TensorOptions().dtype(at::kDouble);
  at::Tensor p = at::tensor({1.0, -2.0}, o);
  meta::AdamW opt({p}, {0.9, 0.999, 1e-8, 0.1});
  const at::Tensor g1 = at::tensor({0.5, -1.0}, o), g2 = at::tensor({-0.2, 0.3}, o);
  opt.step({g1}, 0.01);
  opt.step({g2}, 0.02);
  double expected[2];
  const double p0[2] = {1.0, -2.0}, a[2] = {0.5, -1.0}, b[2] = {-0.2, 0.3};
  for (int i = 0; i < 2; ++i) {
    double x = p0[i], m = 0, v = 0;
    const double lrs[2] = {0.01, 0.02}, gs[2] = {a[i], b[i]};
    for (int t = 1; t <= 2; ++t) {
      x *= 1 - lrs[t - 1] * 0.1;
      m = 0.9 * m + 0.1 * gs[t - 1];
      v = 0.999 * v + 0.001 * gs[t - 1] * gs[t - 1];
      const double denom = std::sqrt(v) / std::sqrt(1 - std::pow(0.999, t)) + 1e-8;
      x -= lrs[t - 1] / (1 - std::pow(0.9, t)) * m / denom;
    }
    expected[i] = x;
  }
  CHECK(p[0].item<double>() == Approx(expected[0]).epsilon(1e-14));
  CHECK(p[1].item<double>() == Approx(expected[1]).epsilon(1e-14));
  CHECK(opt.steps_taken() == 2);
}

TEST_CASE("gradient clipping scales to the global norm", "[meta]") {
  std::vector<at::Tensor> grads = {at::tensor({3.0}), at::tensor({4.0})};
  CHECK(meta::clip_global_norm(grads, 1.0) == Approx(5.0));
  CHECK(meta::global_norm(grads) == Approx(1.0).epsilon(1e-5));
  CHECK(meta::clip_global_norm(grads, 0.0) == Approx(1.0).epsilon(1e-5));  // 0: off
}

TEST_CASE("checkpoints round-trip, and the newest complete one is resumed", "[meta]") {
  test::ScratchDir run;
  meta::Checkpoint c;
  c.step = 3;
  c.tensors = {{"theta.0", at::arange(6, at::kFloat).reshape({2, 3})},
               {"rng", at::tensor({int64_t(1) << 62, int64_t(7)})}};
  c.metadata["config"] = "{\"outer\": {\"lr\": 0.001}}";
  meta::save_checkpoint(meta::checkpoint_path(run.path(), 3), c);
  c.step = 5;
  meta::save_checkpoint(meta::checkpoint_path(run.path(), 5), c);

  auto latest = meta::load_latest_checkpoint(run.path());
  REQUIRE(latest);
  CHECK(latest->step == 5);
  CHECK(latest->metadata.at("config") == c.metadata.at("config"));
  CHECK(at::equal(latest->tensor("theta.0"), c.tensors[0].second));
  CHECK(at::equal(latest->tensor("rng"), c.tensors[1].second));
  CHECK_THROWS_WITH(latest->tensor("theta.9"), Contains("has no tensor 'theta.9'"));

  // A truncated newest checkpoint (as after a crash mid-copy) is skipped, never loaded.
  const auto newest = meta::checkpoint_path(run.path(), 7);
  const std::string bytes = test::read_text(meta::checkpoint_path(run.path(), 5));
  test::write_text(newest, bytes.substr(0, bytes.size() - 5));
  latest = meta::load_latest_checkpoint(run.path());
  REQUIRE(latest);
  CHECK(latest->step == 5);

  // No checkpoints at all.
  test::ScratchDir empty;
  CHECK_FALSE(meta::load_latest_checkpoint(empty.path()));
}

TEST_CASE("foreign and future checkpoints are refused with the reason", "[meta]") {
  test::ScratchDir dir;
  io::write_safetensors(dir / "plain.safetensors", {{"w", at::ones({2})}});
  CHECK_THROWS_WITH(meta::load_checkpoint(dir / "plain.safetensors"), Contains("not an abmll checkpoint"));
  io::write_safetensors(dir / "future.safetensors", {{"w", at::ones({2})}},
                        {{"abmll.format", "abmll-checkpoint"}, {"abmll.format_version", "99"}, {"abmll.step", "1"}});
  CHECK_THROWS_WITH(meta::load_checkpoint(dir / "future.safetensors"), Contains("format version 99"));
}
