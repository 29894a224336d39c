"""Multimodal Mistral-3 checkpoints (Mistral3ForConditionalGeneration, a Pixtral vision tower beside the language
model: Ministral-3 3B to 14B, whose language model is a Ministral-3 (Mistral's layers, YaRN, queries scaled by
position), and Mistral-Small-3.1 / 3.2, whose language model is a Mistral), on tiny random ones as transformers 5.23
saves them (language_model.model.*, vision_tower.*), renamed to its modules' names (model.language_model.*), untied,
and with the top level's tie_word_embeddings (true by default) over a checkpoint that holds its own lm_head (the
releases' case: transformers then keeps the checkpoint's head, untied), each against the model transformers loads
from the folder:
  - read natively: `abmll logits` on the folder gives the logits transformers' multimodal model gives for text (the
    sequences reach past the fixture's 4 positions, where the query scale grows);
  - PEFT adapters both ways: PEFT's on the multimodal model (target_modules a list, which also adapts the vision
    tower, whose tensors abmll leaves out; a pattern for the language model only) applied by `abmll logits
    --adapter`, and abmll's loaded by PeftModel.from_pretrained on the multimodal model, adapting no module of the
    vision tower;
  - another language model in text_config is refused (exit 2).
All within 1e-4 (float32)."""
import json
import pathlib
import shutil
import sys

import pytest
import torch
from peft import LoraConfig
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import (Ministral3Config, Mistral3Config, Mistral3ForConditionalGeneration, MistralConfig,
                          PixtralVisionConfig)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from multimodal_checks import (TOLERANCE, abmll_adapter_in_peft, abmll_logits, max_diff,  # noqa: E402
                               norms_moved, peft_adapter_in_abmll, text_logits, to_module_names)

SIZES = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             head_dim=16, vocab_size=300)
# Ministral-3's RoPE with its 16384 positions brought down to 4.
MINISTRAL3_ROPE = {"rope_type": "yarn", "rope_theta": 1000000.0, "factor": 16.0, "original_max_position_embeddings": 4,
                   "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0,
                   "llama_4_scaling_beta": 0.1}


def make_model(language_model: str, tie: bool):
    torch.manual_seed(0 if language_model == "ministral3" else 1)
    text = (Ministral3Config(**SIZES, rope_parameters=MINISTRAL3_ROPE) if language_model == "ministral3"
            else MistralConfig(**SIZES, sliding_window=None, rope_theta=1000000000.0))
    vision = PixtralVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                 head_dim=16, image_size=28, patch_size=14)
    config = Mistral3Config(text_config=text, vision_config=vision, image_token_index=299, tie_word_embeddings=tie)
    return norms_moved(Mistral3ForConditionalGeneration(config).eval())


def loaded_logits(folder):
    """What transformers computes for the model it loads from `folder`."""
    return text_logits(Mistral3ForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval())


@pytest.fixture(scope="module")
def multimodal(tmp_path_factory):
    root = tmp_path_factory.mktemp("mistral3")
    folders = {}
    make_model("ministral3", tie=True).save_pretrained(root / "saved", safe_serialization=True)
    folders["saved"] = root / "saved"
    modules = root / "modules"
    shutil.copytree(folders["saved"], modules)
    tensors = load_file(str(modules / "model.safetensors"))
    assert any(name.startswith("language_model.model.") for name in tensors)
    assert not any("lm_head" in name for name in tensors)
    save_file(to_module_names(tensors), str(modules / "model.safetensors"), metadata={"format": "pt"})
    folders["modules"] = modules
    make_model("ministral3", tie=False).save_pretrained(root / "untied", safe_serialization=True)
    folders["untied"] = root / "untied"
    with safe_open(str(folders["untied"] / "model.safetensors"), "pt") as f:
        assert "language_model.lm_head.weight" in f.keys()
    # The releases' case: a config tied by Mistral3Config's default, a checkpoint with its own head.
    folders["tied-config"] = root / "tied-config"
    shutil.copytree(folders["untied"], folders["tied-config"])
    config = json.loads((folders["tied-config"] / "config.json").read_text())
    config.pop("tie_word_embeddings")
    (folders["tied-config"] / "config.json").write_text(json.dumps(config))
    # Mistral-Small-3.1's form: a Mistral language model.
    make_model("mistral", tie=False).save_pretrained(root / "mistral", safe_serialization=True)
    folders["mistral"] = root / "mistral"
    logits = {name: loaded_logits(folder) for name, folder in folders.items()}
    assert (logits["modules"][0] - logits["saved"][0]).abs().max().item() == 0
    assert (logits["tied-config"][0] - logits["untied"][0]).abs().max().item() == 0  # transformers kept the head
    return {"root": root, "folders": folders, "logits": logits}


@pytest.mark.parametrize("naming", ["saved", "modules", "untied", "tied-config", "mistral"])
def test_read_natively(naming, multimodal, run_abmll, tmp_path):
    got = abmll_logits(run_abmll, multimodal["folders"][naming], tmp_path)
    diff = max_diff(got, multimodal["logits"][naming])
    print(f"mistral3 multimodal ({naming}) read natively: logits max abs diff {diff:.3g}")
    assert diff <= TOLERANCE
    assert ("holds other values: it is used, untied" in got[2]) == (naming == "tied-config")


@pytest.mark.parametrize("targets", [["q_proj", "v_proj", "down_proj"], r".*language_model.*\.(k_proj|up_proj)"])
def test_peft_adapter_of_the_multimodal_model_in_abmll(targets, multimodal, run_abmll, tmp_path):
    config = LoraConfig(r=4, lora_alpha=6, target_modules=targets, task_type="CAUSAL_LM")
    want, got, vision = peft_adapter_in_abmll(Mistral3ForConditionalGeneration, multimodal["folders"]["saved"], config,
                                              run_abmll, tmp_path)
    assert bool(vision) == isinstance(targets, list)  # Pixtral's layers have q_proj, v_proj and down_proj too
    diff = max_diff(got, want)
    moved = (want[0] - multimodal["logits"]["saved"][0]).abs().max().item()
    print(f"mistral3 multimodal PEFT adapter {targets}: logits max abs diff {diff:.3g} (the adapter moves them by "
          f"{moved:.3g})")
    assert moved > 100 * TOLERANCE and diff <= TOLERANCE


@pytest.mark.parametrize("naming", ["modules", "mistral"])
def test_abmll_adapter_in_peft_on_the_multimodal_model(naming, multimodal, run_abmll, tmp_path):
    folder = multimodal["folders"][naming]
    want, got = abmll_adapter_in_peft(Mistral3ForConditionalGeneration, folder, run_abmll, tmp_path)
    diff = max_diff(got, want)
    moved = (want[0] - multimodal["logits"][naming][0]).abs().max().item()
    print(f"mistral3 multimodal ({naming}), abmll-written adapter in PEFT: logits max abs diff {diff:.3g} (moved "
          f"{moved:.3g})")
    assert moved > 100 * TOLERANCE and diff <= TOLERANCE


def test_another_language_model_is_refused(multimodal, run_abmll, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(multimodal["folders"]["saved"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["model_type"] = "llama"
    (folder / "config.json").write_text(json.dumps(config))
    result = run_abmll("logits", "--model", folder, "--out", tmp_path / "x.safetensors", "--ids", "1,2,3")
    assert result.returncode == 2, result.stderr
    assert "config.json" in result.stderr and "text_config" in result.stderr
    assert "\"ministral3\" or \"mistral\"" in result.stderr
