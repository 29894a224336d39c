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
    assert len(partition["train"]) == 16 and len(partition["test"]) == 4
    assert not set(partition["train"]) & set(partition["test"])
    task = partition["test"][0]
    lines = (a / "data" / task / f"{task}_16_100_test.tsv").read_text().splitlines()
    labels = [line.split("\t")[1] for line in lines]
    assert len(lines) == 64 and labels.count("yes") == labels.count("no")
    threshold = task.removeprefix("after_")
    for line in lines:
        text, answer = line.split("\t")
        letter = text.removeprefix("letter: ")
        assert len(letter) == 1 and (letter > threshold) == (answer == "yes"), line
    # The answers are one token each, so summed log-likelihoods do not favour the shorter one.
    assert len(tok.encode(" yes", add_special_tokens=False).ids) == 1
    assert len(tok.encode(" no", add_special_tokens=False).ids) == 1


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


def test_demo_pipeline_writes_the_table(tmp_path, source_dir, abmll_bin):
    """scripts/demo_pipeline.sh, shortened (2 meta-training steps, one seed): every method trains or evaluates, and
    the table, reports, predictions and reliability diagrams are written and well-formed."""
    import csv
    import subprocess

    out = tmp_path / "demo"
    result = subprocess.run([source_dir / "scripts/demo_pipeline.sh", abmll_bin, out, "--steps", "2", "--seeds", "0"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    methods = ["pretrained", "icl", "lora (from scratch)", "lora", "lora (MC dropout)", "reptile", "fomaml", "abmll",
               "abmll_icl"]
    text = (out / "table.md").read_text()
    assert result.stdout.splitlines() == text.splitlines()  # the table is also printed
    table, paired = text.split("\n## Paired differences from lora\n")
    table = table.splitlines()
    assert table[0].startswith("| benchmark | model | method | seeds | accuracy (%) | ECE |")
    assert [row.split(" | ")[2] for row in table[2:]] == methods
    paired_rows = [line for line in paired.splitlines() if line.startswith("| demo |")]
    assert [row.split(" | ")[2] for row in paired_rows] == [m for m in methods if m != "lora"]
    assert [r["method"] for r in json.loads((out / "table.paired.json").read_text())["rows"]] == \
        [m for m in methods if m != "lora"]
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert [r["method"] for r in rows] == methods
    for r in rows:
        assert r["benchmark"] == "demo" and r["model"] == "model" and r["seeds"] == "1"
        assert 0 <= float(r["accuracy_mean"]) <= 1 and 0 <= float(r["ece_mean"]) <= 1
    for name in ["pretrained", "icl", "lora-scratch", "lora", "lora-mc", "reptile", "fomaml", "abmll", "abmll_icl"]:
        folder = out / "eval" / f"{name}-seed0"
        report = json.loads((folder / "report.json").read_text())
        assert report["command"] == "evaluate" and report["results"]["n_tasks"] == 4
        n = sum(1 for _ in (folder / "predictions.jsonl").open())
        assert n == report["results"]["aggregate"]["pooled"]["n"] == 4 * 64
        assert (folder / "reliability.svg").read_text().rstrip().endswith("</svg>")
    for method in ["abmll", "fomaml", "reptile", "lora", "lora-dropout"]:
        assert len((out / "train" / f"{method}-seed0/metrics.jsonl").read_text().splitlines()) == 2
    predictions = [json.loads(line) for line in (out / "predict/after_l/predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 26 and all("label" not in p and p["mutual_information"] >= 0 for p in predictions)
    assert [p["options"] for p in predictions] == [["no", "yes"]] * 26
    figure = json.loads((out / "plots/reliability-demo-model.json").read_text())
    assert [c["method"] for c in figure["curves"]] == methods
    assert (out / "plots/reliability-demo-model.svg").read_text().rstrip().endswith("</svg>")
