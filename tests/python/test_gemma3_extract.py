"""scripts/models/gemma3_text.py on a tiny random multimodal Gemma-3 (Gemma3ForConditionalGeneration with a SigLIP
vision tower) as transformers 5.23 saves it (the released checkpoints' names: language_model.model.*, vision_tower.*),
and renamed to its modules' names (model.language_model.*, which transformers reads too: checked here): the
extracted text-only folder gives, through `abmll logits`, the logits transformers' multimodal model gives for text
(within 1e-4), and the converter refuses other models."""
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

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts/models/gemma3_text.py"
IDS = [2, 17, 200, 45, 3, 99, 255, 0, 128, 64, 7]
# The released (and saved) name prefixes -> the modules' names in transformers 5
MODULE_NAMES = [("language_model.model.", "model.language_model."), ("vision_tower.", "model.vision_tower."),
                ("multi_modal_projector.", "model.multi_modal_projector."), ("language_model.lm_head.", "lm_head.")]


@pytest.fixture(scope="module")
def multimodal(tmp_path_factory):
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
                          boi_token_index=297, eoi_token_index=298)
    model = Gemma3ForConditionalGeneration(config).eval()
    with torch.no_grad():  # norm weights away from their zero init, so that a missing one shows
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.2)
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
    renamed = {}
    for name, t in tensors.items():
        for old, new in MODULE_NAMES:
            if name.startswith(old):
                name = new + name[len(old):]
                break
        renamed[name] = t
    save_file(renamed, str(modules / "model.safetensors"), metadata={"format": "pt"})
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([IDS])).logits[0]
        again = Gemma3ForConditionalGeneration.from_pretrained(modules, dtype=torch.float32).eval()
        assert (again(input_ids=torch.tensor([IDS])).logits[0] - logits).abs().max().item() == 0
    return {"saved": saved, "modules": modules, "logits": logits, "root": root}


@pytest.mark.parametrize("naming", ["saved", "modules"])
def test_extracted_language_model_gives_the_multimodal_models_logits(naming, multimodal, abmll_bin):
    source = multimodal[naming]
    with safe_open(str(source / "model.safetensors"), "pt") as f:
        assert any(k.startswith("language_model.model." if naming == "saved" else "model.language_model.")
                   for k in f.keys())
    out = multimodal["root"] / f"text-{naming}"
    result = subprocess.run([sys.executable, SCRIPT, "--model", source, "--out", out], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["Gemma3ForCausalLM"] and config["model_type"] == "gemma3_text"
    assert config["rms_norm_eps"] == 1e-6 and config["hidden_activation"] == "gelu_pytorch_tanh"  # the defaults
    assert (out / "tokenizer.json").read_text() == "{}"
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        names = list(f.keys())
    assert all(n.startswith("model.") for n in names) and "model.embed_tokens.weight" in names
    logits_file = out / "logits.safetensors"
    result = subprocess.run([abmll_bin, "logits", "--model", out, "--ids", ",".join(map(str, IDS)),
                             "--out", logits_file], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    got = load_file(str(logits_file))["logits"].reshape(multimodal["logits"].shape)
    diff = (got - multimodal["logits"]).abs().max().item()
    print(f"gemma3 extracted from the {naming} naming: logits max abs diff {diff:.3g}")
    assert diff <= 1e-4


def test_other_models_are_refused(multimodal, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(multimodal["saved"], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config["text_config"]))
    result = subprocess.run([sys.executable, SCRIPT, "--model", folder, "--out", tmp_path / "out"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "not a multimodal Gemma-3 config" in result.stderr and "gemma3_text" in result.stderr
