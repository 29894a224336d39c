// `abmll tokenize --model DIR --text STR`: prints the ids of STR under DIR/tokenizer.json as a JSON list;
// `--decode --ids 1,2,3` prints the text of the ids instead. `--input-jsonl FILE` runs a batch in one process:
// each line a JSON string to encode (or, with --decode, a JSON list of ids), each answer one JSON line on stdout.
#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "text/tokenizer.h"
#include "util/error.h"

namespace abmll::cli {
namespace {

struct TokenizeFlags {
  std::string model;
  std::string text;
  std::string ids;
  std::string input_jsonl;
  bool decode = false;
  bool no_special = false;    // encode: leave out the template's special tokens
  bool skip_special = false;  // decode: leave out special tokens
};

std::filesystem::path tokenizer_file(const std::string& model) {
  std::filesystem::path path(model);
  return std::filesystem::is_directory(path) ? path / "tokenizer.json" : path;
}

// --ids as the tokenizer's id type.
std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  for (int64_t id : parse_id_list(text)) {
    if (id < INT32_MIN || id > INT32_MAX) throw InputError("--ids: " + std::to_string(id) + " is not a token id");
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

// JSON in ASCII (\uXXXX escapes), so that line-based readers never see U+2028 or NEL inside an answer.
std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace); }

int run_batch(const text::Tokenizer& tokenizer, const TokenizeFlags& flags) {
  std::ifstream in(flags.input_jsonl, std::ios::binary);
  if (!in) throw InputError(flags.input_jsonl + ": cannot open the file");
  std::string line, out;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    with_context(flags.input_jsonl + ":" + std::to_string(number), [&] {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw InputError(std::string("not valid JSON: ") + e.what());
      }
      if (flags.decode) {
        if (!j.is_array()) throw InputError("expected a JSON list of ids");
        out += dump(tokenizer.decode(j.get<std::vector<int32_t>>(), flags.skip_special));
      } else {
        if (!j.is_string()) throw InputError("expected a JSON string");
        out += dump(tokenizer.encode(j.get<std::string>(), !flags.no_special));
      }
      out += '\n';
    });
  }
  std::cout << out;
  std::cout.flush();
  return 0;
}

}  // namespace

Command register_tokenize(CLI::App& root) {
  auto flags = std::make_shared<TokenizeFlags>();
  CLI::App* cmd = root.add_subcommand("tokenize", "Encode text to token ids (or decode ids) with a tokenizer.json");
  cmd->add_option("--model", flags->model, "Model folder holding tokenizer.json, or the tokenizer.json itself")
      ->type_name("DIR")
      ->required();
  auto* text = cmd->add_option("--text", flags->text, "Text to encode")->type_name("STR");
  auto* ids = cmd->add_option("--ids", flags->ids, "With --decode: ids to decode, e.g. 1,2,3")->type_name("IDS");
  auto* batch = cmd->add_option("--input-jsonl", flags->input_jsonl,
                                "Batch: one JSON string per line (with --decode, one JSON list of ids); prints one "
                                "JSON answer per line")
                    ->type_name("FILE");
  cmd->add_flag("--decode", flags->decode, "Decode ids to text instead of encoding");
  cmd->add_flag("--no-special", flags->no_special, "Encode without the template's special tokens (e.g. no BOS)");
  cmd->add_flag("--skip-special", flags->skip_special, "Decode without special tokens");
  text->excludes(ids)->excludes(batch);
  ids->excludes(batch);
  return {cmd, [flags, text, ids] {
            if (flags->input_jsonl.empty() && (flags->decode ? ids->count() == 0 : text->count() == 0))
              throw InputError(flags->decode ? "tokenize --decode needs --ids or --input-jsonl"
                                             : "tokenize needs --text or --input-jsonl");
            text::Tokenizer tokenizer = text::Tokenizer::from_file(tokenizer_file(flags->model));
            if (!flags->input_jsonl.empty()) return run_batch(tokenizer, *flags);
            if (flags->decode) {
              std::cout << tokenizer.decode(parse_ids(flags->ids), flags->skip_special) << '\n';
            } else {
              std::cout << dump(tokenizer.encode(flags->text, !flags->no_special)) << '\n';
            }
            std::cout.flush();
            return 0;
          }};
}

}  // namespace abmll::cli
