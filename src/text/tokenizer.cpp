// The tokenizer facade: loading tokenizer.json and running the stages. See tokenizer.h.
#include "text/tokenizer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "text/added_tokens.h"
#include "text/bpe_model.h"
#include "text/decoder.h"
#include "text/normalizer.h"
#include "text/post_processor.h"
#include "text/pre_tokenizer.h"
#include "text/utf8.h"
#include "util/error.h"

namespace abmll::text {

struct Tokenizer::Impl {
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  BpeModel model;
  AddedTokens added;
  PostProcessor post_processor;
  Decoder decoder;
};

namespace {

const nlohmann::json& member_or_null(const nlohmann::json& j, const char* key) {
  static const nlohmann::json null_json;
  return j.contains(key) ? j.at(key) : null_json;
}

// Reads one component, prefixing errors (also JSON type errors inside it) with its key.
template <class T>
T parse_component(const nlohmann::json& j, const char* key, auto&& parse) {
  try {
    return parse(member_or_null(j, key));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(std::string(key) + ": " + e.what());
  }
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw InputError("the top level is not a JSON object");
  for (const char* key : {"truncation", "padding"})
    if (j.contains(key) && !j.at(key).is_null())
      throw InputError(std::string(key) + " is set; it is not supported (set it to null)");
  if (!j.contains("model")) throw InputError("no 'model' entry");

  auto normalizer = parse_component<Normalizer>(j, "normalizer", [](const auto& v) { return Normalizer::from_json(v); });
  auto pre_tokenizer =
      parse_component<PreTokenizer>(j, "pre_tokenizer", [](const auto& v) { return PreTokenizer::from_json(v); });
  auto model = parse_component<BpeModel>(j, "model", [](const auto& v) { return BpeModel::from_json(v); });
  auto added = parse_component<AddedTokens>(
      j, "added_tokens", [&](const auto& v) {
        return AddedTokens::from_json(v, normalizer, [&](std::string_view t) { return model.token_to_id(t); });
      });
  auto post_processor =
      parse_component<PostProcessor>(j, "post_processor", [](const auto& v) { return PostProcessor::from_json(v); });
  auto decoder = parse_component<Decoder>(j, "decoder", [](const auto& v) { return Decoder::from_json(v); });
  return Tokenizer(std::make_unique<Impl>(Impl{std::move(normalizer), std::move(pre_tokenizer), std::move(model),
                                               std::move(added), std::move(post_processor), std::move(decoder)}));
}

Tokenizer Tokenizer::from_file(const std::filesystem::path& path) {
  return with_context(path.string(), [&] {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError("cannot open the file");
    std::stringstream buffer;
    buffer << in.rdbuf();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(buffer.str());
    } catch (const nlohmann::json::exception& e) {
      throw InputError(std::string("not valid JSON: ") + e.what());
    }
    return from_json(j);
  });
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  if (auto bad = utf8::find_invalid(text); bad != std::string_view::npos)
    throw InputError(fmt::format("text to encode is not valid UTF-8 (byte {})", bad));
  std::vector<int32_t> ids;
  std::vector<std::string> pieces;
  const std::vector<Segment> segments = impl_->added.split(text, impl_->normalizer);
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const Segment& segment = segments[i];
    if (segment.id) {
      ids.push_back(*segment.id);
      continue;
    }
    pieces.clear();
    // Only plain text ahead of every added token begins the input (Metaspace's prepend_scheme "first").
    impl_->pre_tokenizer.split(segment.text, i == 0, pieces);
    for (const auto& piece : pieces) impl_->model.encode(piece, ids);
  }
  return add_special_tokens ? impl_->post_processor.apply(std::move(ids)) : ids;
}

std::vector<int32_t> Tokenizer::encode_continuation(std::string_view prompt, const std::vector<int32_t>& prompt_ids,
                                                   std::string_view continuation) const {
  std::string whole;
  whole.reserve(prompt.size() + continuation.size());
  whole.append(prompt).append(continuation);
  std::vector<int32_t> ids = encode(whole, true);
  if (ids.size() >= prompt_ids.size() && std::equal(prompt_ids.begin(), prompt_ids.end(), ids.begin())) {
    ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(prompt_ids.size()));
    return ids;
  }
  return encode(continuation, false);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::vector<const std::string*> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (const AddedToken* added = impl_->added.find(id)) {
      if (!(skip_special_tokens && added->special)) tokens.push_back(&added->content);
    } else if (const std::string* token = impl_->model.id_to_token(id)) {
      tokens.push_back(token);
    } else {
      throw InputError(fmt::format("token id {} is not in the vocabulary", id));
    }
  }
  return impl_->decoder.decode(tokens);
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const AddedToken* added = impl_->added.find(token)) return added->id;
  return impl_->model.token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* added = impl_->added.find(id)) return added->content;
  if (const std::string* token = impl_->model.id_to_token(id)) return *token;
  return std::nullopt;
}

std::size_t Tokenizer::vocab_size() const {
  std::size_t n = impl_->model.vocab_size();
  for (const auto& t : impl_->added.tokens())
    if (!impl_->model.token_to_id(t.content)) ++n;
  return n;
}

}  // namespace abmll::text
