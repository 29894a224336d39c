"""Checkpoints in transformers' fine-grained FP8 (quantization_config's quant_method "fp8": Qwen3's and DeepSeek-V3's
-FP8 releases, Ministral-3's instruct models): every projection of the layers stored as float8_e4m3fn with a float32
`weight_scale_inv` per block of weight_block_size (or one per tensor when it is null), made here from tiny random
fixtures (make_model_fixtures.py) as those releases are made (each block's largest magnitude mapped to E4M3's 448).
transformers 5.23 loads such a folder on a CPU by dequantizing it (FineGrainedFP8's dequantize mode): abmll's logits
of the same folder must equal them (float32 within 1e-4, bfloat16 within a few steps), while differing from the
unquantized model's (so that the FP8 values, not the original ones, are what both compute). A missing or mis-shaped
scale is refused (exit 2) naming the tensor."""
import json
import pathlib
import shutil
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import make_model_fixtures  # noqa: E402

FLOAT32_TOLERANCE = 1e-4
BF16_RELATIVE_TOLERANCE = 0.05
E4M3_LARGEST = 448.0
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "q_a_proj", "q_b_proj",
               "kv_a_proj_with_mqa", "kv_b_proj")


def quantize(weight, block):
    """weight [out, in] -> (float8_e4m3fn [out, in], float32 scales [out / b0, in / b1], or [] per tensor)."""
    w = weight.float()
    if block is None:
        scale = (w.abs().max() / E4M3_LARGEST).clamp(min=1e-12)
        return (w / scale).to(torch.float8_e4m3fn), scale.reshape([])
    b0, b1 = block
    blocks = w.reshape(w.shape[0] // b0, b0, w.shape[1] // b1, b1)
    scale = (blocks.abs().amax(dim=(1, 3)) / E4M3_LARGEST).clamp(min=1e-12)  # [out / b0, in / b1]
    q = (blocks / scale[:, None, :, None]).reshape(w.shape).to(torch.float8_e4m3fn)
    return q, scale


def fp8_folder(source, out, block, dtype=torch.float32):
    """`source`'s checkpoint with every projection of its layers in FP8, the other tensors in `dtype`."""
    shutil.copytree(source, out)
    tensors = load_file(str(out / "model.safetensors"))
    converted = {}
    for name, t in tensors.items():
        if name.startswith("model.layers.") and name.endswith(".weight") and name.split(".")[-2] in PROJECTIONS:
            converted[name], converted[name + "_scale_inv"] = quantize(t, block)
        else:
            converted[name] = t.to(dtype)
    save_file(converted, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((out / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                     "weight_block_size": block}
    (out / "config.json").write_text(json.dumps(config))
    return out


def abmll_logits(run_abmll, folder, ids, out, *flags):
    result = run_abmll("logits", "--model", folder, "--ids", ",".join(map(str, ids)), "--out", out, *flags)
    assert result.returncode == 0, result.stderr
    return load_file(str(out))["logits"]


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    out = tmp_path_factory.mktemp("fp8")
    return {name: make_model_fixtures.build(name, out) for name in ("llama3", "qwen3_moe", "deepseek_v3")}


@pytest.mark.parametrize("name,block", [("llama3", [32, 32]), ("llama3", None), ("qwen3_moe", [16, 16]),
                                        ("deepseek_v3", [8, 8])])
def test_fp8_logits_equal_transformers(name, block, fixtures, run_abmll, tmp_path):
    folder = fp8_folder(fixtures[name], tmp_path / "fp8", block)
    ref = load_file(str(fixtures[name] / "reference.safetensors"))
    ids = ref["single_ids"].tolist()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        want = model(input_ids=torch.tensor([ids])).logits[0]
    got = abmll_logits(run_abmll, folder, ids, tmp_path / "out.safetensors").reshape(want.shape)
    diff = (got - want).abs().max().item()
    moved = (want - ref["single_logits"]).abs().max().item()
    print(f"{name} FP8 blocks {block}: max abs diff {diff:.3g} (quantization moves logits by {moved:.3g})")
    assert diff <= FLOAT32_TOLERANCE and moved > 10 * FLOAT32_TOLERANCE
    if name == "llama3":  # as released: the other tensors in bfloat16, and the FP8 ones dequantized to it by both
        folder = fp8_folder(fixtures[name], tmp_path / "fp8-bf16", block, torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).eval()
        with torch.no_grad():
            want = model(input_ids=torch.tensor([ids])).logits[0].float()
        got = abmll_logits(run_abmll, folder, ids, tmp_path / "bf16.safetensors")  # (the embeddings' dtype)
        diff = (got.reshape(want.shape) - want).abs().max().item()
        print(f"{name} FP8 blocks {block} in bfloat16: max abs diff {diff:.3g}")
        assert diff <= BF16_RELATIVE_TOLERANCE * want.abs().max().item()


def test_missing_or_misshaped_scales_are_refused(fixtures, run_abmll, tmp_path):
    folder = fp8_folder(fixtures["llama3"], tmp_path / "fp8", [32, 32])
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"]["weight_block_size"] = [16, 32]
    (folder / "config.json").write_text(json.dumps(config))
    result = run_abmll("logits", "--model", folder, "--ids", "1,2,3", "--out", tmp_path / "x.safetensors")
    assert result.returncode == 2, result.stderr
    assert "model.layers.0.self_attn.q_proj.weight_scale_inv' is [2, 2]" in result.stderr
    assert "blocks of 16 x 32" in result.stderr and "need [4, 2]" in result.stderr

    config["quantization_config"]["weight_block_size"] = [32, 32]
    (folder / "config.json").write_text(json.dumps(config))
    tensors = load_file(str(folder / "model.safetensors"))
    del tensors["model.layers.1.mlp.down_proj.weight_scale_inv"]
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    result = run_abmll("logits", "--model", folder, "--ids", "1,2,3", "--out", tmp_path / "x.safetensors")
    assert result.returncode == 2, result.stderr
    assert "'model.layers.1.mlp.down_proj.weight' is FP8 but its scales" in result.stderr
