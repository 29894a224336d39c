#include "data/prompt.h"

#include <fmt/format.h>

#include "util/error.h"

namespace abmll::data {

namespace {

constexpr std::string_view kInput = "{input}", kOptions = "{options}", kOutput = "{output}";

std::string render_options(const std::vector<std::string>& options) {
  std::string out;
  for (std::size_t i = 0; i < options.size(); ++i) {
    if (i) out += ' ';
    out += i < 26 ? fmt::format("({}) {}", static_cast<char>('A' + i), options[i])
                  : fmt::format("({}) {}", i + 1, options[i]);
  }
  return out;
}

// `part` with {input} and {options} filled, in one pass.
std::string fill(std::string_view part, const Example& example) {
  std::string out;
  std::size_t pos = 0;
  while (pos < part.size()) {
    if (part.substr(pos).starts_with(kInput)) {
      out += example.input;
      pos += kInput.size();
    } else if (part.substr(pos).starts_with(kOptions)) {
      out += render_options(example.options);
      pos += kOptions.size();
    } else {
      out += part[pos++];
    }
  }
  return out;
}

}  // namespace

PromptTemplate::PromptTemplate(std::string text) : text_(std::move(text)) {
  std::size_t input = text_.find(kInput);
  std::size_t output = text_.find(kOutput);
  if (input == std::string::npos)
    throw InputError(fmt::format("data.prompt_template: must contain {{input}}, got '{}'", text_));
  if (output != std::string::npos && text_.find(kOutput, output + 1) != std::string::npos)
    throw InputError(fmt::format("data.prompt_template: {{output}} may appear once, got '{}'", text_));
  if (output != std::string::npos && input > output)
    throw InputError(fmt::format("data.prompt_template: {{input}} must come before {{output}}, got '{}'", text_));
  if (output == std::string::npos) {
    before_ = text_;
    answer_prefix_ = " ";
  } else {
    before_ = text_.substr(0, output);
    after_ = text_.substr(output + kOutput.size());
    std::size_t end = before_.find_last_not_of(' ');
    std::size_t keep = end == std::string::npos ? 0 : end + 1;
    answer_prefix_ = before_.substr(keep);
    before_.resize(keep);
  }
}

std::string PromptTemplate::prompt(const Example& example) const { return fill(before_, example); }

std::string PromptTemplate::demonstration(const Example& example) const {
  return prompt(example) + continuation(answer_text(example)) + fill(after_, example);
}

PromptFormat prompt_format(const DataConfig& config) {
  // Every format's convention is the plain input (see the file comment); kept per format so that one can change.
  std::string text = config.prompt_template;
  if (text.empty()) {
    switch (config.format) {
      case DataFormat::crossfit:
      case DataFormat::unifiedqa:
      case DataFormat::jsonl:
        text = "{input}";
        break;
    }
  }
  return PromptFormat{PromptTemplate(std::move(text))};
}

const std::string& answer_text(const Example& example) {
  if (example.label >= 0 && example.label < static_cast<std::int64_t>(example.options.size()))
    return example.options[static_cast<std::size_t>(example.label)];
  return example.output;
}

}  // namespace abmll::data
