// BPE vocabulary, merge table and the priority-queue merge loop. See bpe_model.h.
#include "text/bpe_model.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <queue>

#include "text/utf8.h"
#include "util/error.h"

namespace abmll::text {

BpeModel::BpeModel(BpeModel&& other) noexcept
    : vocab_(std::move(other.vocab_)),
      id_to_token_(std::move(other.id_to_token_)),
      merges_(std::move(other.merges_)),
      unk_id_(other.unk_id_),
      fuse_unk_(other.fuse_unk_),
      byte_fallback_(other.byte_fallback_),
      ignore_merges_(other.ignore_merges_),
      cache_(std::move(other.cache_)) {}

BpeModel::~BpeModel() = default;

void BpeModel::add_merge(const std::string& a, const std::string& b, int32_t rank) {
  auto ia = vocab_.find(a), ib = vocab_.find(b), inew = vocab_.find(a + b);
  auto missing = ia == vocab_.end() ? a : ib == vocab_.end() ? b : inew == vocab_.end() ? a + b : std::string();
  if (ia == vocab_.end() || ib == vocab_.end() || inew == vocab_.end())
    throw InputError(fmt::format("model merge {} ('{}' + '{}') uses token '{}' that is not in the vocab", rank, a, b,
                                 missing));
  // A repeated pair keeps its last rank, as the reference does.
  merges_[pair_key(ia->second, ib->second)] = Merge{rank, inew->second};
}

BpeModel BpeModel::from_json(const nlohmann::json& j) {
  // Files written before the model had a "type" field are recognised by their merges.
  std::string type = j.contains("type") ? j.at("type").get<std::string>() : (j.contains("merges") ? "BPE" : "?");
  if (type != "BPE") throw InputError("model type '" + type + "' is not supported (supported: BPE)");
  if (j.contains("dropout") && !j.at("dropout").is_null() && j.at("dropout").get<double>() != 0.0)
    throw InputError("model option 'dropout' is not supported (it makes encoding random)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (j.contains(key) && !j.at(key).is_null() && !j.at(key).get<std::string>().empty())
      throw InputError(std::string("model option '") + key + "' is not supported");

  BpeModel m;
  const auto& vocab = j.at("vocab");
  if (!vocab.is_object()) throw InputError("model 'vocab' must be an object of token: id");
  m.vocab_.reserve(vocab.size());
  int32_t max_id = -1;
  for (const auto& [token, id_json] : vocab.items()) {
    // get<int64_t> of a float or of an unsigned beyond int64 would convert it (undefined beyond long's range).
    if (!id_json.is_number_integer() || (id_json.is_number_unsigned() && id_json.get<uint64_t>() > INT32_MAX))
      throw InputError(fmt::format("model vocab id of '{}' is {}, not an integer from 0 to {}", token,
                                   id_json.dump(), INT32_MAX));
    const auto id = id_json.get<int64_t>();
    if (id < 0 || id > INT32_MAX) throw InputError(fmt::format("model vocab id {} of '{}' is out of range", id, token));
    m.vocab_.emplace(token, static_cast<int32_t>(id));
    max_id = std::max(max_id, static_cast<int32_t>(id));
  }
  // ids index a table: a vocabulary's ids are (nearly) dense, and a few entries with ids in the billions would ask
  // for gigabytes.
  const auto entries = static_cast<std::int64_t>(m.vocab_.size());
  if (max_id >= 2 * entries + 1024)
    throw InputError(fmt::format("model vocab ids run to {} for {} entries; ids must be (nearly) dense", max_id,
                                 entries));
  m.id_to_token_.assign(static_cast<std::size_t>(max_id + 1), nullptr);
  for (const auto& [token, id] : m.vocab_) m.id_to_token_[static_cast<std::size_t>(id)] = &token;

  const auto& merges = j.at("merges");
  m.merges_.reserve(merges.size());
  int32_t rank = 0;
  for (const auto& item : merges) {
    if (item.is_string()) {  // "a b"
      const auto& line = item.get_ref<const std::string&>();
      auto space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
        throw InputError(fmt::format("model merge {} '{}' is not two tokens separated by one space", rank, line));
      m.add_merge(line.substr(0, space), line.substr(space + 1), rank);
    } else if (item.is_array() && item.size() == 2 && item[0].is_string() && item[1].is_string()) {  // ["a", "b"]
      m.add_merge(item[0].get<std::string>(), item[1].get<std::string>(), rank);
    } else {
      throw InputError(fmt::format("model merge {} must be \"a b\" or [\"a\", \"b\"], got {}", rank, item.dump()));
    }
    ++rank;
  }

  if (j.contains("unk_token") && !j.at("unk_token").is_null()) {
    auto unk = j.at("unk_token").get<std::string>();
    auto it = m.vocab_.find(unk);
    if (it == m.vocab_.end()) throw InputError("model unk_token '" + unk + "' is not in the vocab");
    m.unk_id_ = it->second;
  }
  m.fuse_unk_ = j.value("fuse_unk", false);
  m.byte_fallback_ = j.value("byte_fallback", false);
  m.ignore_merges_ = j.value("ignore_merges", false);
  return m;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size()) return nullptr;
  return id_to_token_[static_cast<std::size_t>(id)];
}

void BpeModel::initial_symbols(std::string_view piece, std::vector<int32_t>& ids) const {
  // An unknown character becomes the unk token, held back until the next character in the vocabulary so that a run
  // of them fuses into one when fuse_unk is set. As in the reference, byte-fallback tokens do not release it: they
  // come out before an unk that is still held.
  bool unk_pending = false;
  std::size_t pos = 0;
  while (pos < piece.size()) {
    std::size_t begin = pos;
    utf8::next(piece, pos);
    std::string_view ch = piece.substr(begin, pos - begin);
    if (auto it = vocab_.find(ch); it != vocab_.end()) {
      if (unk_pending) ids.push_back(*unk_id_);
      unk_pending = false;
      ids.push_back(it->second);
      continue;
    }
    if (byte_fallback_) {  // each byte as its "<0xXX>" token, when all of them exist
      std::vector<int32_t> bytes;
      for (char c : ch) {
        auto it = vocab_.find(fmt::format("<0x{:02X}>", static_cast<unsigned char>(c)));
        if (it == vocab_.end()) break;
        bytes.push_back(it->second);
      }
      if (bytes.size() == ch.size()) {
        ids.insert(ids.end(), bytes.begin(), bytes.end());
        continue;
      }
    }
    if (!unk_id_) continue;  // no unk token: the character is dropped
    if (unk_pending && !fuse_unk_) ids.push_back(*unk_id_);
    unk_pending = true;
  }
  if (unk_pending) ids.push_back(*unk_id_);
}

void BpeModel::merge(std::vector<int32_t>& ids) const {
  const int32_t n = static_cast<int32_t>(ids.size());
  if (n < 2) return;
  // Symbols form a doubly linked list over positions; a merged-away symbol gets alive = false.
  std::vector<int32_t> prev(n), next(n);
  std::vector<char> alive(n, 1);
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank, pos, new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto push = [&](int32_t pos) {
    int32_t right = next[pos];
    if (right < 0) return;
    auto it = merges_.find(pair_key(ids[pos], ids[right]));
    if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.new_id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);

  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    // Stale entries (a side was merged since) are skipped: the pair at `pos` must still produce this token.
    if (!alive[top.pos] || next[top.pos] < 0) continue;
    int32_t right = next[top.pos];
    auto it = merges_.find(pair_key(ids[top.pos], ids[right]));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    ids[top.pos] = top.new_id;
    alive[right] = 0;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = top.pos;
    if (prev[top.pos] >= 0) push(prev[top.pos]);
    push(top.pos);
  }
  int32_t out = 0;
  for (int32_t i = 0; i >= 0; i = next[i]) ids[out++] = ids[i];
  ids.resize(static_cast<std::size_t>(out));
}

void BpeModel::encode(std::string_view piece, std::vector<int32_t>& ids) const {
  if (piece.empty()) return;
  if (ignore_merges_) {  // a piece that is itself a token is taken whole, whatever the merges would give
    if (auto it = vocab_.find(piece); it != vocab_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  const bool cacheable = piece.size() <= kCacheMaxPieceBytes;
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (auto it = cache_.find(piece); it != cache_.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> word;
  initial_symbols(piece, word);
  merge(word);
  ids.insert(ids.end(), word.begin(), word.end());
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(piece), std::move(word));
  }
}

}  // namespace abmll::text
