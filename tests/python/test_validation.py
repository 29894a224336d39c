"""Validation during `abmll meta-train` (validation.* keys) on the embedded demo:
- it leaves training unchanged, writes one validation.jsonl line per validated step and keeps the best checkpoint;
- its figures are those `abmll evaluate --set eval.split=dev` gives for the checkpoint of the same step (for ABMLL
  and a point-estimate method);
- a run interrupted by SIGTERM (at a validation step) and resumed ends with the same validation.jsonl;
- validation.patience ends a run whose validations stop improving, and a resume with more patience continues it;
- tasks without a dev split, and other validation settings on resume, are reported."""
import json
import shutil
import subprocess

import pytest
import torch
from safetensors.torch import load_file

from interruption import sigterm_after_lines

LOSS_FIELDS = ["step", "outer_loss", "query_nll", "kl", "hyperprior", "support_nll_first", "support_nll_last",
               "grad_norm", "lr"]
FIGURES = ["step", "tasks", "queries", "accuracy", "ece", "nll", "brier", "mean_task_accuracy", "per_task_accuracy",
           "support_nll_before", "support_nll_after", "metric", "best"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory, abmll_bin, source_dir):
    root = tmp_path_factory.mktemp("validation")
    assert subprocess.run([abmll_bin, "make-demo", "--out", root / "demo"], capture_output=True).returncode == 0
    d = root / "demo"
    args = ["--config", str(source_dir / "configs/demo.yaml"),
            "--set", f"model.path={d / 'model'}", "--set", f"data.path={d / 'data'}",
            "--set", f"data.partition={d / 'data/partitions/demo.json'}", "--set", "outer.steps=40",
            "--set", "run.checkpoint_every=10", "--set", "eval.samples=4"]
    return {"root": root, "data": d / "data", "args": args, "bin": abmll_bin}


