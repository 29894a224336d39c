// Prompt templates: how an example becomes the text a model scores.
//
// A template holds {input} and optionally {options} (the example's options as "(A) text (B) text ...") and
// {output} (where the answer goes). Scoring compares, for each option, log p(continuation | prompt), where
//   prompt        = the template up to {output}, placeholders filled;
//   continuation  = the spaces that end that part, then the option's text (" positive").
// Moving the spaces into the continuation keeps the prompt's tokens the same for every option and gives the
// answer the leading space byte-level BPE vocabularies attach to words. A template without {output} behaves as
// template + " {output}". Text after {output} closes demonstrations in ICL prompts (demonstration = prompt +
// continuation of the right answer + that text); it is not scored. Placeholders are filled in one pass: braces
// inside the input are never read as placeholders.
//
// Defaults (the data formats' conventions; ABMLL's paper does not give its prompts): "{input}" for every format,
// answer after one space: CrossFit's and UnifiedQA's text-to-text models read the input as it is (multiple-choice
// inputs already list their options) and produce the answer, and UnifiedQA's literal "\n" separators are newlines
// here. Demonstrations are separated from each other and from the query by a blank line ("\n\n").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/experiment_config.h"
#include "data/task.h"

namespace abmll::data {

class PromptTemplate {
 public:
  // Throws InputError ("data.prompt_template: ...") without {input}, with {input} after {output}, or with more
  // than one {output}.
  explicit PromptTemplate(std::string text = "{input}");

  // The prompt of `example` (everything before the answer).
  std::string prompt(const Example& example) const;
  // The continuation scored for answer text `answer`: answer_prefix + answer.
  std::string continuation(std::string_view answer) const { return answer_prefix_ + std::string(answer); }
  // A solved example for ICL prompts: prompt + continuation(right answer) + the text after {output}.
  std::string demonstration(const Example& example) const;

  const std::string& text() const { return text_; }
  const std::string& answer_prefix() const { return answer_prefix_; }

 private:
  std::string text_;
  std::string before_;         // template up to {output}, without the spaces that end it
  std::string answer_prefix_;  // those spaces
  std::string after_;          // template after {output}
};

struct PromptFormat {
  PromptTemplate query_template;
  std::string demo_separator = "\n\n";  // between demonstrations, and between the last and the query
};

// The config's prompt_template, or the format's default when it is empty.
PromptFormat prompt_format(const DataConfig& config);

// The right answer's text of an example: its option at `label`, else its output.
const std::string& answer_text(const Example& example);

}  // namespace abmll::data
