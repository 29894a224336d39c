// One fuzzing input, run through episode sampling and prompt fitting (src/data/episode): a JSONL task, read as `abmll`
// reads one, sampled into an episode with settings the input chooses, with a fixed Llama-3-style tokenizer
// (fuzz_tokenizer_json: byte-level BPE, a <|begin_of_text|> template) or a Llama-2-style one (fuzz_sentencepiece_json,
// where an option alone and in its prompt's context tokenize differently). Shared by the libFuzzer target
// (episodes_fuzz.cpp) and the regression test over tests/data/episodes_corpus.
//
// Input: byte 0: shots (bits 0-2), query size (bits 3-5), ICL (bit 6), the prompt template (bit 7 with byte 2's bit 7);
// byte 1: max_length (0: no fitting, else 3 + byte1 % 125 tokens); byte 2: ICL demonstrations per prompt (bits 0-1, 0:
// all), the Llama-2-style tokenizer (bit 2); the rest: the task's JSONL file. What the episode must satisfy
// (episode.h): every prompt, with the template's special tokens, plus its longest continuation in its context fits in
// max_length tokens; prompts are valid UTF-8; labels index the continuations; support and query share no example; a
// query prompt carries at most the demonstrations asked for, support prompts none. abmll::InputError is the only
// acceptable failure; anything else (another exception, a broken invariant: abort) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <string_view>

#include "data/episode.h"
#include "data/jsonl_reader.h"
#include "text/utf8.h"
#include "tokenizer_fuzz_input.h"
#include "util/error.h"
#include "util/rng.h"

namespace abmll::fuzz {

[[noreturn]] inline void episode_finding(const char* what, const data::ScoredPrompt& p) {
  std::fprintf(stderr, "episodes fuzz finding: %s (%s)\n", what, data::to_string(p.source).c_str());
  std::abort();
}

inline void run_episodes_input(const std::uint8_t* data, std::size_t size, const std::filesystem::path& scratch) {
  if (size < 3) return;
  static const text::Tokenizer byte_level = text::Tokenizer::from_json(fuzz_tokenizer_json(kLlama3Pattern, false));
  static const text::Tokenizer sentencepiece = text::Tokenizer::from_json(fuzz_sentencepiece_json());
  const text::Tokenizer& tokenizer = (data[2] & 4) != 0 ? sentencepiece : byte_level;
  static const char* const templates[] = {"{input}", "Q: {input}\nA: {output}\n", "{input} {options} =>{output}.",
                                          "{input}\n{options}\nAnswer:"};
  std::filesystem::create_directories(scratch);
  const std::filesystem::path file = scratch / "task.jsonl";
  std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(data) + 3,
                                              static_cast<std::streamsize>(size - 3));
  data::ReaderOptions reader;
  reader.skip_malformed = true;
  data::EpisodeOptions options;
  options.shots = data[0] & 7;
  options.query_size = (data[0] >> 3) & 7;
  options.icl = (data[0] & 64) != 0;
  options.icl_demos = data[2] & 3;
  options.tokenizer = &tokenizer;
  options.max_length = data[1] == 0 ? 0 : 3 + data[1] % 125;
  data::Episode episode;
  try {
    options.format.query_template = data::PromptTemplate(templates[((data[0] >> 7) << 1) | (data[2] >> 7)]);
    const data::Task task = data::read_jsonl_task(file, reader);
    Rng rng = Rng::stream(7, "fuzz");
    episode = data::sample_episode(task, options, rng);
  } catch (const InputError&) {
    return;
  }
  std::set<std::string> support_sources;
  for (const bool is_query : {false, true}) {
    for (const data::ScoredPrompt& p : is_query ? episode.query : episode.support) {
      if (text::utf8::find_invalid(p.prompt) != std::string::npos) episode_finding("a prompt not valid UTF-8", p);
      if (p.continuations.empty() && episode.kind != data::TaskKind::generation)
        episode_finding("no continuations", p);
      if (p.label < 0 || (!p.continuations.empty() && static_cast<std::size_t>(p.label) >= p.continuations.size()))
        episode_finding("label out of range", p);
      if (!is_query && p.demos != 0) episode_finding("a support prompt with demonstrations", p);
      if (is_query && (!options.icl ? p.demos != 0
                                    : p.demos > options.shots || (options.icl_demos > 0 && p.demos > options.icl_demos)))
        episode_finding("more demonstrations than asked for", p);
      const std::string source = data::to_string(p.source);
      if (!is_query) support_sources.insert(source);
      else if (support_sources.count(source)) episode_finding("an example in both support and query", p);
      if (options.max_length > 0) {
        const std::vector<std::int32_t> prompt_ids = tokenizer.encode(p.prompt, true);
        std::size_t longest = 0;
        for (const std::string& c : p.continuations)
          longest = std::max(longest, tokenizer.encode_continuation(p.prompt, prompt_ids, c).size());
        if (prompt_ids.size() + longest > static_cast<std::size_t>(options.max_length))
          episode_finding("a prompt and its continuation longer than max_length", p);
      }
    }
  }
}

}  // namespace abmll::fuzz
