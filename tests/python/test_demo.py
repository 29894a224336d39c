"""The embedded demo's pieces: `abmll make-demo` writes a model folder that transformers and tokenizers load and
that abmll computes exactly as transformers does, tasks the readers accept, and a short meta-training run of
configs/demo.yaml completes."""
import json

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM


def test_make_demo_is_deterministic_and_loads_in_the_references(run_abmll, tmp_path):
    for name in ("a", "b"):
        result = run_abmll("make-demo", "--out", tmp_path / name, "--seed", "5")
        assert result.returncode == 0, result.stderr
    a, b = tmp_path / "a", tmp_path / "b"
    for rel in ["model/model.safetensors", "model/tokenizer.json", "model/config.json",
                "data/partitions/demo.json"]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    other = run_abmll("make-demo", "--out", tmp_path / "c", "--seed", "6")
    assert other.returncode == 0
    assert (tmp_path / "c/model/model.safetensors").read_bytes() != (a / "model/model.safetensors").read_bytes()

    tok = Tokenizer.from_file(str(a / "model/tokenizer.json"))
    text = "letters: a b c d e f"
    ids = tok.encode(text).ids
    ours = run_abmll("tokenize", "--model", a / "model", "--text", text)
    assert json.loads(ours.stdout) == ids
    assert ids[0] == 256 and tok.decode(ids) == text

    model = AutoModelForCausalLM.from_pretrained(a / "model", torch_dtype=torch.float32).eval()
    with torch.no_grad():
        want = model(input_ids=torch.tensor([ids])).logits[0]
    out = tmp_path / "logits.safetensors"
    result = run_abmll("logits", "--model", a / "model", "--text", text, "--out", out)
    assert result.returncode == 0, result.stderr
    assert (load_file(str(out))["logits"] - want).abs().max().item() <= 1e-4

    partition = json.loads((a / "data/partitions/demo.json").read_text())
    assert len(partition["train"]) == 12 and len(partition["test"]) == 4
    assert not set(partition["train"]) & set(partition["test"])
    lines = (a / "data" / partition["test"][0] / f"{partition['test'][0]}_16_100_test.tsv").read_text().splitlines()
    labels = [line.split("\t")[1] for line in lines]
    assert len(lines) == 64 and labels.count("yes") == labels.count("no")
    key = partition["test"][0][-1]
    assert all((key in line.split("\t")[0].split(": ")[1].split()) == (line.endswith("yes")) for line in lines)


def test_demo_config_runs_a_few_steps(run_abmll, tmp_path, source_dir):
    assert run_abmll("make-demo", "--out", tmp_path / "demo").returncode == 0
    result = run_abmll("meta-train", "--config", source_dir / "configs/demo.yaml", "--max-steps", "3",
                       "--set", f"model.path={tmp_path / 'demo/model'}", "--set", f"data.path={tmp_path / 'demo/data'}",
                       "--set", f"data.partition={tmp_path / 'demo/data/partitions/demo.json'}",
                       "--out", tmp_path / "run", timeout=300)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "run/metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3
    assert (tmp_path / "run/adapter/adapter_model.safetensors").exists()
