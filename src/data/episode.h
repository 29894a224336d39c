// Episodes: a task's support set (the k shots an adapter is fitted on) and query set (what it is scored on), as
// prompts ready for scoring. The scoring code tokenizes prompt + each continuation and compares the options'
// log-likelihoods; training uses the right continuation's NLL.
//
// Sampling. Support and query come from one split each (episode_splits picks them). From the same split they are
// drawn together without replacement, so they never share an example; from different splits each is drawn from
// its own. All randomness comes from the Rng passed in; episode_rng gives each (seed, task, episode index) its own
// stream, so an episode does not depend on which episodes were drawn before it, on this rank or another.
//
// ICL. With icl set, each query prompt starts with demonstrations: the first icl_demos support examples (all of
// them when 0), solved, in support order, each followed by the demo separator. Support prompts never carry
// demonstrations.
//
// Context length. With a tokenizer and max_length > 0, each prompt is fitted so that
//   tokens(prompt, with special tokens) + max over options of tokens(continuation in the prompt's context)
//     <= max_length,
// counting as the scorer tokenizes (Tokenizer::encode_continuation). Over it, whole demonstrations are dropped from the left first, then the query's
// own text is cut from the left (at a character boundary; as little as fits). InputError when the continuations
// alone do not fit.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/prompt.h"
#include "data/task.h"
#include "util/rng.h"

namespace abmll::text {
class Tokenizer;
}

namespace abmll::data {

struct ScoredPrompt {
  std::string prompt;                      // the text before the answer (with demonstrations in ICL queries)
  std::vector<std::string> continuations;  // one per option, e.g. " positive"; generation tasks: the answer alone
  std::int64_t label = 0;                  // index of the right continuation
  std::int64_t demos = 0;                  // demonstrations kept in `prompt`
  bool truncated = false;                  // the example's own text was cut from the left to fit max_length
  SourceLine source;                       // the example's file and line
};

struct Episode {
  std::string task;
  TaskKind kind = TaskKind::classification;
  std::vector<ScoredPrompt> support;
  std::vector<ScoredPrompt> query;
};

struct EpisodeOptions {
  std::int64_t shots = 16;       // support examples (k); 0 for zero-shot
  std::int64_t query_size = 16;  // query examples; 0: all of them (all the rest, when one split serves both)
  Split support_split = Split::train;
  Split query_split = Split::train;
  PromptFormat format;
  bool icl = false;
  std::int64_t icl_demos = 0;                   // demonstrations per query prompt; 0: the whole support set
  const text::Tokenizer* tokenizer = nullptr;   // both set: fit prompts to max_length tokens
  std::int64_t max_length = 0;
};

// shots, query_size, icl_demos and the prompt format from the config; splits, icl and the tokenizer are the
// caller's (they depend on the method and on whether the task is held out).
EpisodeOptions episode_options(const DataConfig& config);

struct EpisodeSplits {
  Split support = Split::train;
  Split query = Split::train;
};
// Splits for a task's episodes. Meta-training (held_out false): both from `train` (CrossFit's few-shot training
// file). Held-out tasks: support from `train`, query from `test`, else `dev`. A split the task lacks is replaced by
// its only non-empty one (a single-file JSONL task: support and query both from it, disjoint).
EpisodeSplits episode_splits(const Task& task, bool held_out);

// Whether `task` has a dev split apart from its support split and, with `apart_from_scored`, apart from the split
// a held-out evaluation scores (a task without a test file is scored on its dev file): the dev split can then
// give validation queries that neither adaptation nor the reported figures see.
bool has_separate_dev_split(const Task& task, bool apart_from_scored);

// One episode of `task`. Throws InputError when a split holds fewer examples than asked for (naming the task,
// the split and both numbers).
Episode sample_episode(const Task& task, const EpisodeOptions& options, Rng& rng);

// sample_episode in two parts, for callers that keep examples' prompts across episodes (without ICL an example's
// prompt does not depend on the episode): which examples an episode draws (indices into the examples of
// options.support_split and options.query_split; the same draws from `rng` as sample_episode), and one example as
// an episode presents it (`demos`: the ICL demonstrations of a query prompt, else empty).
struct EpisodeDraw {
  std::vector<std::size_t> support, query;
};
EpisodeDraw draw_episode(const Task& task, const EpisodeOptions& options, Rng& rng);
ScoredPrompt episode_prompt(const Task& task, const Example& example, const std::vector<std::string>& demos,
                            const EpisodeOptions& options);
// The ICL demonstrations of a drawn episode's query prompts: the first icl_demos support examples (all of them when
// 0), solved, in support order (whether or not options.icl is set).
std::vector<std::string> episode_demonstrations(const Task& task, const EpisodeOptions& options,
                                                const EpisodeDraw& draw);

// The random stream of episode `index` of `task` in a run seeded with `seed`.
Rng episode_rng(std::uint64_t seed, std::string_view task, std::int64_t index);

// Fits `prompt` (demonstrations `demos`, separated by `separator` from each other and from `query`) to the budget
// described above; exposed for tests and for callers building prompts of their own.
ScoredPrompt fit_prompt(const std::vector<std::string>& demos, const std::string& separator, const std::string& query,
                        std::vector<std::string> continuations, const text::Tokenizer* tokenizer,
                        std::int64_t max_length);

}  // namespace abmll::data
