// Unit tests of the task readers (src/data): CrossFit, UnifiedQA and JSONL on the fixtures in tests/data/tasks,
// option parsing and task kinds, partitions, task sets from a DataConfig, and every malformed case, each asserting
// its message (file:line and problem) and, under skip_malformed, the skipped count.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "config/experiment_config.h"
#include "data/jsonl_reader.h"
#include "data/options.h"
#include "data/partition.h"
#include "data/task_set.h"
#include "data/tsv_reader.h"
#include "test_support.h"
#include "util/error.h"

using namespace abmll::data;
using abmll::test::ScratchDir;
using abmll::test::write_text;
using Catch::Matchers::Contains;
using Strings = std::vector<std::string>;

namespace {

const std::filesystem::path kTasks = std::filesystem::path(ABMLL_TEST_DATA) / "tasks";

using abmll::test::input_error_of;

ReaderOptions skipping() {
  ReaderOptions o;
  o.skip_malformed = true;
  return o;
}

const Example& first(const Task& task, Split split) { return task.examples(split).at(0); }

}  // namespace

TEST_CASE("data: CrossFit classification task: label set from all files, sorted", "[data]") {
  Task t = read_crossfit_task(kTasks / "crossfit", "sentiment", {});
  CHECK(t.name == "sentiment");
  CHECK(t.kind == TaskKind::classification);
  CHECK_FALSE(t.is_multiple_choice());
  CHECK(t.options == Strings{"negative", "positive"});
  CHECK(t.examples(Split::train).size() == 6);
  CHECK(t.examples(Split::dev).size() == 2);
  CHECK(t.examples(Split::test).size() == 3);
  const Example& ex = first(t, Split::train);
  CHECK(ex.input == "a delight from start to finish");
  CHECK(ex.output == "positive");
  CHECK(ex.options == t.options);
  CHECK(ex.label == 1);
  CHECK(ex.source.line == 1);
  CHECK(ex.source.file.filename() == "sentiment_16_100_train.tsv");
  CHECK(first(t, Split::dev).label == 1);
}

TEST_CASE("data: CrossFit multiple choice: options parsed from the input, answer located", "[data]") {
  Task t = read_crossfit_task(kTasks / "crossfit", "science_mc", {});
  CHECK(t.kind == TaskKind::multiple_choice);
  CHECK(t.is_multiple_choice());
  CHECK(t.options.empty());
  const Example& ex = first(t, Split::train);
  CHECK(ex.options == Strings{"oxygen", "carbon dioxide", "helium"});
  CHECK(ex.label == 1);
  CHECK(ex.input == "What gas do plants take in? (A) oxygen (B) carbon dioxide (C) helium");
  // The question quotes "(A)" itself: the list that holds the answer wins.
  const Example& quoting = t.examples(Split::train).at(3);
  CHECK(quoting.options == Strings{"the first item", "the last item"});
  CHECK(quoting.label == 0);
  CHECK(t.examples(Split::dev).empty());
}

TEST_CASE("data: CrossFit generation task: alternatives after the first output; no options", "[data]") {
  ReaderOptions o;
  o.max_labels = 3;  // four distinct answers
  Task t = read_crossfit_task(kTasks / "crossfit", "trivia", o);
  CHECK(t.kind == TaskKind::generation);
  CHECK(t.examples(Split::train).at(1).output == "pacific");
  CHECK(t.examples(Split::train).at(1).options.empty());
  CHECK(t.examples(Split::train).at(1).label == -1);
  // With the default bound the same four answers are a label set.
  CHECK(read_crossfit_task(kTasks / "crossfit", "trivia", {}).kind == TaskKind::classification);
}

