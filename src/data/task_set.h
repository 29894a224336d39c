// The tasks of an experiment, from its DataConfig: the data format's reader applied to the tasks the partition
// names (train: meta-training; test: held out). Without a partition (allowed for unifiedqa and jsonl, not for
// crossfit, whose folders hold 160 tasks of every kind) every task found is a test task.
#pragma once

#include "config/experiment_config.h"
#include "data/task.h"

namespace abmll::data {

// Reads every task the config selects. Throws InputError for a missing data path or partition, a task the
// partition names that the data folder lacks, a malformed line (file:line) and an empty task; under
// options.skip_malformed the last two are skipped with a warning instead (an empty task is dropped).
TaskSet load_task_set(const DataConfig& config, const ReaderOptions& options = {});

}  // namespace abmll::data
