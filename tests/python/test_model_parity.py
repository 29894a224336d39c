"""Parity of abmll's decoder with transformers 5.23 (every architecture of make_model_fixtures.py)
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

    # A multimodal Gemma-3 config without its language model's, then with it over a text-only checkpoint.
    config["architectures"] = ["Gemma3ForConditionalGeneration"]
    config["model_type"] = "gemma3"
    (folder / "config.json").write_text(json.dumps(config))
    result = run_abmll("logits", "--model", folder, "--out", tmp_path / "x.safetensors", "--ids", "1,2,3")
    assert result.returncode == 2, result.stderr
    assert "config.json" in result.stderr and "'text_config' must be an object" in result.stderr
    config["text_config"] = {key: config[key] for key in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                          "num_key_value_heads", "vocab_size")}
    config["text_config"].update(intermediate_size=96, head_dim=config["hidden_size"] // config["num_attention_heads"])
    (folder / "config.json").write_text(json.dumps(config))
    result = run_abmll("logits", "--model", folder, "--out", tmp_path / "x.safetensors", "--ids", "1,2,3")
    assert result.returncode == 2, result.stderr
    assert "model.safetensors" in result.stderr and "no language model embeddings" in result.stderr


@pytest.mark.parametrize("padding", ["right", "left"])
@pytest.mark.parametrize("name", ["mistral_v01", "ministral", "qwen2_window", "gemma2", "gemma3", "olmo3", "phi3",
                                  "smollm3", "cohere2", "exaone4"])
def test_sliding_window_past_its_end(name, padding, fixtures, run_abmll, tmp_path):
    """These fixtures' windows are 11 tokens or fewer (Mistral v0.1's on every layer, Qwen2's on layer 1, Ministral's,
    Gemma-2's and Gemma-3's on layer 0, EXAONE-4's 6 on layers 0 to 2); sequences of 30 and 23 tokens reach past
    them, so their sliding layers attend to the last positions only, and abmll's logits must be transformers' (which
    differ from causal attention's there: checked)."""
    folder = fixtures[name]
    torch.manual_seed(3)
    long, short = torch.randint(0, 256, (30,)), torch.randint(0, 256, (23,))
    pad = len(long) - len(short)
    if padding == "right":
        ids = torch.stack([long, torch.cat([short, torch.zeros(pad, dtype=torch.long)])])
        mask = torch.tensor([[1] * len(long), [1] * len(short) + [0] * pad])
    else:
        ids = torch.stack([long, torch.cat([torch.zeros(pad, dtype=torch.long), short])])
        mask = torch.tensor([[1] * len(long), [0] * pad + [1] * len(short)])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    windowed = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    causal = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, sliding_window=100).eval()
    with torch.no_grad():
        want = windowed(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        unwindowed = causal(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    real = mask.bool()
    assert (want[real] - unwindowed[real]).abs().max() > 1e-2
    got = run_logits(run_abmll, folder, tmp_path / "out.safetensors", "--padding", padding,
                     "--ids", ids_flag(long), "--ids", ids_flag(short))
    assert torch.equal(got["input_ids"], ids)
    assert report(name, f"{padding}-padded past the window", got["logits"][real], want[real]) <= FLOAT32_TOLERANCE


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


def test_longrope_switches_at_the_original_context(fixtures, run_abmll, tmp_path):
    """LongRoPE's short factors while every position is below original_max_position_embeddings (8 here), its long
    ones once one reaches it, for the whole batch, as transformers switches: SEQ_B alone (5 tokens) is short, and
    beside SEQ_A (11 tokens) long. transformers' own logits of SEQ_B differ between the two (the test has teeth)."""
    folder = fixtures["phi3_longrope"]
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    short_ids = torch.tensor([make_model_fixtures.SEQ_B])
    a, b = make_model_fixtures.SEQ_A, make_model_fixtures.SEQ_B
    batch = torch.tensor([a, b + [0] * (len(a) - len(b))])
    mask = torch.tensor([[1] * len(a), [1] * len(b) + [0] * (len(a) - len(b))])
    with torch.no_grad():
        want_short = model(input_ids=short_ids).logits[0]
        want_batch = model(input_ids=batch, attention_mask=mask).logits
    moved = (want_batch[1, :len(b)] - want_short).abs().max().item()
    assert moved > 100 * FLOAT32_TOLERANCE  # the long factors change SEQ_B's logits
    got_short = run_logits(run_abmll, folder, tmp_path / "short.safetensors", "--ids", ids_flag(short_ids[0]))
    got_batch = run_logits(run_abmll, folder, tmp_path / "batch.safetensors", "--ids", ids_flag(torch.tensor(a)),
                           "--ids", ids_flag(torch.tensor(b)))
    diff_short = report("phi3_longrope", "short context", got_short["logits"].reshape(want_short.shape), want_short)
    diff_long = max(report("phi3_longrope", "long context, row A", got_batch["logits"][0], want_batch[0]),
                    report("phi3_longrope", "long context, row B", got_batch["logits"][1, :len(b)],
                           want_batch[1, :len(b)]))
    print(f"phi3_longrope: SEQ_B's logits move by {moved:.3g} between the short and the long factors")
    assert diff_short <= FLOAT32_TOLERANCE and diff_long <= FLOAT32_TOLERANCE


def test_gpt_oss_mxfp4_checkpoint(fixtures, run_abmll, tmp_path):
    """gpt-oss as released: its experts in MXFP4 (blocks of 32 4-bit values with a power-of-two scale each, and a
    quantization_config saying so). abmll dequantizes them when loading; the reference is transformers loading the
    same folder with Mxfp4Config(dequantize=True)."""
    from safetensors.torch import save_file
    from transformers import Mxfp4Config

    folder = tmp_path / "gpt_oss_mxfp4"
    shutil.copytree(fixtures["gpt_oss"], folder)
    weights = load_file(str(folder / "model.safetensors"))
    generator = torch.Generator().manual_seed(5)
    for name in [n for n in weights if n.endswith(("experts.gate_up_proj", "experts.down_proj"))]:
        experts, inputs, outputs = weights.pop(name).shape  # [E, in, out]
        weights[name + "_blocks"] = torch.randint(0, 256, (experts, outputs, inputs // 32, 16), generator=generator,
                                                  dtype=torch.uint8)
        weights[name + "_scales"] = torch.randint(118, 126, (experts, outputs, inputs // 32), generator=generator,
                                                  dtype=torch.uint8)
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "mxfp4", "modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}
    (folder / "config.json").write_text(json.dumps(config))

    model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=Mxfp4Config(dequantize=True),
                                                 dtype=torch.float32).eval()
    ref = load_file(str(folder / "reference.safetensors"))
    with torch.no_grad():
        want = model(input_ids=ref["single_ids"][None]).logits[0]
    got = run_logits(run_abmll, folder, tmp_path / "out.safetensors", "--ids", ids_flag(ref["single_ids"]))
    diff = report("gpt_oss (MXFP4 experts)", "single", got["logits"], want)
    moved = (want - ref["single_logits"]).abs().max().item()  # the quantized experts are other weights
    print(f"the MXFP4 experts move the logits by up to {moved:.3g}")
    assert moved > 100 * FLOAT32_TOLERANCE
    assert diff <= FLOAT32_TOLERANCE