TEST_CASE("data: CrossFit file names: seed, k, flat layout, missing task", "[data]") {
  ScratchDir dir;
  write_text(dir / "t_16_13_train.tsv", "x\ta\ny\tb\n");
  write_text(dir / "t_16_100_train.tsv", "x\ta\n");
  ReaderOptions o;
  o.crossfit_seed = 13;
  Task t = read_crossfit_task(dir.path(), "t", o);  // flat layout, seed 13
  CHECK(t.examples(Split::train).size() == 2);
  write_text(dir / "t_32_13_dev.tsv", "z\ta\n");
  CHECK_THAT(input_error_of([&] { read_crossfit_task(dir.path(), "t", o); }),
             Contains("files for several k (16, 32)"));
  o.crossfit_k = 32;
  CHECK(read_crossfit_task(dir.path(), "t", o).examples(Split::dev).size() == 1);
  CHECK_THAT(input_error_of([&] { read_crossfit_task(dir.path(), "nope", {}); }),
             Contains("CrossFit task 'nope': no files nope_*_100_{train,dev,test}.tsv"));
}

TEST_CASE("data: option parsing", "[data]") {
  auto p = parse_options("Q? (A) one (B) two [SEP] context (C) no", "two");
  REQUIRE(p);
  CHECK(p->options == Strings{"one", "two"});
  CHECK(p->label == 1);
  p = parse_options("q \n(a) x (b) y\nctx", "Y");  // lowercase markers; case-insensitive answer match
  REQUIRE(p);
  CHECK(p->options == Strings{"x", "y"});
  CHECK(p->label == 1);
  CHECK_FALSE(parse_options("no options here", "x"));
  CHECK_FALSE(parse_options("only (A) one", "one"));
  CHECK_FALSE(parse_options("glued(A) x (B) y", "x"));
  p = parse_options("Q (A) x (B) y", "z");
  REQUIRE(p);
  CHECK(p->label == -1);
  CHECK(find_option({"a  b", "c"}, " A B ") == 0);
}

TEST_CASE("data: UnifiedQA: literal \\n separators become newlines; kinds", "[data]") {
  CHECK(list_unifiedqa_tasks(kTasks / "unifiedqa") == Strings{"arc_easy", "boolq"});
  Task arc = read_unifiedqa_task(kTasks / "unifiedqa" / "arc_easy", {});
  CHECK(arc.kind == TaskKind::multiple_choice);
  const Example& ex = first(arc, Split::train);
  CHECK(ex.input == "which gas do plants take in?\n(a) oxygen (b) carbon dioxide (c) helium");
  CHECK(ex.options == Strings{"oxygen", "carbon dioxide", "helium"});
  CHECK(ex.label == 1);
  const Example& with_context = arc.examples(Split::train).at(2);
  CHECK(with_context.options == Strings{"salt", "sand", "sugar"});  // the context line is not an option
  CHECK(first(arc, Split::test).label == 1);
  Task boolq = read_unifiedqa_task(kTasks / "unifiedqa" / "boolq", {});
  CHECK(boolq.kind == TaskKind::classification);
  CHECK(boolq.options == Strings{"no", "yes"});
}

TEST_CASE("data: JSONL: explicit options, label sets, single-file tasks", "[data]") {
  CHECK(list_jsonl_tasks(kTasks / "jsonl").size() == 2);
  Task chem = read_jsonl_task(kTasks / "jsonl" / "chem_mc.jsonl", {});
  CHECK(chem.name == "chem_mc");
  CHECK(chem.kind == TaskKind::multiple_choice);
  CHECK(chem.examples(Split::train).size() == 4);
  CHECK(first(chem, Split::train).options == Strings{"sodium", "nitrogen", "neon"});
  CHECK(chem.examples(Split::train).at(1).label == 1);
  Task legal = read_jsonl_task(kTasks / "jsonl" / "contract_yes_no", {});
  CHECK(legal.kind == TaskKind::classification);
  CHECK(legal.options == Strings{"No", "Yes"});
  CHECK(first(legal, Split::train).input == "Clause: The tenant may sublet with consent.\nDoes the clause allow subletting?");
  CHECK(first(legal, Split::test).label == 0);
}

