"""Qwen3.5 (Gated DeltaNet layers beside gated attention) against transformers 5.23, where make_model_fixtures.py's
short sequences do not reach: the delta rule runs in chunks of 64 tokens, so sequences of 150 and 97 tokens
(right- and left-padded in one batch) cross chunk boundaries and carry the state from chunk to chunk; the released
checkpoints' multimodal form (Qwen3_5ForConditionalGeneration, a vision tower beside the language model) read
natively, with PEFT adapters both ways; another language model in its text_config refused. float32 within 1e-4.
(Meta-training and evaluation end to end: test_sentencepiece_model.py.)"""
import json
import pathlib
import sys

import pytest
import torch
from peft import LoraConfig
from safetensors.torch import load_file
from transformers import (AutoModelForCausalLM, Qwen3_5Config, Qwen3_5ForConditionalGeneration, Qwen3_5TextConfig,
                          Qwen3_5VisionConfig)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import make_model_fixtures  # noqa: E402
from multimodal_checks import (TOLERANCE, abmll_adapter_in_peft, abmll_logits, abmll_padded_logits,  # noqa: E402
                               long_padded_batch, max_diff, norms_moved, peft_adapter_in_abmll, text_logits)


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    return make_model_fixtures.build("qwen3_5", tmp_path_factory.mktemp("qwen3_5"))


def make_multimodal():
    torch.manual_seed(11)
    text = Qwen3_5TextConfig(
        hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=16, vocab_size=300, layer_types=["linear_attention", "full_attention"], linear_num_key_heads=2,
        linear_num_value_heads=4, linear_key_head_dim=8, linear_value_head_dim=12,
        rope_parameters={"rope_type": "default", "rope_theta": 10000000.0, "partial_rotary_factor": 0.25,
                         "mrope_section": [1, 1, 0], "mrope_interleaved": True})
    vision = Qwen3_5VisionConfig(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=64,
                                 num_position_embeddings=16)
    config = Qwen3_5Config(text_config=text, vision_config=vision)
    return norms_moved(Qwen3_5ForConditionalGeneration(config).eval())


@pytest.fixture(scope="module")
def multimodal(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qwen3_5_mm") / "model"
    make_multimodal().save_pretrained(folder, safe_serialization=True)
    model = Qwen3_5ForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
    return {"folder": folder, "logits": text_logits(model)}


@pytest.mark.parametrize("padding", ["right", "left"])
def test_sequences_across_chunks(padding, text_model, run_abmll, tmp_path):
    ids, mask, rows = long_padded_batch(padding)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    model = AutoModelForCausalLM.from_pretrained(text_model, dtype=torch.float32).eval()
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    got, got_mask = abmll_padded_logits(run_abmll, text_model, rows, padding, tmp_path / "out.safetensors")
    assert torch.equal(got_mask, mask)
    real = mask.bool()
    diff = (got[real] - want[real]).abs().max().item()
    print(f"qwen3_5 {padding}-padded sequences of 150 and 97 tokens: logits max abs diff {diff:.3g}")
    assert diff <= TOLERANCE


def test_multimodal_read_natively(multimodal, run_abmll, tmp_path):
    got = abmll_logits(run_abmll, multimodal["folder"], tmp_path)
    diff = max_diff(got, multimodal["logits"])
    print(f"qwen3_5 multimodal read natively: logits max abs diff {diff:.3g}")
    assert diff <= TOLERANCE


@pytest.mark.parametrize("targets", [["q_proj", "in_proj_qkv", "in_proj_a", "out_proj", "down_proj"],
                                     r".*language_model.*\.(in_proj_z|o_proj|up_proj)"])
def test_peft_adapter_of_the_multimodal_model_in_abmll(targets, multimodal, run_abmll, tmp_path):
    config = LoraConfig(r=4, lora_alpha=6, target_modules=targets, task_type="CAUSAL_LM")
    want, got, _ = peft_adapter_in_abmll(Qwen3_5ForConditionalGeneration, multimodal["folder"], config, run_abmll,
                                         tmp_path)
    diff = max_diff(got, want)
    moved = (want[0] - multimodal["logits"][0]).abs().max().item()
    print(f"qwen3_5 multimodal PEFT adapter {targets}: logits max abs diff {diff:.3g} (the adapter moves them by "
          f"{moved:.3g})")
    assert moved > 100 * TOLERANCE and diff <= TOLERANCE


def test_abmll_adapter_in_peft_on_the_multimodal_model(multimodal, run_abmll, tmp_path):
    # (test_peft_adapter.cpp's export: in_proj_qkv, in_proj_b and out_proj of the DeltaNet layer, k_proj and o_proj
    # of the attention layer, up_proj of both.)
    want, got = abmll_adapter_in_peft(Qwen3_5ForConditionalGeneration, multimodal["folder"], run_abmll, tmp_path,
                                      modules=7, pattern="k_proj|o_proj|up_proj|in_proj_qkv|in_proj_b|out_proj")
    diff = max_diff(got, want)
    moved = (want[0] - multimodal["logits"][0]).abs().max().item()
    print(f"qwen3_5 multimodal abmll adapter in PEFT: logits max abs diff {diff:.3g} (moved {moved:.3g})")
    assert moved > 100 * TOLERANCE and diff <= TOLERANCE


def test_another_language_model_is_refused(multimodal, run_abmll, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    config = json.loads((multimodal["folder"] / "config.json").read_text())
    config["text_config"]["model_type"] = "qwen3"
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").symlink_to(multimodal["folder"] / "model.safetensors")
    result = run_abmll("logits", "--model", folder, "--ids", "1,2,3", "--out", tmp_path / "x.safetensors")
    assert result.returncode == 2, result.stderr
    assert "text_config" in result.stderr and "\"qwen3_5_text\"" in result.stderr