def meta_train(demo, out, *extra, check=True):
    result = subprocess.run([demo["bin"], "meta-train", *demo["args"], "--out", str(out), *extra],
                            capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def figures(run_dir):
    return [{k: line[k] for k in FIGURES} for line in lines(run_dir / "validation.jsonl")]


@pytest.fixture(scope="module")
def validated(demo):
    out = demo["root"] / "validated"
    meta_train(demo, out, "--set", "validation.every=15")
    return out


def test_lines_best_checkpoint_and_training_unchanged(demo, validated):
    plain = demo["root"] / "plain"
    meta_train(demo, plain)
    view = lambda run: [{k: m[k] for k in LOSS_FIELDS} for m in lines(run / "metrics.jsonl")]
    assert view(validated) == view(plain)
    a = load_file(str(validated / "checkpoints/step-40.safetensors"))
    b = load_file(str(plain / "checkpoints/step-40.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in b)

    got = figures(validated)
    assert [g["step"] for g in got] == [0, 15, 30, 40]  # step 0, every 15, and the last
    for g in got:
        assert g["tasks"] == 4 and g["queries"] == 4 * 64 and g["metric"] == "nll"
        assert sorted(g["per_task_accuracy"]) == ["after_l", "after_m", "after_t", "after_u"]
        assert 0 <= g["ece"] <= 1 and 0 <= g["accuracy"] <= 1 and g["nll"] > 0
    # Best: the lowest NLL so far, and its checkpoint kept as best.safetensors.
    best_so_far = float("inf")
    for g in got:
        assert g["best"] == (g["nll"] < best_so_far)
        best_so_far = min(best_so_far, g["nll"])
    best = min(got, key=lambda g: g["nll"])
    assert got[0]["nll"] > best["nll"]  # meta-training helped the held-out tasks
    kept = load_file(str(validated / "checkpoints/best.safetensors"))
    assert best["step"] in (30, 40)
    step_file = load_file(str(validated / f"checkpoints/step-{best['step']}.safetensors"))
    assert all(torch.equal(kept[k], step_file[k]) for k in step_file)
    best_adapter = load_file(str(validated / "adapter-best/adapter_model.safetensors"))
    final_adapter = load_file(str(validated / "adapter/adapter_model.safetensors"))
    assert best_adapter.keys() == final_adapter.keys()
    assert all(torch.equal(best_adapter[k], final_adapter[k]) for k in final_adapter) == (best["step"] == 40)
    summary = json.loads((validated / "report.json").read_text())["results"]["validation"]
    assert summary["best_step"] == best["step"] and summary["best_value"] == best["nll"]
    assert summary["last_step"] == 40 and summary["best_checkpoint"].endswith("checkpoints/best.safetensors")


@pytest.mark.parametrize("method", ["abmll", "fomaml"])
def test_figures_are_evaluate_on_the_dev_files(demo, validated, method, tmp_path):
    """The validation at step 30 against `abmll evaluate` of the step-30 checkpoint on the dev split."""
    run = validated
    if method != "abmll":
        run = demo["root"] / f"validated-{method}"
        meta_train(demo, run, "--set", f"method={method}", "--set", "validation.every=15")
    report = tmp_path / "report.json"
    result = subprocess.run([demo["bin"], "evaluate", *demo["args"], "--set", f"method={method}",
                             "--set", "eval.split=dev", "--checkpoint", str(run / "checkpoints/step-30.safetensors"),
                             "--out", str(report)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    results = json.loads(report.read_text())["results"]
    pooled = results["aggregate"]["pooled"]
    line = next(g for g in figures(run) if g["step"] == 30)
    for key in ["accuracy", "ece", "nll", "brier"]:
        print(f"{method} {key}: validation {line[key]!r}, evaluate {pooled[key]!r}")
        assert line[key] == pooled[key], key
    assert line["per_task_accuracy"] == {t["task"]: t["accuracy"] for t in results["per_task"]}


def test_sigterm_at_a_validation_step_resumes_to_the_same_file(demo, validated):
    """With a validation after every step, SIGTERM always lands on a validation step: the run saves its checkpoint
    without validating, and the resumed run validates that step first."""
    reference = demo["root"] / "every-step"
    settings = ["--set", "validation.every=1", "--set", "run.checkpoint_every=0", "--max-steps", "12"]
    meta_train(demo, reference, *settings)
    out = demo["root"] / "every-step-killed"
    code, stderr = sigterm_after_lines([demo["bin"], "meta-train", *demo["args"], "--out", out, *settings],
                                       out / "validation.jsonl", 3)
    assert code == 143, stderr
    steps_done = len(lines(out / "metrics.jsonl"))
    assert 2 <= steps_done < 12
    assert [g["step"] for g in figures(out)] == list(range(steps_done))  # the last step's validation is pending
    resumed = meta_train(demo, out, *settings, "--resume")
    assert f"validation at step {steps_done}:" in resumed.stderr
    assert figures(out) == figures(reference)
    assert load_file(str(out / "checkpoints/best.safetensors")).keys() == \
        load_file(str(reference / "checkpoints/best.safetensors")).keys()


def test_training_tasks_and_refusals(demo, tmp_path):
    out = tmp_path / "train-tasks"
    result = meta_train(demo, out, "--set", "validation.every=20", "--set", "validation.tasks=train",
                        "--set", "validation.max_tasks=3", "--set", "validation.query_size=16",
                        "--set", "validation.metric=accuracy", "--set", "validation.keep_best=false")
    got = figures(out)
    assert [g["step"] for g in got] == [0, 20, 40]
    assert all(g["tasks"] == 3 and g["queries"] == 48 and g["metric"] == "accuracy" for g in got)
    assert len({tuple(sorted(g["per_task_accuracy"])) for g in got}) == 1  # the same tasks every time
    assert not (out / "checkpoints/best.safetensors").exists()
    assert "validation every 20 steps on 3 training tasks' dev splits" in result.stderr

    # Resuming under other validation settings: allowed (validation does not change training), best chosen afresh.
    split = tmp_path / "split"
    meta_train(demo, split, "--set", "validation.every=20", "--max-steps", "20")
    resumed = meta_train(demo, split, "--set", "validation.every=20", "--set", "validation.metric=ece", "--resume")
    assert "under other validation settings; the best validation is chosen afresh" in resumed.stderr
    assert [(g["step"], g["best"]) for g in figures(split)][-1] == (40, True)

    # Held-out tasks without a dev split.
    data = tmp_path / "data"
    shutil.copytree(demo["data"], data)
    (data / "after_m" / "after_m_16_100_dev.tsv").unlink()
    bad = meta_train(demo, tmp_path / "no-dev", "--set", "validation.every=20", "--set", f"data.path={data}",
                     "--set", f"data.partition={data / 'partitions/demo.json'}", check=False)
    assert bad.returncode == 2, bad.stderr
    assert "validation.tasks: held_out: no dev split to draw validation queries from apart from the split " \
           "`evaluate` scores in task after_m" in bad.stderr
    too_many = meta_train(demo, tmp_path / "too-many", "--set", "validation.every=20",
                          "--set", "validation.query_size=1000", check=False)
    assert too_many.returncode == 2 and "dev" in too_many.stderr and "1000" in too_many.stderr, too_many.stderr
    no_validation = meta_train(demo, tmp_path / "no-validation", "--set", "validation.patience=3", check=False)
    assert no_validation.returncode == 2 and "validation.every is 0" in no_validation.stderr, no_validation.stderr


def test_patience_ends_the_run_and_more_patience_continues_it(demo, tmp_path):
    """With a learning rate too small to move float32 theta, every validation equals the first: no new best after
    step 0, so patience 2 with a validation every 5 steps ends the run at step 10."""
    out = tmp_path / "patient"
    settings = ["--set", "outer.lr=1e-30", "--set", "validation.every=5"]
    result = meta_train(demo, out, *settings, "--set", "validation.patience=2")
    assert "the 2 validations after the best one (step 0) brought no better one; the run ends at step 10" \
        in result.stderr
    assert len(lines(out / "metrics.jsonl")) == 10
    assert [(g["step"], g["best"]) for g in figures(out)] == [(0, True), (5, False), (10, False)]
    summary = json.loads((out / "report.json").read_text())["results"]
    assert summary["steps_done"] == 10 and summary["validation"]["stopped_early"] is True
    assert summary["validation"]["best_step"] == 0
    assert (out / "checkpoints/step-10.safetensors").exists()
    best_adapter = load_file(str(out / "adapter-best/adapter_model.safetensors"))
    final_adapter = load_file(str(out / "adapter/adapter_model.safetensors"))
    # Equal but for B, which moved from its zero initialisation by about the learning rate.
    assert all((best_adapter[k] - final_adapter[k]).abs().max() < 1e-25 for k in final_adapter)

    again = meta_train(demo, out, *settings, "--set", "validation.patience=2", "--resume")
    assert "the run ends at step 10" in again.stderr and len(lines(out / "metrics.jsonl")) == 10
    more = meta_train(demo, out, *settings, "--set", "validation.patience=4", "--resume")
    assert "the run ends at step 20" in more.stderr
    assert [g["step"] for g in figures(out)] == [0, 5, 10, 15, 20]


def test_posterior_mean_validation_is_evaluate_with_the_posterior_mean(demo, tmp_path):
    """validation.samples 0: the figures of `evaluate --set eval.samples=0` on the dev split, not those of the
    run's eval.samples; a resume that changes it chooses the best afresh."""
    out = tmp_path / "mean"
    meta_train(demo, out, "--set", "validation.every=10", "--set", "validation.samples=0", "--max-steps", "10")
    report = tmp_path / "report.json"
    evaluated = subprocess.run([demo["bin"], "evaluate", *demo["args"], "--set", "eval.split=dev",
                                "--set", "eval.samples=0", "--checkpoint", str(out / "checkpoints/step-10.safetensors"),
                                "--out", str(report)], capture_output=True, text=True, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr
    pooled = json.loads(report.read_text())["results"]["aggregate"]["pooled"]
    line = next(g for g in figures(out) if g["step"] == 10)
    assert {k: line[k] for k in ["accuracy", "ece", "nll", "brier"]} == \
           {k: pooled[k] for k in ["accuracy", "ece", "nll", "brier"]}
    resumed = meta_train(demo, out, "--set", "validation.every=10", "--max-steps", "20", "--resume")
    assert "under other validation settings; the best validation is chosen afresh" in resumed.stderr
