// Data parallelism over the tasks of a meta-batch (issue 8): every rank samples the step's T tasks with the same
// seed, runs its contiguous slice of them (their episodes, their own noise streams: task_noise.h), and the ranks
// then combine their MetaBatchGradients into the meta-batch's. Rank r's result is over its T_r tasks, averaged over
// those; weighting it by T_r / T before summing over ranks gives exactly the gradient and losses of the mean over
// all T tasks (the regularising hyperprior term, identical on every rank, keeps its weight sum_r T_r / T = 1).
#pragma once

#include <cstdint>

#include "dist/process_group.h"
#include "meta/meta_learner.h"

namespace abmll::meta {

// Positions [begin, begin + count) of a T-task meta-batch that rank `rank` of `world` runs: contiguous, sizes
// differing by at most one (the first T mod world ranks take one more). Requires 1 <= world <= T.
struct TaskSlice {
  std::int64_t begin = 0, count = 0;
};
TaskSlice task_slice(std::int64_t tasks, int rank, int world);

// What the ranks agree on after a step besides the gradient.
struct StepAgreement {
  std::int64_t tokens = 0;  // tokens processed by all ranks
  int signal = 0;           // SIGTERM if any rank received it, else SIGINT if any did, else 0: every rank stops
};

// Replaces `g` (rank's slice of `slice_tasks` out of `total_tasks`) by the meta-batch's gradient and losses, the
// same on every rank; sums `tokens` and combines the ranks' interrupt signals. `step` (1-based) names the step in
// errors.
StepAgreement combine_across_ranks(dist::ProcessGroup& group, MetaBatchGradient& g, std::int64_t slice_tasks,
                                   std::int64_t total_tasks, std::int64_t tokens, int signal, std::int64_t step);

// Checks that every rank starts at the same step (resume read the same checkpoint everywhere); an InputError
// otherwise.
void check_same_start(dist::ProcessGroup& group, std::int64_t first_step);

}  // namespace abmll::meta
