"""Multimodal Gemma-3 checkpoints (Gemma3ForConditionalGeneration, a SigLIP vision tower beside the language model:
the 4B, 12B and 27B releases), on a tiny random one as transformers 5.23 saves it (the released checkpoints' names:
language_model.model.*, vision_tower.*), renamed to its modules' names (model.language_model.*, which transformers
reads too: checked here), and untied (language_model.lm_head.weight):
  - read natively: `abmll logits` on the folder gives the logits transformers' multimodal model gives for text;
  - PEFT adapters both ways: PEFT's on the multimodal model (target_modules a list, which also adapts the vision
    tower, whose tensors abmll leaves out; a pattern for the language model only; a list with exclude_modules) applied by `abmll logits
    --adapter`, and abmll's (the hidden Catch2 case "[.peft_export]") loaded by PeftModel.from_pretrained on the
    multimodal model, adapting no module of the vision tower; an adapter PEFT trained on the extracted text-only
    model applies to the multimodal one too (the same language model);
  - scripts/models/gemma3_text.py extracts a text-only folder giving the same logits, and refuses other models.
All within 1e-4 (float32)."""
import json
import pathlib
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3TextConfig, SiglipVisionConfig

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from multimodal_checks import (TOLERANCE, abmll_adapter_in_peft, abmll_logits, max_diff,  # noqa: E402
                               norms_moved, peft_adapter_in_abmll, randomised, text_logits,
                               to_module_names)

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts/models/gemma3_text.py"


def make_model(tie: bool):
    torch.manual_seed(0)
    text = Gemma3TextConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                            num_key_value_heads=2, head_dim=16, vocab_size=300, sliding_window=16,
                            query_pre_attn_scalar=20, layer_types=["sliding_attention", "full_attention"],
                            rope_parameters={"full_attention": {"rope_type": "linear", "factor": 8.0,
                                                                "rope_theta": 1000000.0},
                                             "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}})
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                image_size=28, patch_size=14)
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4, image_token_index=299,
                          boi_token_index=297, eoi_token_index=298, tie_word_embeddings=tie)
    return norms_moved(Gemma3ForConditionalGeneration(config).eval())


@pytest.fixture(scope="module")
def multimodal(tmp_path_factory):
    model = make_model(tie=True)
    root = tmp_path_factory.mktemp("gemma3")
    saved = root / "saved"
    model.save_pretrained(saved, safe_serialization=True)
    # As the releases' config.json: fields left to Gemma3TextConfig's defaults (these equal them).
    config_json = json.loads((saved / "config.json").read_text())
    for key in ("rms_norm_eps", "hidden_activation", "attn_logit_softcapping"):
        config_json["text_config"].pop(key, None)
    (saved / "config.json").write_text(json.dumps(config_json))
    (saved / "tokenizer.json").write_text("{}")  # copied as it is
    # The modules' naming.
    modules = root / "modules"
    shutil.copytree(saved, modules)
    tensors = load_file(str(saved / "model.safetensors"))
    assert any(name.startswith("language_model.model.") for name in tensors)
    save_file(to_module_names(tensors), str(modules / "model.safetensors"), metadata={"format": "pt"})
    logits = text_logits(model)
    again = Gemma3ForConditionalGeneration.from_pretrained(modules, dtype=torch.float32).eval()
    assert (text_logits(again)[0] - logits[0]).abs().max().item() == 0
    # Untied: transformers saves the head as language_model.lm_head.weight.
    untied_model = make_model(tie=False)
    untied = root / "untied"
    untied_model.save_pretrained(untied, safe_serialization=True)
    with safe_open(str(untied / "model.safetensors"), "pt") as f:
        assert "language_model.lm_head.weight" in f.keys()
    return {"saved": saved, "modules": modules, "untied": untied, "root": root,
            "logits": {"saved": logits, "modules": logits, "untied": text_logits(untied_model)}}


@pytest.mark.parametrize("naming", ["saved", "modules", "untied"])
def test_read_natively(naming, multimodal, run_abmll, tmp_path):
    got = abmll_logits(run_abmll, multimodal[naming], tmp_path)
    diff = max_diff(got, multimodal["logits"][naming])
    print(f"gemma3 multimodal ({naming} naming) read natively: logits max abs diff {diff:.3g}")
    assert diff <= TOLERANCE


