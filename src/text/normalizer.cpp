// Unicode normalization forms through utf8proc. See normalizer.h.
#include "text/normalizer.h"

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "util/error.h"

namespace abmll::text {

namespace {

void add_forms(const nlohmann::json& j, std::vector<Normalizer::Form>& forms) {
  const std::string type = j.at("type").get<std::string>();
  if (type == "NFC") {
    forms.push_back(Normalizer::Form::nfc);
  } else if (type == "NFD") {
    forms.push_back(Normalizer::Form::nfd);
  } else if (type == "NFKC") {
    forms.push_back(Normalizer::Form::nfkc);
  } else if (type == "NFKD") {
    forms.push_back(Normalizer::Form::nfkd);
  } else if (type == "Sequence") {
    for (const auto& item : j.at("normalizers")) add_forms(item, forms);
  } else {
    throw InputError("normalizer type '" + type + "' is not supported (supported: NFC, NFD, NFKC, NFKD, Sequence)");
  }
}

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

}  // namespace

Normalizer Normalizer::from_json(const nlohmann::json& j) {
  Normalizer n;
  if (!j.is_null()) add_forms(j, n.forms_);
  return n;
}

std::string Normalizer::apply(std::string_view text) const {
  std::string out(text);
  // Every normal form leaves ASCII unchanged: the common case costs one scan.
  if (forms_.empty() || is_ascii(text)) return out;
  for (Form form : forms_) {
    int options = UTF8PROC_STABLE;
    switch (form) {
      case Form::nfc: options |= UTF8PROC_COMPOSE; break;
      case Form::nfd: options |= UTF8PROC_DECOMPOSE; break;
      case Form::nfkc: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
      case Form::nfkd: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    if (out.empty()) return out;
    utf8proc_uint8_t* result = nullptr;
    utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(out.data()),
                                      static_cast<utf8proc_ssize_t>(out.size()), &result,
                                      static_cast<utf8proc_option_t>(options));
    std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(result, &std::free);
    if (n < 0) throw Error(std::string("Unicode normalization failed: ") + utf8proc_errmsg(n));
    out.assign(reinterpret_cast<const char*>(result), static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace abmll::text
