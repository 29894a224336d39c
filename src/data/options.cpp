#include "data/options.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "text/utf8.h"

namespace abmll::data {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Lowercased ASCII, whitespace runs as one space, trimmed.
std::string normalized(std::string_view s) {
  std::string out;
  bool pending_space = false;
  for (char c : trim(s)) {
    if (is_space(c)) {
      pending_space = true;
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

// The options of the list whose "(A) " marker starts at `pos` (first letter `first`), up to `end`.
std::vector<std::string> options_from(std::string_view input, std::size_t pos, std::size_t end, char first) {
  std::vector<std::string> out;
  std::size_t cur = pos + 4;
  char letter = first;
  for (;;) {
    char next = static_cast<char>(letter + 1);
    std::string marker = fmt::format(" ({}) ", next);
    std::size_t found = (next == 'z' + 1 || next == 'Z' + 1) ? std::string_view::npos : input.find(marker, cur);
    if (found == std::string_view::npos || found >= end) {
      out.emplace_back(trim(input.substr(cur, end - cur)));
      return out;
    }
    out.emplace_back(trim(input.substr(cur, found - cur)));
    cur = found + marker.size();
    letter = next;
  }
}

}  // namespace

std::string option_list(const std::vector<std::string>& options) {
  std::string out;
  for (std::size_t i = 0; i < options.size(); ++i)
    out += fmt::format("{}({}) {}", i ? " " : "", static_cast<char>('A' + std::min<std::size_t>(i, 25)),
                       excerpt(options[i], 30));
  return out;
}

std::string excerpt(std::string_view text, std::size_t max) {
  if (text.size() <= max) return fmt::format("\"{}\"", text);
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return fmt::format("\"{}...\"", text.substr(0, cut));
}

std::int64_t find_option(const std::vector<std::string>& options, std::string_view answer) {
  std::string_view a = trim(answer);
  for (std::size_t i = 0; i < options.size(); ++i)
    if (trim(options[i]) == a) return static_cast<std::int64_t>(i);
  std::string na = normalized(a);
  for (std::size_t i = 0; i < options.size(); ++i)
    if (normalized(options[i]) == na) return static_cast<std::int64_t>(i);
  return -1;
}

std::optional<ParsedOptions> parse_options(std::string_view input, std::string_view answer) {
  std::optional<ParsedOptions> last;
  for (std::size_t pos = input.find('('); pos != std::string_view::npos; pos = input.find('(', pos + 1)) {
    if (pos + 4 > input.size()) break;
    char first = input[pos + 1];
    if ((first != 'A' && first != 'a') || input[pos + 2] != ')' || input[pos + 3] != ' ') continue;
    if (pos > 0 && !is_space(input[pos - 1])) continue;
    std::size_t end = std::min({input.find('\n', pos), input.find(" [SEP] ", pos), input.size()});
    ParsedOptions parsed;
    parsed.options = options_from(input, pos, end, first);
    if (parsed.options.size() < 2) continue;
    parsed.label = find_option(parsed.options, answer);
    if (parsed.label >= 0) return parsed;
    last = std::move(parsed);
  }
  return last;
}

void assign_options(Task& task, OptionSource source, const ReaderOptions& options, ProblemLog& problems) {
  std::vector<Example*> all;
  for (auto& split : task.splits)
    for (auto& ex : split) all.push_back(&ex);
  if (all.empty()) return;
  std::vector<bool> bad(all.size(), false);
  auto reject = [&](std::size_t i, const std::string& problem) {
    problems.report(all[i]->source, problem);  // throws unless skipping
    bad[i] = true;
  };

  bool multiple_choice = false;
  if (source == OptionSource::explicit_) {
    multiple_choice = std::any_of(all.begin(), all.end(), [](const Example* ex) { return !ex->options.empty(); });
    if (multiple_choice)
      for (std::size_t i = 0; i < all.size(); ++i) {
        Example& ex = *all[i];
        if (ex.options.empty()) {
          reject(i, "no \"options\", while other lines of this task have them");
          continue;
        }
        ex.label = find_option(ex.options, ex.output);
        if (ex.label < 0)
          reject(i, fmt::format("answer {} is not among the options {}", excerpt(ex.output), option_list(ex.options)));
      }
  } else {
    std::vector<std::optional<ParsedOptions>> parsed(all.size());
    std::size_t with_list = 0;
    for (std::size_t i = 0; i < all.size(); ++i) {
      parsed[i] = parse_options(all[i]->input, all[i]->output);
      if (parsed[i]) ++with_list;
    }
    multiple_choice = 2 * with_list > all.size();
    if (multiple_choice)
      for (std::size_t i = 0; i < all.size(); ++i) {
        Example& ex = *all[i];
        if (!parsed[i]) {
          reject(i, "no options \" (A) ... (B) ...\" in the input, while most inputs of this task have them");
          continue;
        }
        ex.options = std::move(parsed[i]->options);
        ex.label = parsed[i]->label;
        if (ex.label < 0)
          reject(i, fmt::format("answer {} is not among the options {} parsed from the input", excerpt(ex.output),
                                option_list(ex.options)));
      }
  }

  if (multiple_choice) {
    task.kind = TaskKind::multiple_choice;
    task.options.clear();
  } else {
    std::set<std::string> labels;
    for (const Example* ex : all) labels.insert(ex->output);
    if (static_cast<std::int64_t>(labels.size()) <= options.max_labels) {
      task.kind = TaskKind::classification;
      task.options.assign(labels.begin(), labels.end());
      for (Example* ex : all) {
        ex->options = task.options;
        ex->label = std::lower_bound(task.options.begin(), task.options.end(), ex->output) - task.options.begin();
      }
    } else {
      task.kind = TaskKind::generation;
      task.options.clear();
      for (Example* ex : all) {
        ex->options.clear();
        ex->label = -1;
      }
    }
  }

  // Drop rejected examples (only reached when skipping).
  std::size_t i = 0;
  for (auto& split : task.splits) {
    std::vector<Example> kept;
    kept.reserve(split.size());
    for (auto& ex : split) {
      if (!bad[i++]) kept.push_back(std::move(ex));
    }
    split = std::move(kept);
  }
}

}  // namespace abmll::data
