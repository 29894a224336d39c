#!/usr/bin/env python3
"""Writes configs/paper/: one abmll config per cell of the paper's comparison, plus the list of cells.

The paper (ABMLL.md) compares methods on benchmarks with two base models. Each cell (benchmark, model, method) gets
one config, configs/paper/{benchmark}/{model}-{method}.yaml, built from the tables below: the settings every cell
shares, what each benchmark changes, and the method. Every value is marked in the generated file with where it
comes from:
  paper  a value ABMLL.md reports from the paper (section and version given);
  ABML   a value of ABML (Ravi & Beatson 2019) that ABMLL.md adopts where the paper is silent;
  guess  not known from the paper: a documented choice of this project. Change it here and re-run this script.

Also written:
  configs/paper/cells.tsv                    one line per cell, read by scripts/reproduce.sh (columns in its header)
  configs/paper/partitions/unifiedqa-mcqa.json   the UnifiedQA task split (a guess, see UNIFIEDQA_MCQA below)

Paths in the configs are placeholders (models/Meta-Llama-3-8B, data/crossfit, ...): configs cannot read
environment variables, so scripts/reproduce.sh sets the real folders with --set model.path=... --set data.path=...
Run it from anywhere; it only needs Python's standard library:

  python3 scripts/paper/make_configs.py            # rewrites configs/paper/ in the source tree
  python3 scripts/paper/make_configs.py --out DIR  # writes the same files under DIR (the tests compare the two)
"""
import argparse
import json
import math
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# --- Models: the paper's two base models. `folder` is the Hugging Face folder name under reproduce.sh's --models;
# `abmll report` labels rows with it.
MODELS = [
    {"key": "llama3-8b", "folder": "Meta-Llama-3-8B"},
    {"key": "qwen2-7b", "folder": "Qwen2-7B"},
]

# --- Methods (ABMLL.md section 5). `trains`: the method whose `abmll meta-train` run gives its checkpoint (None:
# evaluated without one). abmll_icl is ABMLL's prior evaluated with demonstrations in the prompt (section 4), so it
# reuses abmll's run.
TRAINS = {
    "pretrained": None,
    "icl": None,
    "lora": "lora",
    "reptile": "reptile",
    "fomaml": "fomaml",
    "abmll": "abmll",
    "abmll_icl": "abmll",
}
ALL_METHODS = ["pretrained", "icl", "lora", "reptile", "fomaml", "abmll", "abmll_icl"]
# LegalBench and ChemBench: the paper reports them with ICL only (section 4). abmll (without demonstrations) is kept
# as a row: it costs one evaluation, the meta-training is abmll_icl's anyway.
ICL_METHODS = ["pretrained", "icl", "abmll", "abmll_icl"]

# UnifiedQA MCQA (guess): the paper's split is not known. This one follows UnifiedQA's own seen/unseen division of
# its multiple-choice datasets: meta-train on the ones UnifiedQA trained on, hold out the ones it evaluated
# out of domain. Names are the folders of UnifiedQA's release; held-out tasks without a test.tsv are scored on dev.
UNIFIEDQA_MCQA = {
    "train": ["ai2_science_elementary", "ai2_science_middle", "arc_easy", "arc_hard",
              "mctest_corrected_the_separator", "openbookqa", "race_string"],
    "test": ["commonsenseqa", "physical_iqa", "qasc", "social_iqa", "winogrande_xl"],
}