@pytest.mark.parametrize("targets,exclude", [(["q_proj", "v_proj", "down_proj"], None),
                                             (r".*language_model.*\.(k_proj|up_proj)", None),
                                             (["q_proj", "o_proj"], r".*vision_tower.*")])
def test_peft_adapter_of_the_multimodal_model_in_abmll(targets, exclude, multimodal, run_abmll, tmp_path):
    from peft import LoraConfig

    config = LoraConfig(r=4, lora_alpha=6, target_modules=targets, exclude_modules=exclude, task_type="CAUSAL_LM")
    want, got, vision = peft_adapter_in_abmll(Gemma3ForConditionalGeneration, multimodal["saved"], config, run_abmll,
                                              tmp_path)
    # A list adapts the vision tower's q_proj and v_proj too, unless exclude_modules leaves it out.
    assert bool(vision) == (isinstance(targets, list) and exclude is None)
    diff = max_diff(got, want)
    moved = (want[0] - multimodal["logits"]["saved"][0]).abs().max().item()
    print(f"gemma3 multimodal PEFT adapter {targets}: logits max abs diff {diff:.3g} (the adapter moves them by "
          f"{moved:.3g})")
    assert moved > 100 * TOLERANCE and diff <= TOLERANCE


def test_abmll_adapter_in_peft_on_the_multimodal_model(multimodal, run_abmll, tmp_path):
    want, got = abmll_adapter_in_peft(Gemma3ForConditionalGeneration, multimodal["modules"], run_abmll, tmp_path)
    diff = max_diff(got, want)
    moved = (want[0] - multimodal["logits"]["modules"][0]).abs().max().item()
    print(f"gemma3 multimodal, abmll-written adapter in PEFT: logits max abs diff {diff:.3g} (moved {moved:.3g})")
    assert moved > 100 * TOLERANCE and diff <= TOLERANCE


@pytest.mark.parametrize("naming", ["saved", "modules", "untied"])
def test_extracted_language_model_gives_the_multimodal_models_logits(naming, multimodal, run_abmll, tmp_path):
    source = multimodal[naming]
    out = multimodal["root"] / f"text-{naming}"
    result = subprocess.run([sys.executable, SCRIPT, "--model", source, "--out", out], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["Gemma3ForCausalLM"] and config["model_type"] == "gemma3_text"
    assert config["rms_norm_eps"] == 1e-6 and config["hidden_activation"] == "gelu_pytorch_tanh"  # the defaults
    assert config["tie_word_embeddings"] == (naming != "untied")
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        names = list(f.keys())
    assert all(n.startswith(("model.", "lm_head.")) for n in names) and "model.embed_tokens.weight" in names
    assert ("lm_head.weight" in names) == (naming == "untied")
    diff = max_diff(abmll_logits(run_abmll, out, tmp_path), multimodal["logits"][naming])
    print(f"gemma3 extracted from the {naming} naming: logits max abs diff {diff:.3g}")
    assert diff <= TOLERANCE
    if naming == "saved":
        assert (out / "tokenizer.json").read_text() == "{}"


def test_adapter_of_the_extracted_model_applies_to_the_multimodal_one(multimodal, run_abmll, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma3ForCausalLM

    text_only = tmp_path / "text"
    result = subprocess.run([sys.executable, SCRIPT, "--model", multimodal["saved"], "--out", text_only],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    config = LoraConfig(r=2, lora_alpha=2, target_modules=["q_proj", "gate_proj"], task_type="CAUSAL_LM")
    model = randomised(get_peft_model(Gemma3ForCausalLM.from_pretrained(text_only), config))
    model.save_pretrained(tmp_path / "adapter")
    want = text_logits(model)
    diff = max_diff(abmll_logits(run_abmll, multimodal["saved"], tmp_path / "out", tmp_path / "adapter"), want)
    moved = (want[0] - multimodal["logits"]["saved"][0]).abs().max().item()
    print(f"gemma3: the extracted model's PEFT adapter on the multimodal checkpoint: logits max abs diff {diff:.3g} "
          f"(moved {moved:.3g})")
    assert moved > 100 * TOLERANCE and diff <= TOLERANCE


def test_other_models_are_refused(multimodal, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(multimodal["saved"], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config["text_config"]))
    result = subprocess.run([sys.executable, SCRIPT, "--model", folder, "--out", tmp_path / "out"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "not a multimodal Gemma-3 config" in result.stderr and "gemma3_text" in result.stderr