TEST_CASE("data: malformed TSV lines name file and line", "[data]") {
  ScratchDir dir;
  auto crossfit_error = [&](const std::string& text) {
    std::filesystem::create_directories(dir / "t");
    write_text(dir / "t" / "t_16_100_train.tsv", text);
    return input_error_of([&] { read_crossfit_task(dir.path(), "t", {}); });
  };
  const std::string file = (dir / "t" / "t_16_100_train.tsv").string();
  CHECK(crossfit_error("a\tx\nno tab here\n") == file + ":2: expected input<TAB>output, found no tab");
  CHECK(crossfit_error("a\tx\n\nb\t \n") == file + ":3: empty output");
  CHECK(crossfit_error("\tx\n") == file + ":1: empty input");
  CHECK(crossfit_error("a\tx\nb\xff\tx\n") == file + ":2: invalid UTF-8 at byte 2 of the line");
  // Multiple choice: the answer must be an option; every input must list options.
  CHECK(crossfit_error("Q1 (A) a (B) b\ta\nQ2 (A) a (B) b\tc\n") ==
        file + ":2: answer \"c\" is not among the options (A) \"a\" (B) \"b\" parsed from the input");
  CHECK(crossfit_error("Q1 (A) a (B) b\ta\nQ2 (A) a (B) b\tb\nQ3 no options\tb\n") ==
        file + ":3: no options \" (A) ... (B) ...\" in the input, while most inputs of this task have them");
}

TEST_CASE("data: malformed JSONL lines name file and line", "[data]") {
  ScratchDir dir;
  auto jsonl_error = [&](const std::string& text) {
    write_text(dir / "t.jsonl", text);
    return input_error_of([&] { read_jsonl_task(dir / "t.jsonl", {}); });
  };
  const std::string file = (dir / "t.jsonl").string();
  CHECK_THAT(jsonl_error("{\"input\": \"a\", \"output\": \"b\"}\n{\"input\": \"a\"\n"),
             Contains(file + ":2: not JSON (at byte 14): syntax error while parsing object"));
  CHECK(jsonl_error("[1]\n") == file + ":1: expected a JSON object, found array");
  CHECK(jsonl_error("{\"output\": \"b\"}\n") == file + ":1: missing \"input\"");
  CHECK(jsonl_error("{\"input\": \"a\", \"output\": 3}\n") == file + ":1: \"output\" must be a string, found number");
  CHECK(jsonl_error("{\"input\": \"  \", \"output\": \"b\"}\n") == file + ":1: empty \"input\"");
  CHECK(jsonl_error("{\"input\": \"a\", \"output\": \"b\", \"options\": [\"b\"]}\n") ==
        file + ":1: \"options\" must be an array of at least two strings");
  CHECK(jsonl_error("{\"input\": \"a\", \"output\": \"z\", \"options\": [\"b\", \"c\"]}\n") ==
        file + ":1: answer \"z\" is not among the options (A) \"b\" (B) \"c\"");
  CHECK(jsonl_error("{\"input\": \"a\", \"output\": \"b\", \"options\": [\"b\", \"c\"]}\n"
                    "{\"input\": \"a\", \"output\": \"b\"}\n") ==
        file + ":2: no \"options\", while other lines of this task have them");
}

TEST_CASE("data: skip_malformed skips and counts bad lines", "[data]") {
  ScratchDir dir;
  write_text(dir / "t.jsonl",
             "{\"input\": \"a\", \"output\": \"b\", \"options\": [\"b\", \"c\"]}\n"
             "not json\n"
             "{\"input\": \"q\", \"output\": \"z\", \"options\": [\"b\", \"c\"]}\n"
             "{\"input\": \"r\", \"output\": \"c\", \"options\": [\"b\", \"c\"]}\n");
  Task t = read_jsonl_task(dir / "t.jsonl", skipping());
  CHECK(t.skipped == 2);
  REQUIRE(t.examples(Split::train).size() == 2);
  CHECK(t.examples(Split::train).at(1).input == "r");
  CHECK(t.examples(Split::train).at(1).label == 1);
  CHECK(t.examples(Split::train).at(1).source.line == 4);
}

