"""Parity of abmll's decoder with transformers 5.23 (Llama-, Qwen2-, Qwen3-, Mistral-, Gemma- and Gemma2ForCausalLM)
on tiny random checkpoints made at test time by make_model_fixtures.py: logits of one sequence, and of a padded
batch with right and with left padding, through `abmll logits`. float32 must agree within 1e-4 (max abs difference
over all real positions and the whole vocabulary); each test prints its largest difference.

bfloat16 (llama3, qwen3 and gemma2 fixtures): both sides round every op's output to bfloat16 (8 bits of mantissa, a
relative step of 2^-8 = 0.4%), but not necessarily the same ops in the same order (SDPA kernels, fused vs unfused
ops), so results differ by a few bfloat16 steps of the logits' scale. The check is max|diff| <= 0.05 * max|reference
logit|, about a dozen steps at the largest logit; a wrong dtype path (e.g. RMSNorm not rounded before the weight) or
a real bug gives differences of the order of the logits themselves.
"""
import json
import pathlib
import shutil
import sys

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import make_model_fixtures  # noqa: E402

FLOAT32_TOLERANCE = 1e-4
BF16_RELATIVE_TOLERANCE = 0.05
NAMES = list(make_model_fixtures.FIXTURES)


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    return {name: make_model_fixtures.build(name, out) for name in NAMES}


def ids_flag(ids: torch.Tensor) -> str:
    return ",".join(str(int(i)) for i in ids)


def run_logits(run_abmll, folder, out, *flags):
    result = run_abmll("logits", "--model", folder, "--out", out, *flags)
    assert result.returncode == 0, result.stderr
    return load_file(str(out))


def report(name, what, got, want):
    diff = (got - want).abs().max().item()
    print(f"{name} {what}: max abs diff {diff:.3g} (logits up to {want.abs().max().item():.3g})")
    return diff


@pytest.mark.parametrize("name", NAMES)
def test_single_sequence(name, fixtures, run_abmll, tmp_path):
    ref = load_file(str(fixtures[name] / "reference.safetensors"))
    got = run_logits(run_abmll, fixtures[name], tmp_path / "out.safetensors", "--ids", ids_flag(ref["single_ids"]))
    assert got["logits"].dtype == torch.float32
    assert got["logits"].shape == ref["single_logits"].shape
    assert report(name, "single", got["logits"], ref["single_logits"]) <= FLOAT32_TOLERANCE


@pytest.mark.parametrize("padding", ["right", "left"])
@pytest.mark.parametrize("name", NAMES)
def test_padded_batch(name, padding, fixtures, run_abmll, tmp_path):
    ref = load_file(str(fixtures[name] / "reference.safetensors"))
    ids = ref["batch_ids" if padding == "right" else "left_ids"]
    mask = ref["batch_mask" if padding == "right" else "left_mask"]
    want = ref[f"{padding}_logits"]
    seqs = [ids_flag(row[m.bool()]) for row, m in zip(ids, mask)]
    got = run_logits(run_abmll, fixtures[name], tmp_path / "out.safetensors", "--padding", padding,
                     "--ids", seqs[0], "--ids", seqs[1])
    assert torch.equal(got["input_ids"], ids)
    assert torch.equal(got["attention_mask"], mask)
    real = mask.bool()
    assert report(name, f"{padding}-padded batch", got["logits"][real], want[real]) <= FLOAT32_TOLERANCE


@pytest.mark.parametrize("name", make_model_fixtures.BF16_FIXTURES)
def test_bfloat16(name, fixtures, run_abmll, tmp_path):
    ref = load_file(str(fixtures[name] / "reference.safetensors"))
    got = run_logits(run_abmll, fixtures[name], tmp_path / "out.safetensors", "--dtype", "bfloat16",
                     "--ids", ids_flag(ref["single_ids"]))
    want = ref["bf16_single_logits"]
    diff = report(name, "bfloat16", got["logits"], want)
    assert diff <= BF16_RELATIVE_TOLERANCE * want.abs().max().item()
    # And bfloat16 really ran: it is not the float32 result.
    assert (got["logits"] - ref["single_logits"]).abs().max().item() > 0


def test_wrong_config_names_the_tensor(fixtures, run_abmll, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(fixtures["llama3"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] = 128
    (folder / "config.json").write_text(json.dumps(config))
    result = run_abmll("logits", "--model", folder, "--out", tmp_path / "x.safetensors", "--ids", "1,2,3")
    assert result.returncode == 2, result.stderr
    assert "model.layers.0.mlp.gate_proj.weight" in result.stderr
    assert "[96, 64]" in result.stderr and "[128, 64]" in result.stderr
    assert "intermediate_size=128" in result.stderr

    config["architectures"] = ["Gemma3ForConditionalGeneration"]
    config["model_type"] = "gemma3"
    (folder / "config.json").write_text(json.dumps(config))
    result = run_abmll("logits", "--model", folder, "--out", tmp_path / "x.safetensors", "--ids", "1,2,3")
    assert result.returncode == 2, result.stderr
    assert "config.json" in result.stderr and "\"gemma3\"" in result.stderr


@pytest.mark.parametrize("name", ["mistral_v01", "qwen2_window", "gemma2", "gemma3"])
def test_sliding_window_is_held_to(name, fixtures, run_abmll, tmp_path, source_dir):
    """These fixtures' windows are 11 tokens (Mistral v0.1's on every layer, Qwen2's on layer 1, Gemma-2's and
    Gemma-3's on layer 0): the sequences above fit and match transformers; one token more would attend differently in transformers, and
    abmll (which computes causal attention) refuses it, as it refuses a run whose model.max_length exceeds the window
    before reading any weight."""
    folder = fixtures[name]
    ids = torch.tensor([make_model_fixtures.SEQ_A + [5]])
    windowed = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    causal = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, sliding_window=100).eval()
    with torch.no_grad():
        assert (windowed(input_ids=ids).logits - causal(input_ids=ids).logits).abs().max() > 1e-2
    result = run_abmll("logits", "--model", folder, "--out", tmp_path / "x.safetensors", "--ids", ids_flag(ids[0]))
    assert result.returncode == 2, result.stderr
    assert "a sequence of 12 tokens reaches past the model's sliding window of 11" in result.stderr

    result = run_abmll("meta-train", "--config", source_dir / "configs/demo.yaml", "--set", f"model.path={folder}",
                       "--set", "model.max_length=12", "--out", tmp_path / "run")
    assert result.returncode == 2, result.stderr
    assert (f"model.max_length: 12 tokens reach past the sliding window of 11 ({folder / 'config.json'}: "
            "sliding_window)") in result.stderr


def test_bad_ids_are_input_errors(fixtures, run_abmll, tmp_path):
    result = run_abmll("logits", "--model", fixtures["qwen2_tied"], "--out", tmp_path / "x.safetensors",
                       "--ids", "1,256")
    assert result.returncode == 2, result.stderr
    assert "256" in result.stderr


def test_text_uses_the_tokenizer(fixtures, run_abmll, tmp_path):
    from tokenizers import Tokenizer

    folder = fixtures["llama3"]
    text = "Hello, wörld!"
    ids = Tokenizer.from_file(str(folder / "tokenizer.json")).encode(text).ids
    by_text = run_logits(run_abmll, folder, tmp_path / "a.safetensors", "--text", text)
    by_ids = run_logits(run_abmll, folder, tmp_path / "b.safetensors", "--ids", ",".join(map(str, ids)))
    assert by_text["input_ids"].tolist() == ids
    assert torch.equal(by_text["logits"], by_ids["logits"])