# --- Settings every cell shares: (key, value, source, note). Sources as in the module docstring.
E_MINUS_20 = math.exp(-20)
COMMON = [
    ("run.seed", 42, "guess", "reproduce.sh sets each seed with --set run.seed=S"),
    ("run.device", "auto", "guess", "GPU when present"),
    ("run.log_every", 10, "guess", ""),
    ("run.checkpoint_every", 200, "guess", ""),
    ("model.dtype", "auto", "guess", "bfloat16 on GPU; KL terms are accumulated in float32"),
    ("model.gradient_checkpointing", True, "guess", "7-8B models on one GPU"),
    ("model.max_length", 512, "guess", ""),
    ("lora.rank", 16, "guess", ""),
    ("lora.alpha", 32.0, "guess", ""),
    ("lora.rslora", False, "guess", ""),
    ("lora.dropout", 0.0, "guess", ""),
    ("lora.targets", ["q_proj", "v_proj"], "guess", "PEFT's default for Llama and Qwen2"),
    ("posterior.family", "weight", "paper", "mean B_mu A_mu, scale B_sigma A_sigma + c (ABMLL.md 2b)"),
    ("posterior.weight_scale", "linear", "paper", "S = s B_sigma A_sigma + c (ABMLL.md 2b)"),
    ("posterior.scale_floor", E_MINUS_20, "paper", "c = e^-20 (v1)"),
    ("posterior.init_scale", 1e-3, "guess", ""),
    ("posterior.hyperprior_a0", 1.0, "ABML", "precisions ~ Gamma(1, 0.01) (ABMLL.md 3)"),
    ("posterior.hyperprior_b0", 0.01, "ABML", ""),
    ("posterior.hyperprior_mean_std", 1.0, "ABML", "means ~ N(0, 1)"),
    ("data.shots", 16, "guess", "CrossFit's k per label"),
    ("data.query_size", 16, "guess", "queries per training task and episode"),
    ("data.icl_demos", 0, "guess", "ICL methods: every support example, dropped from the left past max_length"),
    ("inner.steps", 5, "paper", "K = 5 while meta-training"),
    ("inner.eval_steps", 10, "paper", "K = 10 at test time (the paper's figure)"),
    ("inner.lr", 1e-3, "guess", ""),
    ("inner.optimizer", "sgd", "guess", ""),
    ("inner.first_step_nll_only", False, "guess", "ABML takes its first step on the NLL alone"),
    ("inner.samples", 1, "guess", "Monte Carlo draws per NLL estimate while training"),
    ("outer.steps", 2000, "guess", ""),
    ("outer.tasks_per_batch", 4, "guess", ""),
    ("outer.lr", 1e-4, "guess", ""),
    ("outer.weight_decay", 0.0, "guess", ""),
    ("outer.warmup_steps", 100, "guess", ""),
    ("outer.schedule", "cosine", "guess", ""),
    ("outer.grad_clip", 1.0, "guess", ""),
    ("outer.beta", 1e-7, "paper", "KL weight (v2; v1 used 5e-10)"),
    ("outer.gamma", 1e-7, "paper", "hyperprior weight (v2 uses one value for both; v1 used 1e-6)"),
    ("outer.second_order", False, "paper", "the paper avoids second-order gradients"),
    ("outer.outer_includes_support", False, "guess", ""),
    ("eval.samples", 10, "guess", "posterior draws averaged per query"),
    ("eval.query_size", 200, "guess", "queries per held-out task; the same for every method"),
    ("eval.bins", 15, "paper", "ECE: 15 equal-width bins, max-probability confidence, L1 (ABMLL.md 6)"),
    ("eval.length_normalize", False, "guess", "options scored by summed log-likelihood"),
]

# --- Benchmarks. `data` is the folder under reproduce.sh's --data; `prepare` names a step reproduce.sh runs before
# the cells (see scripts/paper/prepare_split.py); `keys` override COMMON (same tuple form).
CROSSFIT = {"data": "crossfit", "keys": [("data.format", "crossfit", "paper", "CrossFit (ABMLL.md 7)"),
                                         ("data.crossfit_seed", 100, "guess", "first of CrossFit's seeds")]}
BENCHMARKS = [
    {"name": "crossfit-cls-23", "table": "main", "methods": ALL_METHODS, **CROSSFIT,
     "partition": ("cls-23", "paper", "train_halfhalf_test_classification (ABMLL.md 7, likely mapping)")},
    {"name": "crossfit-cls-45", "table": "main", "methods": ALL_METHODS, **CROSSFIT,
     "partition": ("cls-45", "paper", "train_classification_test_classification (ABMLL.md 7, likely mapping)")},
    {"name": "crossfit-nli", "table": "main", "methods": ALL_METHODS, **CROSSFIT,
     "partition": ("nli", "paper", "train_non_nli_test_nli (ABMLL.md 7, likely mapping)")},
    {"name": "crossfit-para", "table": "main", "methods": ALL_METHODS, **CROSSFIT,
     "partition": ("para", "paper", "train_nonparaphrase_classification_test_paraphrase (ABMLL.md 7)")},
    {"name": "unifiedqa-mcqa", "table": "main", "methods": ALL_METHODS, "data": "unifiedqa",
     "partition": ("configs/paper/partitions/unifiedqa-mcqa.json", "guess",
                   "UnifiedQA's seen / unseen multiple-choice sets; relative to the repository root"),
     "keys": [("data.format", "unifiedqa", "paper", "UnifiedQA (ABMLL.md 7)")]},
    {"name": "legalbench", "table": "icl", "methods": ICL_METHODS, "data": "legalbench", "prepare": "split",
     "partition": ("paper-split.json", "guess",
                   "written into the data folder by scripts/paper/prepare_split.py (reproduce.sh runs it)"),
     "keys": [("data.format", "jsonl", "guess", "scripts/data/legalbench_to_jsonl.py's output"),
              ("data.shots", 4, "guess", "LegalBench's train splits hold a handful of examples"),
              ("model.max_length", 2048, "guess", "legal texts are long; room for the demonstrations")]},
    {"name": "chembench", "table": "icl", "methods": ICL_METHODS, "data": "chembench", "prepare": "split",
     "partition": ("paper-split.json", "guess",
                   "written into the data folder by scripts/paper/prepare_split.py (reproduce.sh runs it)"),
     "keys": [("data.format", "jsonl", "guess", "scripts/data/chembench_to_jsonl.py's output (one task per topic)"),
              ("data.shots", 4, "guess", "as LegalBench"),
              ("model.max_length", 1024, "guess", "room for the demonstrations"),
              ("outer.tasks_per_batch", 2, "guess", "ChemBench has few topics, hence few training tasks")]},
]

