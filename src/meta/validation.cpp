#include "meta/validation.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "data/episode.h"
#include "dist/all_gather.h"
#include "dist/process_group.h"
#include "eval/evaluation_summary.h"
#include "util/error.h"
#include "util/json_fields.h"
#include "util/log.h"
#include "util/rng.h"

namespace abmll::meta {
namespace {

constexpr const char* kStateKey = "validation";

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

double mean(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return values.empty() ? 0 : sum / static_cast<double>(values.size());
}

// Every rank's results for the tasks it validated (slots[i] filled where the rank owns task i) combined into all
// tasks' results on every rank: each rank sends its tasks' results (dist::all_gather_json: every bit kept), the others
// fill their slots.
std::vector<eval::TaskResult> combine(dist::ProcessGroup& group, std::vector<eval::TaskResult> slots,
                                      const std::vector<bool>& owned, std::int64_t step) {
  nlohmann::json mine = nlohmann::json::array();
  for (std::size_t i = 0; i < slots.size(); ++i)
    if (owned[i]) mine.push_back({{"index", i}, {"result", eval::task_result_to_json(slots[i])}});
  for (const nlohmann::json& results :
       dist::all_gather_json(group, mine, fmt::format("the validation results of step {}", step))) {
    for (const nlohmann::json& theirs : results) {
      const auto i = theirs.at("index").get<std::size_t>();
      if (!owned.at(i)) slots[i] = eval::task_result_from_json(theirs.at("result"));
    }
  }
  return slots;
}

}  // namespace

Validator::Validator(const ExperimentConfig& config, const LoadedExperiment& experiment, dist::ProcessGroup* group)
    : config_(config),
      scoring_config_(config),
      experiment_(experiment),
      group_(group),
      every_(config.validation.every),
      recompute_(recompute_policy(config.model)) {
  const ValidationConfig& v = config.validation;
  if (v.samples >= 0) scoring_config_.eval.samples = v.samples;
  // Everything the figures depend on besides theta (and the data): a best value found under other settings is not
  // comparable.
  settings_ = {{"tasks", to_string(v.tasks)},
               {"max_tasks", v.max_tasks},
               {"query_size", v.query_size},
               {"metric", to_string(v.metric)},
               {"samples", scoring_config_.eval.samples},
               {"inner_eval_steps", config.inner.eval_steps},
               {"length_normalize", config.eval.length_normalize},
               {"bins", config.eval.bins}};
  if (!enabled()) {
    if (v.patience > 0)
      throw InputError(fmt::format("validation.patience: {} validations without a new best end the run, but "
                                   "validation.every is 0 (no validation)",
                                   v.patience));
    return;
  }
  const bool held_out = v.tasks == ValidationTasks::held_out;
  const std::string key = fmt::format("validation.tasks: {}", to_string(v.tasks));
  std::vector<const data::Task*> candidates;
  std::vector<std::string> generation;
  for (const data::Task& task : held_out ? experiment.tasks.test : experiment.tasks.train) {
    if (task.kind == data::TaskKind::generation) generation.push_back(task.name);
    else candidates.push_back(&task);
  }
  if (!generation.empty())
    log::warn("{}: generation tasks have no answer options to score, not validated on: {}", key, joined(generation));
  if (candidates.empty())
    throw InputError(fmt::format("{}: the data config has no {} task with answer options to validate on", key,
                                 held_out ? "held-out" : "training"));
  const auto seed = static_cast<std::uint64_t>(config.run.seed);
  if (v.max_tasks > 0 && static_cast<std::size_t>(v.max_tasks) < candidates.size()) {
    std::vector<std::size_t> picked =
        Rng::stream(seed, "validation/tasks").sample(candidates.size(), static_cast<std::size_t>(v.max_tasks));
    std::sort(picked.begin(), picked.end());  // keep the data config's order
    for (std::size_t i : picked) tasks_.push_back(candidates[i]);
  } else {
    tasks_ = candidates;
  }

  // Each task's episode is drawn once here, so that a task too small for it is an error now, not hours in.
  std::vector<std::string> lacking;
  for (const data::Task* task : tasks_) {
    if (!data::has_separate_dev_split(*task, /*apart_from_scored=*/held_out)) {
      lacking.push_back(task->name);
      continue;
    }
    with_context(fmt::format("{} (data.shots {}, validation.query_size {})", key, config.data.shots, v.query_size),
                 [&] { check_task_episode(config, *task, {data::Split::dev, v.query_size}); });
  }
  if (!lacking.empty())
    throw InputError(fmt::format("{}: no dev split to draw validation queries from{} in task{} {}", key,
                                 held_out ? " apart from the split `evaluate` scores" : "",
                                 lacking.size() > 1 ? "s" : "", joined(lacking)));
  std::vector<std::string> names;
  for (const data::Task* task : tasks_) names.push_back(task->name);
  log::info("validation every {} steps on {} {} {} dev split{}: {}", every_, tasks_.size(),
            held_out ? "held-out" : "training", tasks_.size() > 1 ? "tasks'" : "task's", tasks_.size() > 1 ? "s" : "",
            joined(names));
}

bool Validator::due(std::int64_t step, std::int64_t last) const {
  return enabled() && (step % every_ == 0 || step == last);
}

nlohmann::json Validator::figures(std::int64_t step, const AdaptationStart& start, double& value) {
  const auto begin = std::chrono::steady_clock::now();
  const int rank = group_ ? group_->rank() : 0, world = group_ ? group_->size() : 1;
  const auto n = static_cast<std::int64_t>(tasks_.size());
  std::vector<eval::TaskResult> results(tasks_.size());
  std::vector<bool> owned(tasks_.size());
  for (std::int64_t i = 0; i < n; ++i) {
    owned[i] = i % world == rank;
    if (!owned[i]) {
      results[i].task = tasks_[i]->name;
      continue;
    }
    results[i] = evaluate_task(scoring_config_, experiment_, start, *tasks_[i],
                               {data::Split::dev, config_.validation.query_size}, recompute_);
  }
  if (group_) results = combine(*group_, std::move(results), owned, step);

  const auto seed = static_cast<std::uint64_t>(config_.run.seed);
  const nlohmann::json summary = eval::summarize(results, {static_cast<int>(config_.eval.bins), 0, seed});
  const nlohmann::json& pooled = summary["aggregate"]["pooled"];
  nlohmann::json per_task = nlohmann::json::object();
  std::vector<double> before, after;
  for (std::size_t i = 0; i < results.size(); ++i) {
    per_task[results[i].task] = summary["per_task"][i]["accuracy"];
    before.push_back(results[i].extra["support_nll"].front().get<double>());
    after.push_back(results[i].extra["support_nll"].back().get<double>());
  }
  value = pooled[std::string(to_string(config_.validation.metric))].get<double>();
  return {{"step", step},
          {"tasks", results.size()},
          {"queries", pooled["n"]},
          {"accuracy", pooled["accuracy"]},
          {"ece", pooled["ece"]},
          {"nll", pooled["nll"]},
          {"brier", pooled["brier"]},
          {"mean_task_accuracy", summary["aggregate"]["mean_over_tasks"]["accuracy"]},
          {"per_task_accuracy", per_task},
          {"support_nll_before", mean(before)},
          {"support_nll_after", mean(after)},
          {"metric", to_string(config_.validation.metric)},
          {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count()}};
}

nlohmann::json Validator::validate(std::int64_t step, const AdaptationStart& start, ValidationState& state) {
  double value = 0;
  nlohmann::json line = figures(step, start, value);
  const bool higher_is_better = config_.validation.metric == ValidationMetric::accuracy;
  const bool best = !state.best_step || (higher_is_better ? value > state.best_value : value < state.best_value);
  line["best"] = best;
  state.last_step = step;
  if (best) {
    state.best_step = step;
    state.best_value = value;
    state.since_best = 0;
  } else {
    ++state.since_best;
  }
  log::info("validation at step {}: accuracy {:.4f}, ECE {:.4f}, NLL {:.4f} on {} queries of {} tasks{} ({:.1f} s)",
            step, line["accuracy"].get<double>(), line["ece"].get<double>(), line["nll"].get<double>(),
            line["queries"].get<std::int64_t>(), line["tasks"].get<std::int64_t>(),
            best ? fmt::format(", best {} so far", line["metric"].get<std::string>()) : "",
            line["seconds"].get<double>());
  return line;
}

nlohmann::json Validator::summary(const ValidationState& state) const {
  nlohmann::json out = {{"metric", to_string(config_.validation.metric)}, {"last_step", state.last_step}};
  if (state.best_step) {
    out["best_step"] = *state.best_step;
    out["best_value"] = state.best_value;
  }
  return out;
}

bool Validator::out_of_patience(const ValidationState& state) const {
  return enabled() && config_.validation.patience > 0 && state.since_best >= config_.validation.patience;
}

void Validator::record(const ValidationState& state, std::map<std::string, std::string>& metadata) const {
  nlohmann::json j = {{"settings", settings_}, {"last_step", state.last_step}};
  if (state.best_step)
    j["best"] = {{"step", *state.best_step}, {"value", state.best_value}, {"since", state.since_best}};
  metadata[kStateKey] = j.dump();
}

ValidationState Validator::restore(const std::map<std::string, std::string>& metadata,
                                   const std::string& source) const {
  ValidationState state;
  if (!enabled()) return state;
  const auto it = metadata.find(kStateKey);
  nlohmann::json j;
  if (it != metadata.end()) j = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("settings", nlohmann::json()) != settings_) {
    log::warn("{}: written without validation or under other validation settings; the best validation is chosen "
              "afresh from here",
              source);
    return state;
  }
  with_context(fmt::format("{}: invalid validation state in its metadata", source), [&] {
    state.last_step = integer_field(j, "last_step");
    if (j.contains("best")) {
      const nlohmann::json& best = j["best"];
      state.best_step = integer_field(best, "step");
      state.since_best = integer_field(best, "since");
      state.best_value = number_field(best, "value");
    }
  });
  return state;
}

}  // namespace abmll::meta
