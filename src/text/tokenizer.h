// A Hugging Face tokenizer.json tokenizer (byte-level BPE as Llama-3 and Qwen2 use; SentencePiece-style BPE with byte
// fallback as Llama-2, Mistral and Gemma use), torch-free.
// Encoding runs the stages of the reference `tokenizers` library in its order:
//   added tokens cut out -> normalizer -> pre-tokenizer -> BPE per piece -> post-processor (special tokens),
// and decoding maps ids to token strings and through the decoder. Components the file names but this class does
// not implement are rejected when loading, naming the component, rather than silently tokenizing differently.
// Thread-safety: a loaded Tokenizer may encode and decode from several threads at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace abmll::text {

class Tokenizer {
 public:
  // Loads a tokenizer.json. Throws InputError naming the file and the problem (unreadable, not JSON, unsupported
  // component, inconsistent vocab or merges).
  static Tokenizer from_file(const std::filesystem::path& path);
  // Same, from parsed JSON; errors are not prefixed with a file name.
  static Tokenizer from_json(const nlohmann::json& j);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Ids of `text` (UTF-8; InputError if invalid), with the template's special tokens when add_special_tokens.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // The ids that `continuation` adds after `prompt`, whose ids (with special tokens) are `prompt_ids`: the tail of
  // the encoding of prompt + continuation when that begins with prompt_ids (a context split from its continuation
  // as evaluation harnesses split it), else the continuation encoded alone. Encoded alone, " yes" gets a "▁" of its
  // own from a SentencePiece-style tokenizer in the legacy form (Llama-2's, Mistral v0.1's files), where in context
  // it is "▁yes"; byte-level tokenizers give the same ids either way.
  std::vector<int32_t> encode_continuation(std::string_view prompt, const std::vector<int32_t>& prompt_ids,
                                           std::string_view continuation) const;
  // Text of `ids`; special added tokens are left out when skip_special_tokens. InputError for an unknown id.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int32_t id) const;
  // Number of distinct tokens (model vocabulary and added tokens together).
  std::size_t vocab_size() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace abmll::text
