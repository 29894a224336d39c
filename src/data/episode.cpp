#include "data/episode.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "data/options.h"
#include "text/tokenizer.h"
#include "util/error.h"

namespace abmll::data {

namespace {

using Index = std::size_t;

std::int64_t count_tokens(const text::Tokenizer& tok, std::string_view text, bool special) {
  return static_cast<std::int64_t>(tok.encode(text, special).size());
}

std::string join(const std::vector<std::string>& demos, std::size_t first, const std::string& separator,
                 const std::string& query) {
  std::string out;
  for (std::size_t i = first; i < demos.size(); ++i) out += demos[i] + separator;
  return out + query;
}

std::vector<std::string> continuations_of(const Example& ex, const PromptTemplate& tpl) {
  std::vector<std::string> out;
  if (ex.options.empty()) {
    out.push_back(tpl.continuation(ex.output));
  } else {
    for (const auto& o : ex.options) out.push_back(tpl.continuation(o));
  }
  return out;
}

const std::vector<Example>& pool(const Task& task, Split split) { return task.examples(split); }

// `asked` says what was asked for, e.g. "the 8 support examples asked for".
void check_size(const Task& task, Split split, std::size_t have, std::size_t need, const std::string& asked) {
  if (have < need)
    throw InputError(fmt::format("task '{}': its {} split holds {} examples, fewer than {}", task.name,
                                 to_string(split), have, asked));
}

}  // namespace

ScoredPrompt fit_prompt(const std::vector<std::string>& demos, const std::string& separator, const std::string& query,
                        std::vector<std::string> continuations, const text::Tokenizer* tokenizer,
                        std::int64_t max_length) {
  ScoredPrompt out;
  out.continuations = std::move(continuations);
  std::size_t first = 0;
  if (tokenizer && max_length > 0) {
    // The prompt's tokens, and the longest option's in its context, as the scorer counts them.
    auto lengths = [&](const std::string& prompt) {
      const std::vector<std::int32_t> ids = tokenizer->encode(prompt, true);
      std::int64_t answer = 0;
      for (const auto& c : out.continuations)
        answer = std::max(answer, static_cast<std::int64_t>(tokenizer->encode_continuation(prompt, ids, c).size()));
      return std::pair{static_cast<std::int64_t>(ids.size()), answer};
    };
    auto fits = [&](const std::string& prompt) {
      const auto [prompt_tokens, answer] = lengths(prompt);
      return prompt_tokens + answer <= max_length;
    };
    if (const auto [prompt_tokens, answer] = lengths(""); prompt_tokens + answer > max_length)
      throw InputError(fmt::format("the answer options need {} tokens, leaving no room for a prompt within "
                                   "model.max_length {}",
                                   answer, max_length));
    // Whole demonstrations, from the left. Estimate with per-part counts (options alone), then check the joined
    // text exactly.
    if (!demos.empty()) {
      std::int64_t answer = 0;
      for (const auto& c : out.continuations) answer = std::max(answer, count_tokens(*tokenizer, c, false));
      const std::int64_t budget = max_length - answer;
      std::int64_t total = count_tokens(*tokenizer, query, true);
      std::vector<std::int64_t> cost(demos.size());
      for (std::size_t i = 0; i < demos.size(); ++i) {
        cost[i] = count_tokens(*tokenizer, demos[i] + separator, false);
        total += cost[i];
      }
      while (first < demos.size() && total > budget) total -= cost[first++];
      // Tokens can merge across the joins, so the estimate may overshoot (add back) or undershoot (drop more).
      while (first > 0 && fits(join(demos, first - 1, separator, query))) --first;
      while (first < demos.size() && !fits(join(demos, first, separator, query))) ++first;
    }
    if (first == demos.size() && !fits(query)) {
      // The query alone is too long: cut it at the first character boundary from which the rest fits (binary
      // search: the token count shrinks as the cut moves right).
      std::vector<std::size_t> starts;  // character boundaries, then the end
      for (std::size_t i = 0; i < query.size(); ++i)
        if ((static_cast<unsigned char>(query[i]) & 0xC0) != 0x80) starts.push_back(i);
      starts.push_back(query.size());
      std::size_t lo = 0, hi = starts.size() - 1;  // from starts[lo] it does not fit; from starts[hi] it does
      while (hi - lo > 1) {
        std::size_t mid = lo + (hi - lo) / 2;
        if (fits(query.substr(starts[mid]))) hi = mid;
        else lo = mid;
      }
      out.prompt = query.substr(starts[hi]);
      out.truncated = true;
      return out;
    }
  }
  out.demos = static_cast<std::int64_t>(demos.size() - first);
  out.prompt = join(demos, first, separator, query);
  return out;
}

EpisodeSplits episode_splits(const Task& task, bool held_out) {
  std::vector<Split> present;
  for (Split s : kSplits)
    if (!task.examples(s).empty()) present.push_back(s);
  auto has = [&](Split s) { return std::find(present.begin(), present.end(), s) != present.end(); };
  Split fallback = present.size() == 1 ? present.front() : Split::train;
  EpisodeSplits out;
  out.support = has(Split::train) ? Split::train : fallback;
  if (!held_out) out.query = out.support;
  else if (has(Split::test)) out.query = Split::test;
  else if (has(Split::dev)) out.query = Split::dev;
  else out.query = out.support;
  return out;
}

bool has_separate_dev_split(const Task& task, bool apart_from_scored) {
  const EpisodeSplits splits = episode_splits(task, /*held_out=*/true);
  return !task.examples(Split::dev).empty() && splits.support != Split::dev &&
         !(apart_from_scored && splits.query == Split::dev);
}

EpisodeDraw draw_episode(const Task& task, const EpisodeOptions& options, Rng& rng) {
  const auto& support_pool = pool(task, options.support_split);
  const auto& query_pool = pool(task, options.query_split);
  const std::size_t shots = static_cast<std::size_t>(std::max<std::int64_t>(options.shots, 0));
  const std::size_t query_size = static_cast<std::size_t>(std::max<std::int64_t>(options.query_size, 0));

  EpisodeDraw draw;
  if (options.support_split == options.query_split) {
    const std::size_t n = support_pool.size();
    check_size(task, options.support_split, n, shots + std::max<std::size_t>(query_size, 1),
               query_size ? fmt::format("the {} asked for ({} support and {} query examples, apart)",
                                        shots + query_size, shots, query_size)
                          : fmt::format("the {} support examples asked for and at least one query", shots));
    std::vector<Index> drawn = rng.sample(n, query_size ? shots + query_size : n);
    draw.support.assign(drawn.begin(), drawn.begin() + static_cast<std::ptrdiff_t>(shots));
    draw.query.assign(drawn.begin() + static_cast<std::ptrdiff_t>(shots), drawn.end());
  } else {
    check_size(task, options.support_split, support_pool.size(), shots,
               fmt::format("the {} support examples asked for", shots));
    draw.support = rng.sample(support_pool.size(), shots);
    check_size(task, options.query_split, query_pool.size(), std::max<std::size_t>(query_size, 1),
               query_size ? fmt::format("the {} queries asked for", query_size) : std::string("one query"));
    draw.query = rng.sample(query_pool.size(), query_size ? query_size : query_pool.size());
  }
  if (query_size == 0) std::sort(draw.query.begin(), draw.query.end());  // "all": keep file order
  return draw;
}

ScoredPrompt episode_prompt(const Task& task, const Example& ex, const std::vector<std::string>& demos,
                            const EpisodeOptions& options) {
  const PromptTemplate& tpl = options.format.query_template;
  ScoredPrompt p = with_context(fmt::format("{} (task '{}')", to_string(ex.source), task.name), [&] {
    return fit_prompt(demos, options.format.demo_separator, tpl.prompt(ex), continuations_of(ex, tpl),
                      options.tokenizer, options.max_length);
  });
  p.label = ex.options.empty() ? 0 : ex.label;
  p.source = ex.source;
  return p;
}

std::vector<std::string> episode_demonstrations(const Task& task, const EpisodeOptions& options,
                                                const EpisodeDraw& draw) {
  const auto& support_pool = pool(task, options.support_split);
  const std::size_t m = options.icl_demos > 0 ? std::min<std::size_t>(options.icl_demos, draw.support.size())
                                              : draw.support.size();
  std::vector<std::string> demos;
  for (std::size_t i = 0; i < m; ++i)
    demos.push_back(options.format.query_template.demonstration(support_pool[draw.support[i]]));
  return demos;
}

Episode sample_episode(const Task& task, const EpisodeOptions& options, Rng& rng) {
  const EpisodeDraw draw = draw_episode(task, options, rng);
  const auto& support_pool = pool(task, options.support_split);
  const auto& query_pool = pool(task, options.query_split);
  Episode episode;
  episode.task = task.name;
  episode.kind = task.kind;
  for (Index i : draw.support) episode.support.push_back(episode_prompt(task, support_pool[i], {}, options));

  std::vector<std::string> demos;
  if (options.icl) demos = episode_demonstrations(task, options, draw);
  for (Index i : draw.query) episode.query.push_back(episode_prompt(task, query_pool[i], demos, options));
  return episode;
}

EpisodeOptions episode_options(const DataConfig& config) {
  EpisodeOptions o;
  o.shots = config.shots;
  o.query_size = config.query_size;
  o.icl_demos = config.icl_demos;
  o.format = prompt_format(config);
  return o;
}

Rng episode_rng(std::uint64_t seed, std::string_view task, std::int64_t index) {
  return Rng::stream(seed, fmt::format("episodes/{}/{}", task, index));
}

}  // namespace abmll::data
