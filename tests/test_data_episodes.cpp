// Unit tests of episodes and prompts (src/data/episode.h, prompt.h): sampling is deterministic for a seed,
// differs across seeds, keeps support and query disjoint; prompt templates and continuations; ICL demonstrations;
// truncation to the context length, counted by a byte-level tokenizer whose tokens are single bytes; episodes as
// token ids (meta/episode_nll.h) with each example tokenized once.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <vector>

#include "data/episode.h"
#include "data/jsonl_reader.h"
#include "data/tsv_reader.h"
#include "meta/episode_nll.h"
#include "text/byte_level.h"
#include "text/tokenizer.h"
#include "util/error.h"

using namespace abmll::data;
using abmll::Rng;
using Strings = std::vector<std::string>;

namespace {

const std::filesystem::path kTasks = std::filesystem::path(ABMLL_TEST_DATA) / "tasks";

// A tokenizer with one token per byte and no special tokens: token count = byte count.
abmll::text::Tokenizer byte_tokenizer() {
  using nlohmann::json;
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[abmll::text::byte_level::encode(std::string(1, static_cast<char>(b)))] = b;
  json j = {{"version", "1.0"},
            {"truncation", nullptr},
            {"padding", nullptr},
            {"added_tokens", json::array()},
            {"normalizer", nullptr},
            {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                               {"use_regex", false}}},
            {"post_processor", nullptr},
            {"decoder", {{"type", "ByteLevel"}}},
            {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"fuse_unk", false},
                       {"byte_fallback", false}, {"ignore_merges", false}, {"vocab", vocab},
                       {"merges", json::array()}}}};
  return abmll::text::Tokenizer::from_json(j);
}

// A classification task of `n` examples "x0".."x{n-1}" in its train split, labels alternating.
Task numbered_task(int n) {
  Task t;
  t.name = "numbered";
  t.options = {"even", "odd"};
  for (int i = 0; i < n; ++i) {
    Example ex;
    ex.input = fmt::format("x{}", i);
    ex.output = t.options[i % 2];
    ex.options = t.options;
    ex.label = i % 2;
    ex.source = {"numbered.tsv", i + 1};
    t.examples(Split::train).push_back(ex);
  }
  return t;
}

Strings prompts(const std::vector<ScoredPrompt>& ps) {
  Strings out;
  for (const auto& p : ps) out.push_back(p.prompt);
  return out;
}

}  // namespace

TEST_CASE("data: episodes are deterministic for a seed, differ across seeds, support and query disjoint", "[data]") {
  Task t = numbered_task(40);
  EpisodeOptions o;
  o.shots = 8;
  o.query_size = 12;
  Rng a = episode_rng(1, t.name, 0), b = episode_rng(1, t.name, 0), c = episode_rng(2, t.name, 0);
  Episode ea = sample_episode(t, o, a), eb = sample_episode(t, o, b), ec = sample_episode(t, o, c);
  CHECK(prompts(ea.support) == prompts(eb.support));
  CHECK(prompts(ea.query) == prompts(eb.query));
  CHECK(prompts(ea.support) != prompts(ec.support));
  Rng next = episode_rng(1, t.name, 1);
  CHECK(prompts(sample_episode(t, o, next).support) != prompts(ea.support));

  for (const Episode* e : {&ea, &ec}) {
    REQUIRE(e->support.size() == 8);
    REQUIRE(e->query.size() == 12);
    std::set<std::string> s;
    for (const auto& p : e->support) s.insert(p.prompt);
    for (const auto& p : e->query) CHECK(s.count(p.prompt) == 0);
    CHECK(s.size() == 8);
  }
  // Query size 0: all the rest, in file order.
  o.query_size = 0;
  Rng r(3);
  Episode all = sample_episode(t, o, r);
  CHECK(all.query.size() == 32);
  CHECK(all.query.front().source.line < all.query.back().source.line);
  // Too few examples.
  o.shots = 40;
  CHECK_THROWS_WITH(sample_episode(t, o, r),
                    Catch::Matchers::Contains("task 'numbered': its train split holds 40 examples, fewer than the 40 "
                                              "support examples asked for and at least one query"));
  o.shots = 30;
  o.query_size = 11;
  CHECK_THROWS_WITH(sample_episode(t, o, r),
                    Catch::Matchers::Contains("task 'numbered': its train split holds 40 examples, fewer than the 41 "
                                              "asked for (30 support and 11 query examples, apart)"));
}

