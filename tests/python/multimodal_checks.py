"""What the multimodal checkpoints' tests and the recurrent models' tests share (test_gemma3_multimodal.py,
test_mistral3_multimodal.py, test_qwen3_5.py, test_granite4.py): text logits of a vision-language model and of abmll,
compared over one sequence and a right-padded batch, random models' norms made visible, PEFT adapters made visible
(PEFT initialises lora_B to zero), and a batch of two long sequences padded either way."""
import os
import subprocess

import torch
from safetensors.torch import load_file

IDS = [2, 17, 200, 45, 3, 99, 255, 0, 128, 64, 7]
# Two sequences: one whole, one right-padded.
BATCH = [IDS, IDS[:6]]
TOLERANCE = 1e-4  # float32
# The released (and saved) name prefixes -> the modules' names in transformers 5
MODULE_NAMES = [("language_model.model.", "model.language_model."), ("vision_tower.", "model.vision_tower."),
                ("multi_modal_projector.", "model.multi_modal_projector."), ("language_model.lm_head.", "lm_head.")]


def to_module_names(tensors):
    """A checkpoint's tensors under the released names, renamed to transformers 5's module names."""
    renamed = {}
    for name, t in tensors.items():
        for old, new in MODULE_NAMES:
            if name.startswith(old):
                name = new + name[len(old):]
                break
        renamed[name] = t
    return renamed


def text_logits(model):
    """[T, V] logits of IDS alone, and [2, T, V] of the right-padded BATCH."""
    width = max(map(len, BATCH))
    ids = torch.tensor([row + [0] * (width - len(row)) for row in BATCH])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in BATCH])
    with torch.no_grad():
        return model(input_ids=torch.tensor([IDS])).logits[0], model(input_ids=ids, attention_mask=mask).logits


def abmll_logits(run_abmll, folder, out_dir, adapter=None):
    """abmll's logits of IDS alone [T, V] and of BATCH [2, T, V] (padded rows past their ends not compared), and the
    second run's log."""
    ids = lambda row: ",".join(map(str, row))  # noqa: E731
    extra = ["--adapter", adapter] if adapter else []
    out_dir.mkdir(parents=True, exist_ok=True)
    result = run_abmll("logits", "--model", folder, *extra, "--ids", ids(IDS), "--out", out_dir / "single.safetensors")
    assert result.returncode == 0, result.stderr
    result = run_abmll("logits", "--model", folder, *extra, "--ids", ids(BATCH[0]), "--ids", ids(BATCH[1]),
                       "--out", out_dir / "batch.safetensors")
    assert result.returncode == 0, result.stderr
    return load_file(str(out_dir / "single.safetensors"))["logits"], load_file(str(out_dir / "batch.safetensors"))[
        "logits"], result.stderr


def max_diff(got, want):
    """Largest difference over the single sequence and the batch's real positions."""
    single = (got[0].reshape(want[0].shape) - want[0]).abs().max().item()
    batch = max((got[1][i, :len(row)] - want[1][i, :len(row)]).abs().max().item() for i, row in enumerate(BATCH))
    return max(single, batch)


def norms_moved(model):
    """Every norm weight moved off its initial value (0 for (1 + w) norms, else 1), so that a norm left out or read as
    the other kind shows in the logits. Returns the model."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.2)
    return model


def randomised(model):
    """PEFT initialises lora_B to zero, which would hide everything: random A and B instead."""
    torch.manual_seed(7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                p.copy_(torch.randn_like(p) * 0.2)
    return model.eval()


def export_abmll_adapter(model_folder, adapter):
    """abmll's PEFT export (the hidden Catch2 case "[.peft_export]": k, o and up adapted, random factors) for the
    model in `model_folder`, written to `adapter`."""
    env = dict(os.environ, ABMLL_PEFT_MODEL=str(model_folder), ABMLL_PEFT_OUT=str(adapter))
    result = subprocess.run([os.environ["ABMLL_TESTS_BIN"], "[.peft_export]"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def abmll_adapter_in_peft(model_class, folder, run_abmll, tmp_path, modules=6, pattern="k_proj|o_proj|up_proj"):
    """abmll's adapter for the multimodal model in `folder` (export_abmll_adapter), loaded by
    PeftModel.from_pretrained on `model_class`: it must name the language model's projections only (`pattern` in its
    target_modules; `modules` of them: by default k, o and up in both layers). Returns PEFT's text logits and abmll's
    (text_logits(), abmll_logits())."""
    import json

    from peft import PeftModel

    adapter = tmp_path / "adapter"
    export_abmll_adapter(folder, adapter)
    written = json.loads((adapter / "adapter_config.json").read_text())
    assert written["target_modules"] == rf".*language_model.*\.({pattern})"
    model = PeftModel.from_pretrained(model_class.from_pretrained(folder), adapter).eval()
    adapted = [name for name, _ in model.named_modules() if name.endswith("lora_A")]
    assert len(adapted) == modules and all(".language_model." in name for name in adapted), adapted
    return text_logits(model), abmll_logits(run_abmll, folder, tmp_path / "out", adapter)


def peft_adapter_in_abmll(model_class, folder, lora_config, run_abmll, tmp_path):
    """PEFT's adapter (`lora_config`, random factors) on the multimodal model in `folder`, applied by `abmll logits
    --adapter`. Returns PEFT's text logits, abmll's (text_logits(), abmll_logits()) and how many of the adapter's
    tensors belong to the vision tower (which abmll leaves out, saying so in its log)."""
    from peft import get_peft_model
    from safetensors import safe_open

    model = randomised(get_peft_model(model_class.from_pretrained(folder), lora_config))
    model.save_pretrained(tmp_path / "adapter")
    with safe_open(str(tmp_path / "adapter/adapter_model.safetensors"), "pt") as f:
        vision = sum(1 for k in f.keys() if "vision_tower" in k)
    got = abmll_logits(run_abmll, folder, tmp_path / "out", tmp_path / "adapter")
    if vision:
        assert f"{vision} LoRA tensors of the vision tower" in got[2]
    return text_logits(model), got, vision


def long_padded_batch(padding):
    """Two random sequences of 150 and 97 tokens, the shorter right- or left-padded: ids [2, 150], mask [2, 150],
    and each sequence's ids as `abmll logits --ids` takes them."""
    torch.manual_seed(4)
    long, short = torch.randint(0, 256, (150,)), torch.randint(0, 256, (97,))
    pad = len(long) - len(short)
    zeros = torch.zeros(pad, dtype=torch.long)
    ids = torch.stack([long, torch.cat([short, zeros] if padding == "right" else [zeros, short])])
    ones = [1] * len(short)
    mask = torch.tensor([[1] * len(long), ones + [0] * pad if padding == "right" else [0] * pad + ones])
    return ids, mask, [",".join(map(str, long.tolist())), ",".join(map(str, short.tolist()))]


def abmll_padded_logits(run_abmll, folder, rows, padding, out):
    """abmll's logits [B, T, V] and attention mask [B, T] of the sequences `rows`, padded as `padding` says."""
    args = ["logits", "--model", folder, "--padding", padding, "--out", out]
    for row in rows:
        args += ["--ids", row]
    result = run_abmll(*args)
    assert result.returncode == 0, result.stderr
    got = load_file(str(out))
    return got["logits"], got["attention_mask"]
