"""Parity of abmll's LoRA (BatchedLora, PEFT adapter folders) with PEFT 0.21 on the tiny random checkpoints of
make_model_fixtures.py, in both directions:
  - PEFT -> abmll: a LoraConfig adapter with random non-zero A and B (PEFT initialises B to zero, which would hide
    everything), saved with save_pretrained, applied by `abmll logits --adapter`; compared with PEFT's logits.
  - abmll -> PEFT: an adapter written by abmll (the hidden Catch2 case "[.peft_export]"), loaded with
    PeftModel.from_pretrained; compared with `abmll logits --adapter` on the same folder.
float32 must agree within 1e-4 (max abs difference over real positions and the whole vocabulary); each test prints
its largest difference, and checks that the adapter really changes the logits.
"""
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
ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# (fixture, target modules, use_rslora)
CASES = [("llama3", ALL, False), ("qwen2_tied", ["q_proj", "v_proj", "o_proj"], True),
         ("llama31", ["k_proj", "gate_proj", "down_proj"], False), ("qwen2_gqa", ["k_proj", "up_proj"], True),
         ("qwen3", ALL, False), ("qwen3_bias", ["q_proj", "k_proj", "o_proj", "down_proj"], True),
         ("gemma", ["q_proj", "v_proj", "up_proj"], False), ("gemma2", ALL, True),
         ("gemma3", ["q_proj", "k_proj", "down_proj"], False),
         ("olmo2", ["q_proj", "k_proj", "o_proj", "up_proj"], True), ("olmo3", ["v_proj", "gate_proj"], False),
         ("phi3", ["qkv_proj", "gate_up_proj"], True), ("phi3", "all-linear", False),
         ("granite", ["q_proj", "v_proj", "down_proj"], False), ("mixtral", ["q_proj", "v_proj"], False),
         ("qwen2_moe", ["q_proj", "k_proj", "o_proj"], True),
         ("qwen3_moe", ["q_proj", "k_proj", "v_proj", "o_proj"], False),
         ("olmoe", ["k_proj", "v_proj", "o_proj"], True),
         ("glm", "all-linear", False), ("glm4", ["q_proj", "v_proj", "gate_up_proj", "down_proj"], True),
         ("smollm3", ["q_proj", "k_proj", "up_proj"], False), ("cohere", ["q_proj", "o_proj", "down_proj"], True),
         ("cohere2", ["k_proj", "v_proj", "gate_proj"], False), ("granitemoe", ["q_proj", "v_proj"], True),
         ("deepseek_v2", ["q_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"], True),
         ("deepseek_v3", ["q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"], False),
         ("deepseek_v3", ["q_b_proj", "kv_b_proj"], True),
         ("glm4_moe_lite", ["q_a_proj", "kv_a_proj_with_mqa", "o_proj"], False),
         ("gpt_oss", ["q_proj", "k_proj", "v_proj", "o_proj"], True),
         ("apertus", ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"], False),
         ("apertus", "all-linear", True), ("exaone4", ["q_proj", "k_proj", "gate_proj", "down_proj"], True),
         ("seed_oss", ALL, False), ("glm4_moe", ["q_proj", "k_proj", "v_proj", "o_proj"], True),
         ("ministral3", ["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"], False),
         ("qwen3_5", ["in_proj_qkv", "in_proj_z", "in_proj_b", "in_proj_a", "out_proj", "q_proj", "v_proj",
                      "down_proj"], True), ("qwen3_5", "all-linear", False),
         ("qwen3_5_moe", ["in_proj_qkv", "in_proj_z", "out_proj", "q_proj", "o_proj"], False),
         ("granite4", ["in_proj", "out_proj", "q_proj", "v_proj", "input_linear", "output_linear"], True),
         ("granite4", "all-linear", False), ("granite4_dense", ["q_proj", "k_proj", "o_proj", "input_linear"], False),
         ("granite4_moe", ["in_proj", "out_proj", "k_proj", "o_proj"], True)]


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    return {name: make_model_fixtures.build(name, out) for name in sorted({c[0] for c in CASES})}


def base_model(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def peft_logits(model, ref):
    """Logits of the single sequence [T, V] and of the right-padded batch [2, T, V]."""
    with torch.no_grad():
        single = model(input_ids=ref["single_ids"][None]).logits[0]
        batch = model(input_ids=ref["batch_ids"], attention_mask=ref["batch_mask"]).logits
    return single, batch


def abmll_logits(run_abmll, folder, adapter, ref, tmp_path):
    ids = lambda t: ",".join(str(int(i)) for i in t)  # noqa: E731
    out = tmp_path / "single.safetensors"
    result = run_abmll("logits", "--model", folder, "--adapter", adapter, "--out", out,
                       "--ids", ids(ref["single_ids"]))
    assert result.returncode == 0, result.stderr
    single = load_file(str(out))["logits"]
    seqs = [ids(row[m.bool()]) for row, m in zip(ref["batch_ids"], ref["batch_mask"])]
    out = tmp_path / "batch.safetensors"
    result = run_abmll("logits", "--model", folder, "--adapter", adapter, "--out", out,
                       "--ids", seqs[0], "--ids", seqs[1])
    assert result.returncode == 0, result.stderr
    return single, load_file(str(out))["logits"]


def compare(what, got, want, base, mask):
    real = mask.bool()
    diff = max((got[0] - want[0]).abs().max().item(), (got[1][real] - want[1][real]).abs().max().item())
    moved = (want[0] - base[0]).abs().max().item()
    print(f"{what}: max abs diff {diff:.3g} (the adapter moves logits by up to {moved:.3g})")
    assert moved > 100 * TOLERANCE
    assert diff <= TOLERANCE


@pytest.mark.parametrize("name,targets,rslora", CASES)
def test_peft_adapter_in_abmll(name, targets, rslora, fixtures, run_abmll, tmp_path):
    from peft import LoraConfig, get_peft_model

    folder = fixtures[name]
    ref = load_file(str(folder / "reference.safetensors"))
    base = peft_logits(base_model(folder), ref)
    config = LoraConfig(r=4, lora_alpha=6, use_rslora=rslora, target_modules=targets, lora_dropout=0.1,
                        task_type="CAUSAL_LM")
    model = get_peft_model(base_model(folder), config)
    torch.manual_seed(7)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "lora_A" in pname or "lora_B" in pname:
                p.copy_(torch.randn_like(p) * 0.2)
    model.eval()
    model.save_pretrained(tmp_path / "adapter")
    want = peft_logits(model, ref)
    got = abmll_logits(run_abmll, folder, tmp_path / "adapter", ref, tmp_path)
    compare(f"{name} PEFT adapter {targets} rslora={rslora}", got, want, base, ref["batch_mask"])


@pytest.mark.parametrize("name", ["llama3", "qwen2_tied", "qwen3", "olmo2", "phi3", "mixtral", "qwen3_moe", "glm4",
                                  "cohere", "deepseek_v2", "deepseek_v3", "gpt_oss", "apertus",
                                  "glm4_moe", "ministral3", "qwen3_5", "qwen3_5_moe", "granite4",
                                  "granite4_moe"])
def test_abmll_adapter_in_peft(name, fixtures, run_abmll, tmp_path):
    from peft import PeftModel

    folder = fixtures[name]
    ref = load_file(str(folder / "reference.safetensors"))
    adapter = tmp_path / "adapter"
    env = dict(os.environ, ABMLL_PEFT_MODEL=str(folder), ABMLL_PEFT_OUT=str(adapter))
    result = subprocess.run([os.environ["ABMLL_TESTS_BIN"], "[.peft_export]"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    base = peft_logits(base_model(folder), ref)
    model = PeftModel.from_pretrained(base_model(folder), adapter).eval()
    want = peft_logits(model, ref)
    got = abmll_logits(run_abmll, folder, adapter, ref, tmp_path)
    compare(f"{name} abmll-written adapter", got, want, base, ref["batch_mask"])


def test_unsupported_option_is_an_input_error(fixtures, run_abmll, tmp_path):
    from peft import LoraConfig, get_peft_model

    folder = fixtures["llama3"]
    get_peft_model(base_model(folder), LoraConfig(r=2, target_modules=["q_proj"], use_dora=True)).save_pretrained(
        tmp_path / "dora")
    result = run_abmll("logits", "--model", folder, "--adapter", tmp_path / "dora", "--out", tmp_path / "x",
                       "--ids", "1,2,3")
    assert result.returncode == 2, result.stderr
    assert "adapter_config.json" in result.stderr and "use_dora" in result.stderr


def test_lora_on_experts_is_an_input_error(fixtures, run_abmll, tmp_path):
    """PEFT's "all-linear" on a mixture of experts also adapts the experts' and the router's weights
    (target_parameters), which abmll does not: refused by name, not half applied."""
    from peft import LoraConfig, get_peft_model

    folder = fixtures["qwen3_moe"]
    get_peft_model(base_model(folder), LoraConfig(r=2, target_modules="all-linear")).save_pretrained(tmp_path / "a")
    result = run_abmll("logits", "--model", folder, "--adapter", tmp_path / "a", "--out", tmp_path / "x",
                       "--ids", "1,2,3")
    assert result.returncode == 2, result.stderr
    assert "adapter_config.json" in result.stderr and "target_parameters" in result.stderr