TEST_CASE("data: episodes across splits; split choice", "[data]") {
  Task sentiment = read_crossfit_task(kTasks / "crossfit", "sentiment", {});
  EpisodeSplits held_out = episode_splits(sentiment, true);
  CHECK(held_out.support == Split::train);
  CHECK(held_out.query == Split::test);
  EpisodeSplits training = episode_splits(sentiment, false);
  CHECK(training.query == Split::train);
  Task chem = read_jsonl_task(kTasks / "jsonl" / "chem_mc.jsonl", {});
  CHECK(episode_splits(chem, true).query == Split::train);  // single file: one pool

  EpisodeOptions o;
  o.shots = 2;
  o.query_size = 0;
  o.support_split = held_out.support;
  o.query_split = held_out.query;
  Rng rng(0);
  Episode e = sample_episode(sentiment, o, rng);
  CHECK(e.support.size() == 2);
  REQUIRE(e.query.size() == 3);
  CHECK(e.query[0].prompt == "an instant classic");
  CHECK(e.query[0].continuations == Strings{" negative", " positive"});
  CHECK(e.query[0].label == 1);
  CHECK(e.query[1].label == 0);
}

TEST_CASE("data: prompt templates", "[data]") {
  Example ex;
  ex.input = "great {output} film";  // braces in the input are not placeholders
  ex.output = "positive";
  ex.options = {"negative", "positive"};
  ex.label = 1;
  PromptTemplate plain;
  CHECK(plain.prompt(ex) == "great {output} film");
  CHECK(plain.continuation("positive") == " positive");
  CHECK(plain.demonstration(ex) == "great {output} film positive");

  PromptTemplate qa("Review: {input}\nOptions: {options}\nAnswer: {output}\n");
  CHECK(qa.prompt(ex) == "Review: great {output} film\nOptions: (A) negative (B) positive\nAnswer:");
  CHECK(qa.answer_prefix() == " ");
  CHECK(qa.demonstration(ex) == "Review: great {output} film\nOptions: (A) negative (B) positive\nAnswer: positive\n");
  PromptTemplate glued("{input} =>{output}");
  CHECK(glued.continuation("x") == "x");

  CHECK_THROWS_WITH(PromptTemplate("no input"), Catch::Matchers::Contains("must contain {input}"));
  CHECK_THROWS_WITH(PromptTemplate("{output} {input}"), Catch::Matchers::Contains("must come before {output}"));
  CHECK_THROWS_WITH(PromptTemplate("{input}{output}{output}"), Catch::Matchers::Contains("may appear once"));

  abmll::DataConfig config;
  config.shots = 5;
  config.query_size = 7;
  config.icl_demos = 2;
  EpisodeOptions from_config = episode_options(config);
  CHECK(from_config.shots == 5);
  CHECK(from_config.query_size == 7);
  CHECK(from_config.icl_demos == 2);
  CHECK_FALSE(from_config.icl);
  CHECK(prompt_format(config).query_template.text() == "{input}");
  CHECK(prompt_format(config).demo_separator == "\n\n");
  config.prompt_template = "Q: {input}\nA:{output}";
  CHECK(prompt_format(config).query_template.answer_prefix().empty());
}

TEST_CASE("data: ICL puts the support set's demonstrations in each query prompt", "[data]") {
  Task t = numbered_task(10);
  EpisodeOptions o;
  o.shots = 3;
  o.query_size = 2;
  o.icl = true;
  Rng rng(11);
  Episode e = sample_episode(t, o, rng);
  std::string demos;
  for (const auto& s : e.support) {
    CHECK(s.demos == 0);
    demos += s.prompt + s.continuations[static_cast<std::size_t>(s.label)] + "\n\n";
  }
  for (const auto& q : e.query) {
    CHECK(q.demos == 3);
    CHECK(q.prompt.starts_with(demos));
    CHECK(q.prompt.size() == demos.size() + 2);  // "x" + one digit
  }
  o.icl_demos = 1;
  Rng again(11);
  Episode one = sample_episode(t, o, again);
  CHECK(one.query[0].demos == 1);
  const ScoredPrompt& demo = one.support[0];
  const std::string expected_demo = demo.prompt + demo.continuations[static_cast<std::size_t>(demo.label)] + "\n\n";
  CHECK(one.query[0].prompt.starts_with(expected_demo));
  CHECK(one.query[0].prompt.size() == expected_demo.size() + 2);
}

