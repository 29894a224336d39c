"""The paper tables' configs and driver: configs/paper is what scripts/paper/make_configs.py writes, abmll's config
loader accepts every config with the values the file gives, scripts/reproduce.sh prints the commands it should (and
runs them, against a stand-in for abmll), refuses bad arguments with exit code 2, and scripts/paper/prepare_split.py
splits JSONL tasks as documented. No model is needed."""
import json
import math
import os
import pathlib
import shlex
import stat
import subprocess
import sys

import pytest
import yaml

METHODS = ["pretrained", "icl", "lora", "reptile", "fomaml", "abmll", "abmll_icl"]
TRAINED = {"lora", "reptile", "fomaml", "abmll"}


@pytest.fixture(scope="module")
def paper_dir(source_dir) -> pathlib.Path:
    return source_dir / "configs" / "paper"


@pytest.fixture(scope="module")
def cells(paper_dir) -> list:
    lines = [l for l in (paper_dir / "cells.tsv").read_text().splitlines() if l and not l.startswith("#")]
    header = lines[0].split("\t")
    return [dict(zip(header, l.split("\t"))) for l in lines[1:]]


def run_script(source_dir, *args, env=None, cwd=None):
    return subprocess.run(["bash", str(source_dir / "scripts" / "reproduce.sh"), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or source_dir, env=env, timeout=120)


def flatten(node, prefix=""):
    """{"outer.lr": value, ...} of a nested mapping."""
    out = {}
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def test_configs_are_what_the_generator_writes(source_dir, paper_dir, tmp_path):
    out = tmp_path / "paper"
    subprocess.run([sys.executable, str(source_dir / "scripts" / "paper" / "make_configs.py"), "--out", str(out)],
                   check=True, capture_output=True, text=True)
    generated = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    checked_in = sorted(p.relative_to(paper_dir) for p in paper_dir.rglob("*") if p.is_file())
    assert generated == checked_in, "configs/paper differs from make_configs.py's files: re-run it"
    for rel in generated:
        assert (out / rel).read_text() == (paper_dir / rel).read_text(), f"{rel}: re-run make_configs.py"


def test_generator_will_not_replace_a_foreign_folder(source_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = subprocess.run([sys.executable, str(source_dir / "scripts" / "paper" / "make_configs.py"),
                             "--out", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and (tmp_path / "notes.txt").exists()


def test_cells_cover_the_paper_comparison(cells, paper_dir):
    listed = {c["config"] for c in cells}
    on_disk = {f"configs/paper/{p.relative_to(paper_dir).as_posix()}" for p in paper_dir.rglob("*.yaml")}
    assert listed == on_disk
    by_bench = {}
    for c in cells:
        by_bench.setdefault(c["benchmark"], set()).add((c["model"], c["method"]))
    for bench in ["crossfit-cls-23", "crossfit-cls-45", "crossfit-nli", "crossfit-para", "unifiedqa-mcqa"]:
        assert by_bench[bench] == {(m, x) for m in ("llama3-8b", "qwen2-7b") for x in METHODS}, bench
    for bench in ["legalbench", "chembench"]:
        assert {"pretrained", "icl", "abmll_icl"} <= {x for _, x in by_bench[bench]}, bench
    for c in cells:  # a method that needs a checkpoint names a training run of its own benchmark and model
        assert c["train"] == ("abmll" if c["method"] == "abmll_icl" else c["method"] if c["method"] in TRAINED
                              else "-")
        if c["train"] != "-":
            assert any(o["benchmark"] == c["benchmark"] and o["model"] == c["model"] and o["method"] == c["train"]
                       for o in cells)


def loader_cover(cells) -> list:
    """Cells whose configs, between them, hold every distinct value of every config: one per benchmark, methods and
    models taken in turn so that each appears. Within a benchmark the configs differ only in `method` and
    `model.path` (test_configs_differ_only_in_method_and_model checks it), and the loader checks each key's value
    on its own, so abmll accepting these accepts them all, at a few seconds instead of a minute of start-ups."""
    chosen, benchmarks = [], []
    for c in cells:
        if c["benchmark"] not in benchmarks:
            benchmarks.append(c["benchmark"])
    methods = sorted({c["method"] for c in cells}, key=METHODS.index)
    models = sorted({c["model"] for c in cells})
    wanted = {("method", m) for m in methods} | {("model", m) for m in models}
    for i, bench in enumerate(benchmarks):
        own = [c for c in cells if c["benchmark"] == bench]
        # the first not yet covered method and model of this benchmark, else any
        own.sort(key=lambda c: (("method", c["method"]) not in wanted, ("model", c["model"]) not in wanted,
                                METHODS.index(c["method"])))
        chosen.append(own[0])
        wanted -= {("method", own[0]["method"]), ("model", own[0]["model"])}
    for c in cells:  # whatever the rotation missed
        if ("method", c["method"]) in wanted or ("model", c["model"]) in wanted:
            chosen.append(c)
            wanted -= {("method", c["method"]), ("model", c["model"])}
    return chosen


def test_configs_differ_only_in_method_and_model(source_dir, cells):
    first = {}
    for c in cells:
        values = flatten(yaml.safe_load((source_dir / c["config"]).read_text()))
        assert values["method"] == c["method"] and values["model.path"] == f"models/{c['model_folder']}"
        rest = {k: v for k, v in values.items() if k not in ("method", "model.path")}
        assert rest == first.setdefault(c["benchmark"], rest), c["config"]


@pytest.mark.parametrize("every", [False, True] if os.environ.get("ABMLL_PAPER_CONFIGS_ALL") else [False])
def test_configs_load_with_their_values(run_abmll, source_dir, cells, every):
    """abmll's loader takes the configs' values unchanged (ABMLL_PAPER_CONFIGS_ALL=1: every file, not the cover)."""
    chosen = cells if every else loader_cover(cells)
    assert {c["method"] for c in chosen} == {c["method"] for c in cells}
    assert {c["benchmark"] for c in chosen} == {c["benchmark"] for c in cells}
    for c in chosen:
        command = "meta-train" if c["method"] in TRAINED else "evaluate"
        result = run_abmll(command, "--config", c["config"], "--print-config", cwd=source_dir)
        assert result.returncode == 0, f"{c['config']}: {result.stderr}"
        resolved = flatten(yaml.safe_load(result.stdout))
        given = flatten(yaml.safe_load((source_dir / c["config"]).read_text()))
        for key, value in given.items():  # every value of the file reaches the resolved config unchanged
            if isinstance(value, float):
                assert math.isclose(resolved[key], value, rel_tol=1e-12), f"{c['config']}: {key}"
            else:
                assert resolved[key] == value, f"{c['config']}: {key}"
        assert resolved["method"] == c["method"] and resolved["run.benchmark"] == c["benchmark"]
        assert resolved["model.path"] == f"models/{c['model_folder']}"
        # The paper's known values (ABMLL.md).
        assert resolved["posterior.family"] == "weight" and resolved["posterior.weight_scale"] == "linear"
        assert math.isclose(resolved["posterior.scale_floor"], math.exp(-20), rel_tol=1e-12)
        assert resolved["outer.beta"] == resolved["outer.gamma"] == 1e-7
        assert resolved["inner.steps"] == 5 and resolved["inner.eval_steps"] == 10
        assert resolved["eval.bins"] == 15 and resolved["outer.second_order"] is False
        assert resolved["outer.steps"] == int(c["outer_steps"]) and resolved["data.shots"] == int(c["shots"])


def test_print_config_applies_overrides(run_abmll, source_dir):
    result = run_abmll("evaluate", "--config", "configs/paper/crossfit-nli/qwen2-7b-abmll.yaml", "--print-config",
                       "--set", "model.path=/m/Qwen2-7B", "--set", "run.seed=7", cwd=source_dir)
    assert result.returncode == 0, result.stderr
    resolved = flatten(yaml.safe_load(result.stdout))
    assert resolved["model.path"] == "/m/Qwen2-7B" and resolved["run.seed"] == 7
    bad = run_abmll("evaluate", "--config", "configs/paper/crossfit-nli/qwen2-7b-abmll.yaml", "--print-config",
                    "--set", "outer.betta=1", cwd=source_dir)
    assert bad.returncode == 2 and "outer.beta" in bad.stderr


def make_inputs(root: pathlib.Path, data=("crossfit", "unifiedqa")) -> tuple:
    models, datas = root / "models", root / "data"
    for name in ("Meta-Llama-3-8B", "Qwen2-7B"):
        (models / name).mkdir(parents=True)
    for name in data:
        (datas / name).mkdir(parents=True)
    return models, datas


def test_dry_run_prints_the_commands(source_dir, run_abmll, tmp_path):
    models, data = make_inputs(tmp_path)
    out = tmp_path / "out"
    result = run_script(source_dir, "main", "--models", models, "--data", data, "--out", out, "--seeds", "1 2",
                        "--only", "cls-45/llama3-8b/", "--set", "run.device=cpu", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # pretrained, icl, lora, reptile, fomaml, abmll (+ abmll_icl on its checkpoint), per seed; then the table.
    assert len(lines) == 12 + 1
    assert lines[-1] == shlex.join([str(source_dir / "build" / "abmll"), "report", str(out / "crossfit-cls-45"),
                                    "--out", str(out / "main.md"), "--csv", str(out / "main.csv"),
                                    "--plots", str(out / "main-plots"), "--baseline", "lora"])
    abmll_jobs = [l for l in lines if "abmll-train" in l and "meta-train" in l]
    assert len(abmll_jobs) == 2
    job = abmll_jobs[0]
    run = out / "crossfit-cls-45" / "llama3-8b" / "seed-1" / "abmll-train"
    ckpt = run / "checkpoints" / "step-2000.safetensors"
    assert job.count(" meta-train ") == 1 and job.count(" evaluate ") == 2
    assert f"--config configs/paper/crossfit-cls-45/llama3-8b-abmll.yaml" in job
    assert f"--config configs/paper/crossfit-cls-45/llama3-8b-abmll_icl.yaml" in job
    assert f"--out {run} --resume" in job and job.count(f"--checkpoint {ckpt}") == 2
    assert f"--set model.path={models / 'Meta-Llama-3-8B'} --set data.path={data / 'crossfit'} --set run.seed=1 " \
           f"--set run.device=cpu" in job
    pretrained = [l for l in lines if "llama3-8b-pretrained.yaml" in l]
    assert len(pretrained) == 2 and all("--checkpoint" not in l and "meta-train" not in l for l in pretrained)
    # The printed abmll invocations are ones abmll accepts: replay seed 1's pretrained and abmll jobs with
    # --print-config instead of running them.
    for line in [pretrained[0], job]:
        for part in line.replace("{", "").replace("}", "").split("&&"):
            words = shlex.split(part.split("||")[1].strip().rstrip(";"))
            keep, skip = [], False
            for w in words[1:]:
                if skip:
                    skip = False
                elif w in ("--out", "--checkpoint"):
                    skip = True
                elif w != "--resume":
                    keep.append(w)
            replay = run_abmll(*keep, "--print-config", cwd=source_dir)
            assert replay.returncode == 0, f"{part}: {replay.stderr}"
            resolved = flatten(yaml.safe_load(replay.stdout))
            assert resolved["run.device"] == "cpu" and resolved["run.seed"] == 1


def test_dry_run_of_cells_without_the_baseline_reports_no_paired_differences(source_dir, tmp_path):
    """A selection without lora (an ablation of ABMLL alone, as the README describes) renders its table without
    --baseline lora, which would find no lora run to compare with."""
    models, data = make_inputs(tmp_path)
    out = tmp_path / "ablation"
    result = run_script(source_dir, "main", "--models", models, "--data", data, "--out", out, "--seeds", "1",
                        "--only", "cls-45/llama3-8b/abmll$", "--set", "outer.beta=1e-16", "--set",
                        "outer.gamma=1e-16", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and "--set outer.beta=1e-16 --set outer.gamma=1e-16" in lines[0]
    assert lines[-1].endswith(f"--plots {out / 'main-plots'}") and "--baseline" not in lines[-1]


def test_dry_run_with_the_best_checkpoint(source_dir, run_abmll, tmp_path):
    """--checkpoint best: meta-training validates (every 100 steps unless a --set says otherwise), evaluations read
    checkpoints/best.safetensors, and the job still skips a finished training run by its last checkpoint."""
    models, data = make_inputs(tmp_path)
    out = tmp_path / "out"
    common = ["main", "--models", models, "--data", data, "--out", out, "--seeds", "1",
              "--only", "cls-45/llama3-8b/abmll$", "--dry-run", "--checkpoint", "best"]
    result = run_script(source_dir, *common)
    assert result.returncode == 0, result.stderr
    job = next(l for l in result.stdout.splitlines() if " meta-train " in l)
    run = out / "crossfit-cls-45" / "llama3-8b" / "seed-1" / "abmll-train"
    train, evaluate = job.split("&&", 1)
    assert f"test -f {run / 'checkpoints' / 'step-2000.safetensors'}" in train
    assert "--set validation.every=100" in train and "validation.every" not in evaluate
    assert job.count(f"--checkpoint {run / 'checkpoints' / 'best.safetensors'}") == 1
    # The meta-train command is one abmll accepts, with validation on.
    words = shlex.split(train.split("||")[1].strip().rstrip("}").strip().rstrip(";"))
    keep = [w for i, w in enumerate(words[1:], 1) if w not in ("--out", "--resume") and words[i - 1] != "--out"]
    replay = run_abmll(*keep, "--print-config", cwd=source_dir)
    assert replay.returncode == 0, replay.stderr
    assert flatten(yaml.safe_load(replay.stdout))["validation.every"] == 100

    given = run_script(source_dir, *common, "--set", "validation.every=25")
    assert given.returncode == 0, given.stderr
    job = next(l for l in given.stdout.splitlines() if " meta-train " in l)
    assert "validation.every=100" not in job and "--set validation.every=25" in job
    bad = run_script(source_dir, *common[:-1], "newest")
    assert bad.returncode == 2 and "--checkpoint: expected last or best, got 'newest'" in bad.stderr


def test_dry_run_icl_prepares_the_split_and_slurm(source_dir, tmp_path):
    models, data = make_inputs(tmp_path, data=("legalbench", "chembench"))
    out = tmp_path / "out"
    result = run_script(source_dir, "icl", "--models", models, "--data", data, "--out", out, "--seeds", "5",
                        "--only", "legalbench/qwen2-7b", "--slurm", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == shlex.join(["python3", "scripts/paper/prepare_split.py", "--data", str(data / "legalbench"),
                                   "--out", str(out / "data" / "legalbench"), "--shots", "4"])
    jobs = [l for l in lines if "abmll" in l and not l.startswith(("sbatch", "#"))]
    assert len(jobs) == 3  # pretrained, icl, and abmll's run evaluated as abmll and abmll_icl
    assert all(f"--set data.path={out / 'data' / 'legalbench'}" in j for j in jobs)
    sbatch = [l for l in lines if l.startswith("sbatch")]
    assert len(sbatch) == 2
    assert "--array=1-3" in sbatch[0] and sbatch[0].endswith(
        f"scripts/slurm/array.sbatch {out / 'slurm' / 'icl-jobs.txt'}")
    assert "--dependency=afterany:" in sbatch[1] and "report" in sbatch[1]


def test_bad_arguments_exit_2(source_dir, tmp_path):
    models, data = make_inputs(tmp_path)
    good = ["--models", models, "--data", data, "--dry-run"]
    cases = [
        ([], "missing TABLE"),
        (["tables", *good], "unknown table 'tables'"),
        (["main", "--bogus", *good], "unknown option '--bogus'"),
        (["main", "--seeds", "1 x", *good], "--seeds: 'x'"),
        (["main", "--set", "outer.lr", *good], "expected KEY=VALUE"),
        (["main", "--only", "no-such-cell", *good], "no cell of table 'main'"),
        (["main", "--models", tmp_path / "nowhere", "--data", data, "--dry-run"], "Meta-Llama-3-8B"),
        (["icl", *good], "legalbench"),  # icl needs data/legalbench and data/chembench
        (["main", "--data"], "--data needs a value"),
    ]
    for args, message in cases:
        result = run_script(source_dir, *args)
        assert result.returncode == 2, f"{args}: {result.returncode} {result.stderr}"
        assert message in result.stderr, f"{args}: {result.stderr}"
    assert run_script(source_dir, "--help").returncode == 0


STAND_IN = """#!/usr/bin/env python3
# Stands in for abmll: records each call, writes what the real command would leave behind.
import json, os, pathlib, sys
args = sys.argv[1:]
with open(os.environ["CALLS"], "a") as f:
    f.write(json.dumps(args) + "\\n")
def after(flag):
    return pathlib.Path(args[args.index(flag) + 1])
if args[0] == "meta-train":
    if os.environ.get("FAIL_TRAIN") and "qwen2-7b" in " ".join(args):
        sys.exit(1)
    steps = [a.split("=", 1)[1] for a in args if a.startswith("outer.steps=")] or ["2000"]
    ckpt = after("--out") / "checkpoints" / f"step-{steps[-1]}.safetensors"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_text("")
elif args[0] in ("evaluate", "report"):
    after("--out").parent.mkdir(parents=True, exist_ok=True)
    after("--out").write_text("{}")
"""


def test_runs_jobs_resumes_and_reports_failures(source_dir, tmp_path):
    models, data = make_inputs(tmp_path)
    stand_in = tmp_path / "abmll"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / "calls.jsonl"
    env = dict(os.environ, CALLS=str(calls))
    args = ["main", "--models", models, "--data", data, "--out", tmp_path / "out", "--seeds", "3",
            "--only", "cls-23/.*/(abmll|pretrained)", "--abmll", stand_in, "--set", "outer.steps=7"]

    result = run_script(source_dir, *args, env=env)
    assert result.returncode == 0, result.stderr
    made = [json.loads(l) for l in calls.read_text().splitlines()]
    assert [c[0] for c in made].count("meta-train") == 2          # one abmll run per model
    assert [c[0] for c in made].count("evaluate") == 6            # pretrained, abmll, abmll_icl per model
    assert made[-1][0] == "report" and (tmp_path / "out" / "main.md").exists()
    evaluated = [c for c in made if c[0] == "evaluate" and "--checkpoint" in c]
    assert all(c[c.index("--checkpoint") + 1].endswith("abmll-train/checkpoints/step-7.safetensors")
               for c in evaluated)

    calls.unlink()  # everything done: a second run only renders the table
    result = run_script(source_dir, *args, env=env)
    assert result.returncode == 0, result.stderr
    assert [json.loads(l)[0] for l in calls.read_text().splitlines()] == ["report"]

    calls.unlink()  # a failing job: the others still run, the table is written, exit 1 names the job
    args[args.index("--out") + 1] = tmp_path / "out2"
    result = run_script(source_dir, *args, env=dict(env, FAIL_TRAIN="1"))
    assert result.returncode == 1
    assert "crossfit-cls-23/qwen2-7b/abmll/seed-3" in result.stderr
    made = [json.loads(l)[0] for l in calls.read_text().splitlines()]
    assert made.count("evaluate") == 4 and made[-1] == "report"   # llama's 3, qwen's pretrained


def test_prepare_split(source_dir, tmp_path):
    src = tmp_path / "tasks"

    def task(name, train, test, answers=2):
        for split, n in (("train", train), ("test", test)):
            if n:
                (src / name).mkdir(parents=True, exist_ok=True)
                rows = [{"input": f"{split} {i}", "output": f"a{i % answers}"} for i in range(n)]
                (src / name / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    for name in ["t0", "t1", "t2", "t3", "t4"]:
        task(name, 5, 20)
    task("few", 2, 20)                    # too few support examples to be held out
    task("free", 100, 0, answers=100)     # generation: not scorable, so never held out
    (src / "pool.jsonl").write_text("".join(json.dumps({"input": f"q{i}", "output": "x", "options": ["x", "y"]})
                                            + "\n" for i in range(10)))
    out = tmp_path / "view"
    script = source_dir / "scripts" / "paper" / "prepare_split.py"
    result = subprocess.run([sys.executable, str(script), "--data", str(src), "--out", str(out), "--shots", "4"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    split = json.loads((out / "paper-split.json").read_text())
    # Eligible in sorted order: pool, t0, t1, t2, t3, t4; every 4th from the first is held out.
    assert split == {"train": ["few", "free", "t0", "t1", "t2", "t4"], "test": ["pool", "t3"]}
    assert (out / "t3").is_symlink() and (out / "pool.jsonl").is_symlink()
    assert len((out / "t0.jsonl").read_text().splitlines()) == 25  # a training task: train and test in one pool
    again = subprocess.run([sys.executable, str(script), "--data", str(src), "--out", str(out), "--shots", "4"],
                           capture_output=True, text=True)
    assert again.returncode == 0 and json.loads((out / "paper-split.json").read_text()) == split
    none = subprocess.run([sys.executable, str(script), "--data", str(tmp_path / "missing"), "--out", str(out)],
                          capture_output=True, text=True)
    assert none.returncode == 2
