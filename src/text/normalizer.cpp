// Normalizer steps: Unicode forms through utf8proc, Prepend and Replace. See normalizer.h.
#include "text/normalizer.h"

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "util/error.h"

namespace abmll::text {

namespace {

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

std::string normal_form(std::string text, Normalizer::Form form) {
  // Every normal form leaves ASCII unchanged: the common case costs one scan.
  if (text.empty() || is_ascii(text)) return text;
  int options = UTF8PROC_STABLE;
  switch (form) {
    case Normalizer::Form::nfc: options |= UTF8PROC_COMPOSE; break;
    case Normalizer::Form::nfd: options |= UTF8PROC_DECOMPOSE; break;
    case Normalizer::Form::nfkc: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case Normalizer::Form::nfkd: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  utf8proc_uint8_t* result = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                    static_cast<utf8proc_ssize_t>(text.size()), &result,
                                    static_cast<utf8proc_option_t>(options));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(result, &std::free);
  if (n < 0) throw Error(std::string("Unicode normalization failed: ") + utf8proc_errmsg(n));
  return std::string(reinterpret_cast<const char*>(result), static_cast<std::size_t>(n));
}

}  // namespace

void Normalizer::add_steps(const nlohmann::json& j, std::vector<Step>& steps) {
  const std::string type = j.at("type").get<std::string>();
  Step step;
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    step.kind = Step::Kind::form;
    step.form = type == "NFC" ? Form::nfc : type == "NFD" ? Form::nfd : type == "NFKC" ? Form::nfkc : Form::nfkd;
  } else if (type == "Prepend") {
    step.kind = Step::Kind::prepend;
    step.text = j.at("prepend").get<std::string>();
  } else if (type == "Replace") {
    step.kind = Step::Kind::replace;
    step.pattern = Pattern::from_json(j.at("pattern"), "normalizer Replace");
    step.text = j.at("content").get<std::string>();
  } else if (type == "Sequence") {
    for (const auto& item : j.at("normalizers")) add_steps(item, steps);
    return;
  } else {
    throw InputError("normalizer type '" + type +
                     "' is not supported (supported: NFC, NFD, NFKC, NFKD, Prepend, Replace, Sequence)");
  }
  steps.push_back(std::move(step));
}

Normalizer Normalizer::from_json(const nlohmann::json& j) {
  Normalizer n;
  if (!j.is_null()) add_steps(j, n.steps_);
  return n;
}

std::string Normalizer::apply(std::string_view text) const {
  std::string out(text);
  for (const Step& step : steps_) {
    switch (step.kind) {
      case Step::Kind::form:
        out = normal_form(std::move(out), step.form);
        break;
      case Step::Kind::prepend:  // as the reference: nothing is put in front of empty text
        if (!out.empty()) out.insert(0, step.text);
        break;
      case Step::Kind::replace:
        out = step.pattern->replace_all(out, step.text);
        break;
    }
  }
  return out;
}

}  // namespace abmll::text
