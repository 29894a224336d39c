// `abmll predict`: a task's predictions for queries of one's own (JSONL or TSV, data/query_file.h), from what
// `abmll adapt` inferred for it: with abmll the posterior predictive over the answer options, averaged over
// eval.samples posterior draws (the posterior mean when 0), with how uncertain each prediction is and how much of
// that the draws' disagreement makes (eval/predictive_uncertainty.h); with lora, fomaml and reptile the adapted
// LoRA's; with pretrained and icl the base model's. ICL methods put the task's support demonstrations (the shots
// adapt fitted on) before each query, as evaluate does. Scoring is evaluate's (eval.* keys, the same draws), so a
// held-out task's test examples predicted this way get the probabilities `evaluate` reports for them (the `weight`
// family's with posterior draws: when they fit in one chunk, see below).
//
// Long runs. Queries are scored in chunks of `chunk` (1024 by default), each recorded as it finishes in
// predictions.chunks.jsonl (evaluation_progress.h: tied to the resolved config, the device's kind, the adapted file
// and the queries file, path and bytes). SIGINT/SIGTERM let the current chunk finish and stop without output;
// `--resume` scores only the chunks not yet recorded, and writes what an uninterrupted run writes. The record is
// removed once predictions.jsonl is written. (The `weight` family draws its per-token noise per forward row, so its
// posterior draws depend on which queries share a chunk: the same for a given chunk size.)
//
// Writes into the output folder predictions.jsonl, one line per query in input order:
//   {"line", "probs", "option_loglik", "options", "prediction", "answer", "confidence", "entropy",
//    "expected_entropy", "mutual_information", ["label", "correct"] where the query gave its answer,
//    ["truncated": true] where its text was cut to fit model.max_length}
// readable by `abmll calibrate` when every query gave its answer.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "config/experiment_config.h"

namespace abmll::meta {

struct PredictRun {
  std::filesystem::path adapted;  // adapt's output folder or its phi.safetensors; empty for pretrained and icl
  std::string task;               // whose options and demonstrations the queries take; "": the adapted task
  std::filesystem::path input;    // the queries
  std::filesystem::path out;      // folder for predictions.jsonl
  bool resume = false;            // keep the chunks a stopped run with the same settings recorded
  std::size_t chunk = 1024;       // queries per recorded chunk (>= 1)
  nlohmann::json resolved_config; // what the record's fingerprint holds
};

struct PredictResult {
  int interrupt_signal = 0;            // nonzero: stopped between chunks by this signal; nothing written but the record
  std::size_t chunks_done = 0, chunks = 0;
  std::filesystem::path record;        // predictions.chunks.jsonl
  std::filesystem::path predictions;
  // {"task", "held_out", "method", "adapted", "input", "queries", "labelled", "samples", "truncated_prompts",
  //  ["mean_demos"], "scoring_seconds", "scoring_queries_per_s", ["metrics": evaluate's pooled metrics with 95%
  //  bootstrap intervals, over the queries that gave their answer]}
  nlohmann::json summary;
};

// Throws InputError for a method that adapts without --adapted (or the reverse), an adapted file that does not fit
// the config (adapted_task.h), a task the data config lacks or that differs from the adapted one, and malformed
// queries (naming file and line).
PredictResult predict(const ExperimentConfig& config, const PredictRun& run);

}  // namespace abmll::meta