TEST_CASE("data: ICL truncation: whole demonstrations from the left, then tokens", "[data]") {
  auto tok = byte_tokenizer();
  REQUIRE(tok.encode("abc").size() == 3);
  const Strings demos{"first demo", "second", "third!"};  // 10, 6, 6 bytes
  const std::string sep = "\n\n", query = "the query text";  // 14 bytes
  const Strings conts{" yes", " no"};                          // longest: 4 bytes
  // Everything: 10+2 + 6+2 + 6+2 + 14 = 42 bytes of prompt, + 4 = 46.
  ScoredPrompt p = fit_prompt(demos, sep, query, conts, &tok, 46);
  CHECK(p.demos == 3);
  CHECK(p.prompt == "first demo\n\nsecond\n\nthird!\n\nthe query text");
  CHECK_FALSE(p.truncated);
  p = fit_prompt(demos, sep, query, conts, &tok, 45);  // the first demonstration goes, whole
  CHECK(p.demos == 2);
  CHECK(p.prompt == "second\n\nthird!\n\nthe query text");
  p = fit_prompt(demos, sep, query, conts, &tok, 29);  // 30 + 4 > 29, 22 + 4 fits: only "third!"
  CHECK(p.demos == 1);
  CHECK(p.prompt == "third!\n\nthe query text");
  p = fit_prompt(demos, sep, query, conts, &tok, 18);  // the query alone: 14 + 4
  CHECK(p.demos == 0);
  CHECK(p.prompt == "the query text");
  CHECK_FALSE(p.truncated);
  p = fit_prompt(demos, sep, query, conts, &tok, 13);  // then tokens from the left: 9 bytes remain
  CHECK(p.demos == 0);
  CHECK(p.truncated);
  CHECK(p.prompt == "uery text");
  // Multi-byte characters are never split: "é" is two bytes.
  p = fit_prompt({}, sep, "aéb", {" x"}, &tok, 4);
  CHECK(p.prompt == "b");
  p = fit_prompt({}, sep, "aéb", {" x"}, &tok, 5);
  CHECK(p.prompt == "éb");
  CHECK_THROWS_WITH(fit_prompt({}, sep, query, {" a very long answer"}, &tok, 10),
                    Catch::Matchers::Contains("the answer options need 19 tokens"));
  // Without a tokenizer nothing is cut.
  CHECK(fit_prompt(demos, sep, query, conts, nullptr, 5).demos == 3);
}

TEST_CASE("data: episode prompts fit the context length", "[data]") {
  auto tok = byte_tokenizer();
  Task t = numbered_task(10);
  EpisodeOptions o;
  o.shots = 4;
  o.query_size = 3;
  o.icl = true;
  o.tokenizer = &tok;
  o.max_length = 40;  // each demo "xN even\n\n" or "xN odd\n\n" is 8-9 bytes: fewer than 4 fit
  Rng rng(4);
  Episode e = sample_episode(t, o, rng);
  for (const auto& q : e.query) {
    CHECK(q.demos < 4);
    CHECK(q.demos >= 2);
    std::size_t longest = 0;
    for (const auto& c : q.continuations) longest = std::max(longest, c.size());
    CHECK(q.prompt.size() + longest <= 40);
  }
}

TEST_CASE("data: the tokenized-episode sampler equals tokenizing sampled episodes", "[data]") {
  auto tok = byte_tokenizer();
  Task t = numbered_task(40);
  for (int i = 0; i < 6; ++i) t.examples(Split::test).push_back(t.examples(Split::train)[static_cast<size_t>(i)]);
  for (const bool icl : {false, true}) {
    for (const Split query_split : {Split::train, Split::test}) {
      INFO("icl " << icl << ", query split " << to_string(query_split));
      EpisodeOptions o;
      o.shots = 4;
      o.query_size = query_split == Split::test ? 0 : 3;  // 0: the whole test split
      o.query_split = query_split;
      o.icl = icl;
      o.tokenizer = &tok;
      o.max_length = 12;  // some prompts are cut to fit
      abmll::meta::TokenizedEpisodeSampler sampler(tok);
      for (int episode = 0; episode < 20; ++episode) {  // later episodes reuse earlier ones' examples
        Rng a = episode_rng(1, t.name, episode), b = episode_rng(1, t.name, episode);
        const auto want = abmll::meta::tokenize_episode(sample_episode(t, o, a), tok);
        const auto got = sampler.sample(t, o, b);
        REQUIRE(got.support.size() == want.support.size());
        REQUIRE(got.query.size() == want.query.size());
        for (size_t i = 0; i < got.support.size(); ++i) {
          CHECK(got.support[i].prompt == want.support[i].prompt);
          CHECK(got.support[i].answer == want.support[i].answer);
        }
        for (size_t i = 0; i < got.query.size(); ++i) {
          CHECK(got.query[i].prompt == want.query[i].prompt);
          CHECK(got.query[i].answer == want.query[i].answer);
        }
        CHECK(a.next_u64() == b.next_u64());  // the same draws from the stream
      }
    }
  }
}
