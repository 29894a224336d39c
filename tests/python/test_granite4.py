"""Granite-4.0 (GraniteMoeHybrid: Mamba-2 layers beside attention layers) against transformers 5.23, where
make_model_fixtures.py's short sequences do not reach: sequences of 150 and 97 tokens (right- and left-padded in one
batch) over chunks of 16, the state carried from chunk to chunk; the Mamba-2 layer's own weights (A_log, D,
dt_bias, the convolution's bias, the gated norm) each moving logits; in_proj's and out_proj's biases
(mamba_proj_bias) and a binding time_step_limit; left padding that leaves a row's logits those of its sequence
alone; the released configs' spelling (layer types "mamba" and "attention", no RoPE, a bare Infinity). float32
within 1e-4."""
import json
import pathlib
import shutil
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import GraniteMoeHybridConfig, GraniteMoeHybridForCausalLM

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from multimodal_checks import TOLERANCE, abmll_padded_logits, long_padded_batch  # noqa: E402

SIZES = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
             vocab_size=256, initializer_range=0.1, rms_norm_eps=1e-6)


def make(folder, **overrides):
    """A Granite-4.0-H-shaped model (Mamba-2, attention, Mamba-2; no RoPE; the shared MLP) with every Mamba-2
    parameter moved off its initial value, saved to `folder`."""
    torch.manual_seed(7)
    settings = dict(SIZES, layer_types=["mamba", "attention", "mamba"], position_embedding_type=None,
                    num_local_experts=0, shared_intermediate_size=80, mamba_n_heads=8, mamba_n_groups=2,
                    mamba_d_state=16, mamba_chunk_size=16, embedding_multiplier=2.0, residual_multiplier=0.5,
                    attention_multiplier=0.2, logits_scaling=1.5)
    settings.update(overrides)
    model = GraniteMoeHybridForCausalLM(GraniteMoeHybridConfig(**settings)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("bias", "A_log", ".D")) or "norm" in name:
                p.add_(torch.randn_like(p) * 0.2)
    model.save_pretrained(folder, safe_serialization=True)
    return model


def max_diff(got, want):
    return (got.reshape(want.shape) - want).abs().max().item()


def abmll_single_logits(run_abmll, folder, ids, out):
    """abmll's logits [T, V] of one sequence."""
    result = run_abmll("logits", "--model", folder, "--ids", ",".join(map(str, ids.tolist())), "--out", out)
    assert result.returncode == 0, result.stderr
    return load_file(str(out))["logits"]


@pytest.mark.parametrize("padding", ["right", "left"])
def test_sequences_across_chunks(padding, run_abmll, tmp_path):
    folder = tmp_path / "model"
    model = make(folder)
    ids, mask, rows = long_padded_batch(padding)
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask).logits
    got, got_mask = abmll_padded_logits(run_abmll, folder, rows, padding, tmp_path / "out.safetensors")
    assert torch.equal(got_mask, mask)
    real = mask.bool()
    diff = (got[real] - want[real]).abs().max().item()
    print(f"granite4 {padding}-padded 150 + 97 tokens over chunks of 16: max abs diff {diff:.3g}")
    assert diff <= TOLERANCE


def test_mamba_parameters_and_biases_move_logits(run_abmll, tmp_path):
    """Each of the Mamba-2 layer's own tensors matters (a reader that skipped one would still match a model where it
    sits at its initial value); in_proj and out_proj with biases and a step limit that binds match transformers."""
    folder = tmp_path / "model"
    model = make(folder, mamba_proj_bias=True, time_step_limit=(0.0, 0.3))
    assert model.config.time_step_limit == (0.0, 0.3)
    ids = long_padded_batch("right")[0][0, :40]
    with torch.no_grad():
        want = model(input_ids=ids[None]).logits[0]
    got = abmll_single_logits(run_abmll, folder, ids, tmp_path / "out.safetensors")
    diff = max_diff(got, want)
    print(f"granite4 with in_proj/out_proj biases and dt <= 0.3: max abs diff {diff:.3g}")
    assert diff <= TOLERANCE
    # (Without the limit, which holds most steps at 0.3 whatever dt_bias is.)
    folder = tmp_path / "unlimited"
    make(folder, mamba_proj_bias=True)
    got = abmll_single_logits(run_abmll, folder, ids, tmp_path / "out.safetensors")
    tensors = load_file(str(folder / "model.safetensors"))
    for name in ["A_log", "D", "dt_bias", "conv1d.bias", "norm.weight", "in_proj.bias"]:
        changed = dict(tensors)
        key = f"model.layers.0.mamba.{name}"
        changed[key] = tensors[key] + 0.5
        other = tmp_path / f"moved_{name}"
        shutil.copytree(folder, other)
        save_file(changed, str(other / "model.safetensors"), metadata={"format": "pt"})
        moved = max_diff(abmll_single_logits(run_abmll, other, ids, tmp_path / "out.safetensors"), got)
        print(f"  {name} + 0.5 moves logits by {moved:.3g}")
        assert moved > 100 * TOLERANCE


def test_left_padding_is_the_sequence_alone(run_abmll, tmp_path):
    """abmll zeroes in_proj's output at padding, so a left-padded row is its sequence alone whatever the biases;
    transformers zeroes in_proj's input, which lets mamba_proj_bias reach the first tokens' convolution."""
    folder = tmp_path / "model"
    model = make(folder, mamba_proj_bias=True)
    ids, mask, rows = long_padded_batch("left")
    got, _ = abmll_padded_logits(run_abmll, folder, rows, "left", tmp_path / "out.safetensors")
    real = mask[1].bool()
    with torch.no_grad():
        alone = model(input_ids=ids[1][real][None]).logits[0]
        padded = model(input_ids=ids, attention_mask=mask).logits[1][real]
    diff = max_diff(got[1][real], alone)
    print(f"granite4 left-padded row vs its sequence alone: abmll {diff:.3g}, transformers "
          f"{max_diff(padded, alone):.3g}")
    assert diff <= TOLERANCE


def test_released_config_spelling(run_abmll, tmp_path):
    """The releases' config.json (transformers 4.x): layer types "mamba" and "attention", "position_embedding_type":
    "nope", the step limit as Python's json module writes an infinite float."""
    folder = tmp_path / "model"
    model = make(folder)
    config = json.loads((folder / "config.json").read_text())
    config["layer_types"] = ["mamba", "attention", "mamba"]
    config["position_embedding_type"] = "nope"
    config["time_step_limit"] = [0.0, float("inf")]
    text = json.dumps(config)  # (Python's json writes a bare Infinity, which is not JSON, as transformers 4.x did)
    assert "[0.0, Infinity]" in text
    (folder / "config.json").write_text(text)
    ids = long_padded_batch("right")[0][0, :30]
    with torch.no_grad():
        want = model(input_ids=ids[None]).logits[0]
    diff = max_diff(abmll_single_logits(run_abmll, folder, ids, tmp_path / "out.safetensors"), want)
    print(f"granite4 released config spelling: max abs diff {diff:.3g}")
    assert diff <= TOLERANCE
