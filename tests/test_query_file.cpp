// Unit tests of the queries `abmll predict` reads (src/data/query_file.h): where each query's options come from for
// each kind of task, labels from answers given or not, and every malformed case with its file:line message.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "data/query_file.h"
#include "test_support.h"
#include "util/error.h"

using namespace abmll::data;
using abmll::test::input_error_of;
using abmll::test::ScratchDir;
using abmll::test::write_text;
using Catch::Matchers::Contains;
using Strings = std::vector<std::string>;

namespace {

Task task_of_kind(TaskKind kind) {
  Task task;
  task.name = "sentiment";
  task.kind = kind;
  if (kind == TaskKind::classification) task.options = {"negative", "positive"};
  return task;
}

std::vector<Example> read(const ScratchDir& dir, const std::string& text, TaskKind kind, bool skip = false) {
  write_text(dir / "q.jsonl", text);
  ReaderOptions options;
  options.skip_malformed = skip;
  return read_query_file(dir / "q.jsonl", task_of_kind(kind), options);
}

}  // namespace

TEST_CASE("query file: a classification task's label set, or a line's own options; labels where answers are given",
          "[data]") {
  ScratchDir dir;
  const auto queries = read(dir,
                            "{\"input\": \"great film\"}\n"
                            "\n"
                            "{\"input\": \"dull\", \"output\": \" Negative \"}\n"
                            "{\"input\": \"so-so\", \"options\": [\"fine\", \"bad\", \"good\"], "
                            "\"output\": \"good\"}\n",
                            TaskKind::classification);
  REQUIRE(queries.size() == 3);
  CHECK(queries[0].options == Strings{"negative", "positive"});
  CHECK(queries[0].label == -1);
  CHECK(queries[0].source.line == 1);
  CHECK(queries[1].label == 0);  // matched ignoring case and surrounding spaces
  CHECK(queries[1].source.line == 3);
  CHECK(queries[2].options == Strings{"fine", "bad", "good"});
  CHECK(queries[2].label == 2);
}

TEST_CASE("query file: a multiple-choice task's options parsed from the input", "[data]") {
  ScratchDir dir;
  const auto queries = read(dir,
                            "{\"input\": \"Sky? (A) red (B) blue\", \"output\": \"blue\"}\n"
                            "{\"input\": \"Grass? (A) green (B) grey (C) pink\"}\n",
                            TaskKind::multiple_choice);
  REQUIRE(queries.size() == 2);
  CHECK(queries[0].options == Strings{"red", "blue"});
  CHECK(queries[0].label == 1);
  CHECK(queries[1].options == Strings{"green", "grey", "pink"});
  CHECK(queries[1].label == -1);

  CHECK_THAT(input_error_of([&] { read(dir, "{\"input\": \"Sky?\"}\n", TaskKind::multiple_choice); }),
             Contains("q.jsonl:1") && Contains("no options \" (A) ... (B) ...\" in the input"));
}

TEST_CASE("query file: a generation task's queries need options of their own", "[data]") {
  ScratchDir dir;
  const auto queries = read(dir, "{\"input\": \"2+2\", \"options\": [\"4\", \"5\"]}\n", TaskKind::generation);
  REQUIRE(queries.size() == 1);
  CHECK(queries[0].options == Strings{"4", "5"});
  CHECK_THAT(input_error_of([&] { read(dir, "{\"input\": \"2+2\", \"output\": \"4\"}\n", TaskKind::generation); }),
             Contains("q.jsonl:1") && Contains("free text"));
}

TEST_CASE("query file: TSV lines as the tasks' files hold them, the answer optional", "[data]") {
  ScratchDir dir;
  write_text(dir / "q.tsv", "great film\tpositive\tgood\n\ndull\n");
  const Task task = task_of_kind(TaskKind::classification);
  const auto crossfit = read_query_file(dir / "q.tsv", task, {});
  REQUIRE(crossfit.size() == 2);
  CHECK(crossfit[0].input == "great film");
  CHECK(crossfit[0].label == 1);  // the first output is the answer
  CHECK(crossfit[1].input == "dull");
  CHECK(crossfit[1].label == -1);
  CHECK(crossfit[1].source.line == 3);

  // UnifiedQA's literal "\n" separators become newlines with `unifiedqa`, and stay as they are without.
  write_text(dir / "mc.tsv", "sky? \\n (a) red (b) blue\tblue\n");
  const Task mc = task_of_kind(TaskKind::multiple_choice);
  const auto unifiedqa = read_query_file(dir / "mc.tsv", mc, {}, /*unifiedqa=*/true);
  REQUIRE(unifiedqa.size() == 1);
  CHECK(unifiedqa[0].input == "sky?\n(a) red (b) blue");
  CHECK(unifiedqa[0].options == Strings{"red", "blue"});
  CHECK(unifiedqa[0].label == 1);
  CHECK(read_query_file(dir / "mc.tsv", mc, {})[0].input == "sky? \\n (a) red (b) blue");

  write_text(dir / "bad.tsv", "ok\n\tno input\n");
  CHECK_THAT(input_error_of([&] { read_query_file(dir / "bad.tsv", task, {}); }),
             Contains("bad.tsv:2") && Contains("empty input"));
  write_text(dir / "bad.tsv", "ok\tneutral\n");
  CHECK_THAT(input_error_of([&] { read_query_file(dir / "bad.tsv", task, {}); }),
             Contains("bad.tsv:1") && Contains("answer \"neutral\" is not among the options"));
}

TEST_CASE("query file: malformed lines name file and line, or are skipped under skip_malformed", "[data]") {
  ScratchDir dir;
  const std::string bad_answer = "{\"input\": \"ok\"}\n{\"input\": \"x\", \"output\": \"neutral\"}\n";
  CHECK_THAT(input_error_of([&] { read(dir, bad_answer, TaskKind::classification); }),
             Contains("q.jsonl:2") && Contains("answer \"neutral\" is not among the options"));
  CHECK(read(dir, bad_answer, TaskKind::classification, /*skip=*/true).size() == 1);

  CHECK_THAT(input_error_of([&] { read(dir, "{\"input\": \"a\"}\n{\"input\": 3}\n", TaskKind::classification); }),
             Contains("q.jsonl:2") && Contains("\"input\" must be a string"));
  CHECK_THAT(input_error_of([&] { read(dir, "{\"input\": \"a\", \"output\": \"\"}\n", TaskKind::classification); }),
             Contains("q.jsonl:1") && Contains("empty \"output\""));
  CHECK_THAT(input_error_of([&] { read(dir, "[1, 2]\n", TaskKind::classification); }),
             Contains("q.jsonl:1") && Contains("expected a JSON object"));
  CHECK_THAT(input_error_of([&] { read(dir, "{\"input\": \"a\", \"options\": [\"x\"]}\n", TaskKind::classification); }),
             Contains("q.jsonl:1") && Contains("at least two strings"));
  CHECK_THAT(input_error_of([&] { read(dir, "{\"input\": \"a\"\n", TaskKind::classification); }),
             Contains("q.jsonl:1") && Contains("not JSON"));
  CHECK_THAT(input_error_of([&] { read(dir, "\n\n", TaskKind::classification); }),
             Contains("q.jsonl") && Contains("no queries"));
  const Task task = task_of_kind(TaskKind::classification);
  CHECK_THAT(input_error_of([&] { read_query_file(dir / "missing.jsonl", task, {}); }),
             Contains("missing.jsonl: no such file"));
}