# YAML sections in the order `abmll meta-train --help-config` lists them.
SECTIONS = ["run", "model", "lora", "posterior", "data", "inner", "outer", "eval"]


def yaml_value(value) -> str:
    """A YAML scalar or flow list that yaml-cpp and PyYAML both read back to `value`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:  # PyYAML reads 1e-07 as a string; 1.0e-07 as a float
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, list):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    text = str(value)
    plain = text and all(c.isalnum() or c in "-_./" for c in text) and text not in ("true", "false", "null")
    return text if plain and not text[0].isdigit() else json.dumps(text)


def cell_keys(bench: dict, model: dict, method: str) -> dict:
    """The cell's keys in order: {path: (value, source, note)}."""
    keys = {"method": (method, "", "")}
    keys["run.benchmark"] = (bench["name"], "", "row label of `abmll report`")
    keys["model.path"] = (f"models/{model['folder']}", "", "placeholder: reproduce.sh sets --set model.path=...")
    keys["data.format"] = None  # set below; listed first in its section
    keys["data.path"] = (f"data/{bench['data']}", "", "placeholder: reproduce.sh sets --set data.path=...")
    keys["data.partition"] = bench["partition"]
    for path, value, source, note in COMMON + bench["keys"]:  # a benchmark's keys replace the common ones
        keys[path] = (value, source, note)
    return keys


def render(bench: dict, model: dict, method: str) -> str:
    keys = cell_keys(bench, model, method)
    trains = TRAINS[method]
    how = (f"abmll meta-train (method {trains}), then abmll evaluate with its last checkpoint" if trains
           else "abmll evaluate only (nothing is meta-trained)")
    lines = [
        f"# Paper table '{bench['table']}', cell: benchmark {bench['name']}, model {model['folder']}, method {method}.",
        "# Generated by scripts/paper/make_configs.py from its tables; edit those and re-run it, not this file.",
        f"# Run by scripts/reproduce.sh {bench['table']}: {how}.",
        "# Sources of the values: 'paper' = reported by the paper (ABMLL.md), 'ABML' = ABML's value that ABMLL.md",
        "# adopts, 'guess' = not known from the paper (a documented choice). Unmarked lines say where the run is.",
        "",
    ]

    def line(indent: str, name: str, path: str) -> str:
        value, source, note = keys[path]
        comment = ": ".join(x for x in (source, note) if x)
        text = f"{indent}{name}: {yaml_value(value)}"
        return f"{text:<44} # {comment}" if comment else text

    lines.append(line("", "method", "method"))
    for section in SECTIONS:
        lines.append("")
        lines.append(f"{section}:")
        for path in keys:
            if path.startswith(section + "."):
                lines.append(line("  ", path.split(".", 1)[1], path))
    return "\n".join(lines) + "\n"


def cells():
    """Every cell of every table, in table order."""
    for bench in BENCHMARKS:
        for model in MODELS:
            for method in bench["methods"]:
                yield bench, model, method


def write(out: Path) -> list:
    """Writes every generated file under `out` (the configs/paper folder); returns their paths."""
    written = []

    def put(path: Path, text: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    manifest = ["# Cells of the paper tables, generated by scripts/paper/make_configs.py; read by scripts/reproduce.sh.",
                "# train: the method whose `abmll meta-train` run gives the checkpoint ('-': none);",
                "# data: folder under --data; prepare: step run on it first ('-': none, 'split': prepare_split.py).",
                "table\tbenchmark\tmodel\tmethod\tconfig\ttrain\tmodel_folder\tdata\tprepare\touter_steps\tshots"]
    for bench, model, method in cells():
        rel = Path(bench["name"]) / f"{model['key']}-{method}.yaml"
        put(out / rel, render(bench, model, method))
        keys = cell_keys(bench, model, method)
        manifest.append("\t".join([bench["table"], bench["name"], model["key"], method,
                                   f"configs/paper/{rel.as_posix()}", TRAINS[method] or "-", model["folder"],
                                   bench["data"], bench.get("prepare", "-"), str(keys["outer.steps"][0]),
                                   str(keys["data.shots"][0])]))
    put(out / "cells.tsv", "\n".join(manifest) + "\n")
    put(out / "partitions" / "unifiedqa-mcqa.json", json.dumps(UNIFIEDQA_MCQA, indent=2) + "\n")
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "configs" / "paper",
                    help="folder to write (default: configs/paper in the source tree, replaced as a whole)")
    args = ap.parse_args(argv)
    # Start from an empty folder so that a cell removed from the tables leaves no stale config behind; only a folder
    # this script wrote (it holds cells.tsv) is replaced.
    if args.out.exists() and any(args.out.iterdir()):
        if not (args.out / "cells.tsv").is_file():
            print(f"error: {args.out} is not empty and holds no cells.tsv: not replacing it", file=sys.stderr)
            return 2
        shutil.rmtree(args.out)
    written = write(args.out)
    print(f"wrote {len(written)} files under {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
