// The BPE "model" of a tokenizer.json: a vocabulary (token string -> id) and ranked merges. encode() turns one
// pre-tokenized piece into ids by repeatedly merging the adjacent pair of lowest rank (leftmost first among equal
// ranks), using a priority queue over a linked list of symbols, so a piece of n characters costs O(n log n) rather
// than a rescan per merge; results for short pieces are cached.
// Merges are read in both forms tokenizer.json files use: "a b" strings (older files, Llama-3) and ["a", "b"] pairs.
// Thread-safety: encode() may run concurrently; the cache is guarded by a mutex.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace abmll::text {

// Hashing that lets maps keyed by std::string be searched with a string_view (no temporary string).
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // From the tokenizer.json "model" value. Throws InputError for a model that is not BPE, an unsupported option
  // (dropout, continuing_subword_prefix, end_of_word_suffix) or merges that name tokens missing from the vocab.
  static BpeModel from_json(const nlohmann::json& j);

  // Appends the ids of `piece` (a pre-tokenized word, in the vocabulary's alphabet) to `ids`.
  void encode(std::string_view piece, std::vector<int32_t>& ids) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;  // null when no token has this id
  std::size_t vocab_size() const { return vocab_.size(); }
  const TokenMap& vocab() const { return vocab_; }

  BpeModel(BpeModel&& other) noexcept;
  BpeModel& operator=(BpeModel&&) = delete;
  ~BpeModel();

 private:
  BpeModel() = default;
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void add_merge(const std::string& a, const std::string& b, int32_t rank);
  // The initial symbols of `piece`: one id per character, with unknown characters handled by byte_fallback / unk.
  void initial_symbols(std::string_view piece, std::vector<int32_t>& ids) const;
  void merge(std::vector<int32_t>& ids) const;

  TokenMap vocab_;
  std::vector<const std::string*> id_to_token_;  // points into vocab_'s keys (stable: node-based map)
  std::unordered_map<uint64_t, Merge> merges_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;

  static constexpr std::size_t kCacheCapacity = 1 << 16;  // pieces; past it new pieces are not cached
  static constexpr std::size_t kCacheMaxPieceBytes = 256;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace abmll::text