TEST_CASE("data: partitions: paper names, file stems, paths, held-out key", "[data]") {
  CHECK(crossfit_partition_stem("cls-45") == "train_classification_test_classification");
  CHECK(crossfit_partition_stem("NLI") == "train_non_nli_test_nli");
  CHECK(crossfit_partition_stem("mcqa") == "train_non_multiple_choice_qa_test_multiple_choice");
  CHECK(crossfit_partition_stem("para") == "train_nonparaphrase_classification_test_paraphrase");
  CHECK(crossfit_partition_stem("cls-23") == "train_halfhalf_test_classification");
  CHECK_FALSE(crossfit_partition_stem("tiny"));

  Partition nli = load_partition("nli", kTasks / "crossfit");  // held-out tasks under "dev"
  CHECK(nli.train == Strings{"trivia", "science_mc"});
  CHECK(nli.test == Strings{"sentiment"});
  CHECK(nli.test_key == "dev");
  Partition tiny = load_partition("tiny", kTasks / "crossfit");  // another stem: "test" when non-empty
  CHECK(tiny.test == Strings{"science_mc"});
  CHECK(tiny.test_key == "test");
  Partition by_path = load_partition((kTasks / "crossfit" / "partitions" / "tiny.json").string(), "/nonexistent");
  CHECK(by_path.train == Strings{"trivia", "sentiment"});

  CHECK_THAT(input_error_of([&] { load_partition("cls-45", kTasks / "crossfit"); }),
             Contains("partitions/train_classification_test_classification.json"));
  ScratchDir dir;
  write_text(dir / "p.json", "{\"train\": [\"a\", 3]}");
  CHECK(input_error_of([&] { load_partition((dir / "p.json").string(), dir.path()); }) ==
        (dir / "p.json").string() + ": \"train\"[1] must be a task name, found 3");
  write_text(dir / "q.json", "{\"train\": [\"a\",\n ]}");
  CHECK_THAT(input_error_of([&] { load_partition((dir / "q.json").string(), dir.path()); }),
             Contains((dir / "q.json").string() + ": not JSON: ") && Contains("line 2"));
}

TEST_CASE("data: task sets from a DataConfig", "[data]") {
  abmll::DataConfig config;
  config.format = abmll::DataFormat::crossfit;
  config.path = (kTasks / "crossfit").string();
  config.partition = "nli";
  TaskSet set = load_task_set(config);
  REQUIRE(set.train.size() == 2);
  CHECK(set.train[0].name == "trivia");
  CHECK(set.train[1].kind == TaskKind::multiple_choice);
  REQUIRE(set.test.size() == 1);
  CHECK(set.test[0].name == "sentiment");

  config.partition = "";
  CHECK_THAT(input_error_of([&] { load_task_set(config); }), Contains("data.partition: required"));

  config.format = abmll::DataFormat::unifiedqa;
  config.path = (kTasks / "unifiedqa").string();
  set = load_task_set(config);  // no partition: every task held out
  CHECK(set.train.empty());
  CHECK(set.test.size() == 2);

  config.format = abmll::DataFormat::jsonl;
  config.path = (kTasks / "jsonl" / "chem_mc.jsonl").string();
  set = load_task_set(config);
  REQUIRE(set.test.size() == 1);
  CHECK(set.test[0].name == "chem_mc");

  // A partition naming a task the folder lacks; an empty task, an error or skipped.
  ScratchDir dir;
  write_text(dir / "a.jsonl", "{\"input\": \"x\", \"output\": \"y\"}\n");
  write_text(dir / "empty.jsonl", "\n");
  write_text(dir / "p.json", "{\"train\": [\"a\"], \"test\": [\"b\"]}");
  config.path = dir.path().string();
  config.partition = (dir / "p.json").string();
  CHECK_THAT(input_error_of([&] { load_task_set(config); }), Contains("names task 'b', which"));
  config.partition = "";
  CHECK(input_error_of([&] { load_task_set(config); }) ==
        "task 'empty' has no examples (" + (dir / "empty.jsonl").string() + ")");
  set = load_task_set(config, skipping());
  REQUIRE(set.test.size() == 1);
  CHECK(set.test[0].name == "a");
}
