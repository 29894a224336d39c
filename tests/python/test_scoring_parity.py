"""Parity of abmll's continuation scoring (model/scoring.h) with transformers (and PEFT) on the tiny random
checkpoints of make_model_fixtures.py: for prompt/continuation pairs of varied lengths, scored by abmll in one
right-padded batch (through the hidden Catch2 case "[.score_export]", with the vocabulary projection in chunks of 3
rows), the sum over continuation tokens of log_softmax(transformers' logits) at the predicting positions, each pair
run alone. float32 must agree within 1e-4; each test prints its largest difference.
"""
import json
import os
import pathlib
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import make_model_fixtures  # noqa: E402

TOLERANCE = 1e-4
ITEMS = [([1, 17, 200], [45, 3]), ([5], [250, 33, 8, 142, 9]), ([7, 7, 30, 12, 99, 0], []),
         ([4, 4], [255]), ([128, 64, 7, 3, 2, 1, 90, 91], [92, 93, 94])]


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    return {name: make_model_fixtures.build(name, out) for name in ["llama3", "qwen2_tied", "qwen3", "gemma2",
                                                                    "granite", "qwen2_moe", "glm4", "cohere",
                                                                    "deepseek_v2", "deepseek_v3", "qwen3_5",
                                                                    "granite4"]}


def reference(model):
    scores = []
    with torch.no_grad():
        for prompt, cont in ITEMS:
            logits = model(input_ids=torch.tensor([prompt + cont])).logits[0].float()
            lsm = torch.log_softmax(logits, -1)
            scores.append(sum(lsm[len(prompt) - 1 + j, t].item() for j, t in enumerate(cont)))
    return torch.tensor(scores)


def abmll_scores(folder, adapter, tmp_path):
    items = tmp_path / "items.json"
    items.write_text(json.dumps([{"prompt": p, "continuation": c} for p, c in ITEMS]))
    out = tmp_path / "scores.safetensors"
    env = dict(os.environ, ABMLL_SCORE_MODEL=str(folder), ABMLL_SCORE_ITEMS=str(items), ABMLL_SCORE_OUT=str(out),
               ABMLL_SCORE_ADAPTER=str(adapter or ""))
    result = subprocess.run([os.environ["ABMLL_TESTS_BIN"], "[.score_export]"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return load_file(str(out))


@pytest.mark.parametrize("name,with_adapter",
                         [("llama3", True), ("qwen2_tied", False), ("qwen3", True), ("gemma2", True),
                          ("granite", True), ("qwen2_moe", True), ("glm4", True),
                          ("cohere", True), ("deepseek_v2", True), ("deepseek_v3", True), ("qwen3_5", True),
                          ("granite4", True)])
def test_scores_match_transformers(name, with_adapter, fixtures, tmp_path):
    from transformers import AutoModelForCausalLM

    folder = fixtures[name]
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    adapter = None
    if with_adapter:
        from peft import LoraConfig, get_peft_model

        # (A mixture of experts: its attention only; up_proj would name its shared expert's and dense layers'. GLM-4:
        # gate and up are one module. DeepSeek: its latent attention's. Granite-4.0: its Mamba-2 layers' and its
        # shared MLP's.)
        targets = (["q_proj", "v_proj", "o_proj"] if name.endswith("_moe") else
                   ["q_proj", "kv_a_proj_with_mqa", "kv_b_proj"] if name == "deepseek_v2" else
                   ["q_a_proj", "q_b_proj", "kv_b_proj", "o_proj"] if name == "deepseek_v3" else
                   ["q_proj", "v_proj", "gate_up_proj"] if name == "glm4" else
                   ["q_proj", "in_proj", "out_proj", "input_linear"] if name == "granite4" else
                   ["q_proj", "v_proj", "up_proj"])
        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets))
        torch.manual_seed(3)
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if "lora_" in pname:
                    p.copy_(torch.randn_like(p) * 0.2)
        model.eval()
        adapter = tmp_path / "adapter"
        model.save_pretrained(adapter)
    want = reference(model)
    got = abmll_scores(folder, adapter, tmp_path)
    assert got["tokens"].tolist() == [len(c) for _, c in ITEMS]
    diff = (got["log_prob"].double() - want.double()).abs().max().item()
    print(f"{name} scoring (adapter: {with_adapter}): max abs diff {diff:.3g} (scores {want.tolist()})")
    assert diff <= TOLERANCE
