"""`abmll predict` on the embedded demo: predictions for a held-out task's test examples, written as a user's own
JSONL queries, against what `abmll evaluate` reports for the same examples (every method that predicts: the same
adaptation, draws and prompts, so the same probabilities); the uncertainty fields against their formulas; queries
without answers and with options of their own; `abmll calibrate` on the output; and refusals (exit code 2) of an
adapted file or queries that do not fit; an interrupted prediction resumed to the uninterrupted output; and
`evaluate --save-adapted` writing what `adapt` writes."""
import json
import math
import subprocess

import pytest
import torch
from safetensors.torch import load_file, save_file

from interruption import sigterm_after_lines

TASK = "after_l"


@pytest.fixture(scope="module")
def demo(tmp_path_factory, abmll_bin, source_dir):
    root = tmp_path_factory.mktemp("predict")
    assert subprocess.run([abmll_bin, "make-demo", "--out", root / "demo"], capture_output=True).returncode == 0
    sets = ["--config", source_dir / "configs/demo.yaml", "--set", f"model.path={root / 'demo/model'}",
            "--set", f"data.path={root / 'demo/data'}",
            "--set", f"data.partition={root / 'demo/data/partitions/demo.json'}"]
    checkpoints = {}
    for method in ("abmll", "lora"):
        out = root / f"run-{method}"
        train = subprocess.run([abmll_bin, "meta-train", *sets, "--set", f"method={method}", "--max-steps", "3",
                                "--out", out], capture_output=True, text=True, timeout=300)
        assert train.returncode == 0, train.stderr
        checkpoints[method] = out / "checkpoints/step-3.safetensors"
    # The held-out task's test file as a user's queries: input and answer, the options left to the task.
    queries = root / "queries.jsonl"
    with open(queries, "w") as f:
        for line in (root / f"demo/data/{TASK}/{TASK}_16_100_test.tsv").read_text().splitlines():
            text, answer = line.split("\t")[:2]
            f.write(json.dumps({"input": text, "output": answer}) + "\n")
    return {"root": root, "sets": sets, "checkpoints": checkpoints, "queries": queries}


def adapt(run_abmll, demo, method, *extra, name=None):
    out = demo["root"] / f"adapt-{name or method}"
    if not out.exists():
        trained = "abmll" if method == "abmll_icl" else method
        result = run_abmll("adapt", *demo["sets"], "--set", f"method={method}", "--checkpoint",
                           demo["checkpoints"][trained], "--task", TASK, "--out", out, *extra, timeout=300)
        assert result.returncode == 0, result.stderr
    return out


def predict(run_abmll, demo, name, *args):
    out = demo["root"] / name
    result = run_abmll("predict", *demo["sets"], *args, "--out", out, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    return lines, json.loads((out / "report.json").read_text())["results"]


def entropy(probs):
    return -sum(p * math.log(p) for p in probs if p > 0)


# lora-mc: lora adapted with its dropout on and scored by MC dropout (4 forwards with their own masks).
MC_DROPOUT = ["--set", "lora.dropout=0.3", "--set", "eval.mc_dropout=true", "--set", "eval.samples=4"]


@pytest.mark.parametrize("name", ["abmll", "abmll_icl", "lora", "icl", "lora-mc"])
def test_predictions_equal_evaluate(run_abmll, demo, name):
    """The task's test examples predicted as queries get evaluate's probabilities for them, to the last digit."""
    method = "lora" if name == "lora-mc" else name
    method_args = ["--set", f"method={method}", *(MC_DROPOUT if name == "lora-mc" else [])]
    if method == "icl":
        predicted = ["--task", TASK]
        checkpoint = []
    else:
        predicted = ["--adapted", adapt(run_abmll, demo, method, *method_args[2:], name=name)]
        checkpoint = ["--checkpoint", demo["checkpoints"]["abmll" if method == "abmll_icl" else method]]
    lines, report = predict(run_abmll, demo, f"predict-{name}", *method_args, *predicted,
                            "--input", demo["queries"])
    out = demo["root"] / f"evaluate-{name}/report.json"
    result = run_abmll("evaluate", *demo["sets"], *method_args, *checkpoint, "--out", out, timeout=300)
    assert result.returncode == 0, result.stderr
    evaluated = [json.loads(line) for line in (out.parent / "predictions.jsonl").read_text().splitlines()]
    evaluated = [e for e in evaluated if e["task"] == TASK]
    per_task = next(t for t in json.loads(out.read_text())["results"]["per_task"] if t["task"] == TASK)

    assert len(lines) == len(evaluated) == 64
    largest = max(abs(a - b) for line, e in zip(lines, evaluated) for a, b in zip(line["probs"], e["probs"]))
    print(f"{name}: largest difference from evaluate's probabilities {largest:.3g}")
    assert largest <= 1e-12
    for n, (line, e) in enumerate(zip(lines, evaluated), start=1):
        assert line["line"] == n and e["source"].endswith(f":{n}")
        assert line["label"] == e["label"] and line["options"] == ["no", "yes"]
        assert line["option_loglik"] == pytest.approx(e["option_loglik"], abs=1e-12)
        best = max(range(2), key=lambda k: (line["probs"][k], -k))
        assert line["prediction"] == best and line["answer"] == line["options"][best]
        assert line["confidence"] == max(line["probs"]) and line["correct"] == (best == line["label"])
        assert line["entropy"] == pytest.approx(entropy(line["probs"]), abs=1e-12)
        assert line["mutual_information"] == pytest.approx(line["entropy"] - line["expected_entropy"], abs=1e-12)
        assert line["mutual_information"] >= 0
        if name in ("lora", "icl"):  # one adapter, nothing to disagree
            assert line["mutual_information"] == 0
    assert report["queries"] == report["labelled"] == 64 and report["task"] == TASK and report["held_out"]
    assert report["metrics"]["accuracy"] == pytest.approx(per_task["accuracy"], abs=1e-12)
    assert report["metrics"]["ece"] == pytest.approx(per_task["ece"], abs=1e-12)
    if method in ("abmll_icl", "icl"):
        assert report["mean_demos"] > 0
    # The draws disagree somewhere under the posterior, and the masks under MC dropout.
    if method.startswith("abmll"):
        assert report["samples"] == 10 and max(line["mutual_information"] for line in lines) > 0
    if name == "lora-mc":
        assert max(line["mutual_information"] for line in lines) > 0

    # calibrate reads the output and agrees with the report's metrics.
    calibrated = demo["root"] / f"calibrate-{name}.json"
    result = run_abmll("calibrate", "--predictions", demo["root"] / f"predict-{name}/predictions.jsonl",
                       "--out", calibrated)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(calibrated.read_text())
    metrics = metrics.get("results", metrics)
    assert metrics["ece"] == pytest.approx(report["metrics"]["ece"], abs=1e-12)


def test_queries_without_answers_and_with_their_own_options(run_abmll, demo):
    queries = demo["root"] / "mixed.jsonl"
    queries.write_text("\n".join(json.dumps(q) for q in [
        {"input": "letter: l"},
        {"input": "letter: q", "output": "no"},
        {"input": "letter: a", "options": ["yes", "no", "maybe"]},
    ]) + "\n")
    lines, report = predict(run_abmll, demo, "predict-mixed", "--adapted", adapt(run_abmll, demo, "abmll"),
                            "--input", queries)
    assert [line["line"] for line in lines] == [1, 2, 3]
    assert "label" not in lines[0] and "correct" not in lines[0] and lines[1]["label"] == 0
    assert lines[2]["options"] == ["yes", "no", "maybe"] and len(lines[2]["probs"]) == 3
    for line in lines:
        assert sum(line["probs"]) == pytest.approx(1, abs=1e-12)
    assert report["queries"] == 3 and report["labelled"] == 1 and report["metrics"]["n"] == 1

    # With the posterior mean (eval.samples 0) there is one adapter and no disagreement.
    lines, report = predict(run_abmll, demo, "predict-mean", "--adapted", adapt(run_abmll, demo, "abmll"),
                            "--set", "eval.samples=0", "--input", queries)
    assert report["samples"] == 0 and all(line["mutual_information"] == 0 for line in lines)


def test_refusals(run_abmll, demo):
    adapted = adapt(run_abmll, demo, "abmll")
    queries = demo["queries"]

    def refused(*args):
        result = run_abmll("predict", *demo["sets"], *args, "--out", demo["root"] / "refused", timeout=120)
        assert result.returncode == 2, result.stderr
        return result.stderr

    phi = str(adapted / "phi.safetensors")
    assert "lora.rank" in refused("--set", "lora.rank=2", "--adapted", adapted, "--input", queries)
    assert phi in refused("--set", "lora.rank=2", "--adapted", adapted, "--input", queries)
    assert "posterior.family" in refused("--set", "posterior.family=weight", "--adapted", adapted, "--input", queries)
    assert "lora.alpha" in refused("--set", "lora.alpha=3", "--adapted", adapted, "--input", queries)
    assert "lora.targets" in refused("--set", "lora.targets=[q_proj]", "--adapted", adapted, "--input", queries)
    assert "method: abmll" in refused("--set", "method=lora", "--adapted", adapted, "--input", queries)
    assert "run `abmll adapt`" in refused("--input", queries)
    assert "after_m" in refused("--adapted", adapted, "--task", "after_m", "--input", queries)
    assert "no such task" in refused("--set", "method=icl", "--task", "after_zz", "--input", queries)

    # A phi with a value that is not finite.
    tensors = load_file(phi)
    name = sorted(tensors)[0]
    tensors[name][0, 0] = float("nan")
    broken = demo["root"] / "broken"
    broken.mkdir(exist_ok=True)
    with open(phi, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    save_file(tensors, str(broken / "phi.safetensors"), metadata=header["__metadata__"])
    message = refused("--adapted", broken, "--input", queries)
    assert name in message and "not finite" in message

    # Queries: a line that is not JSON, an answer that is not an option.
    bad = demo["root"] / "bad.jsonl"
    bad.write_text('{"input": "letter: a"}\n{"input": "letter: b"\n')
    assert f"{bad}:2" in refused("--adapted", adapted, "--input", bad)
    bad.write_text('{"input": "letter: a", "output": "perhaps"}\n')
    assert f"{bad}:1" in refused("--adapted", adapted, "--input", bad)


def test_interrupted_prediction_resumes_to_the_uninterrupted_output(run_abmll, demo, abmll_bin):
    """SIGTERM between chunks: the scored chunks stay recorded and the command exits 143 writing nothing else;
    --resume scores the rest and writes, to the last digit, what an uninterrupted run writes."""
    adapted = adapt(run_abmll, demo, "abmll")
    queries = demo["root"] / "many.jsonl"
    queries.write_text(demo["queries"].read_text() * 10)  # 640 queries
    slow = ["--adapted", adapted, "--set", "eval.samples=40", "--chunk", "32", "--input", queries]  # 20 chunks
    predict(run_abmll, demo, "predict-whole", *slow)
    whole = (demo["root"] / "predict-whole/predictions.jsonl").read_text()

    out = demo["root"] / "predict-stopped"
    record = out / "predictions.chunks.jsonl"
    command = [abmll_bin, "predict", *demo["sets"], *slow, "--out", out]
    code, stderr = sigterm_after_lines(command, record, 2)
    assert code == 143, stderr
    assert "interrupted after" in stderr and "--resume" in stderr
    assert not (out / "predictions.jsonl").exists() and not (out / "report.json").exists()
    done = len(record.read_text().splitlines())
    assert 2 <= done < 20

    resumed = run_abmll("predict", *demo["sets"], *slow, "--resume", "--out", out, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"--resume: {done} finished chunks" in resumed.stderr
    assert (out / "predictions.jsonl").read_text() == whole
    assert not record.exists()
    report = json.loads((out / "report.json").read_text())["results"]
    assert report["chunks"] == 20 and report["queries"] == 640

    # Other settings (here the number of draws) do not reuse the record of a stopped run.
    code, _ = sigterm_after_lines(command, record, 2)
    assert code == 143
    other = run_abmll("predict", *demo["sets"], *slow, "--set", "eval.samples=41", "--resume", "--out", out,
                      timeout=300)
    assert other.returncode == 0, other.stderr
    assert "--resume: 0 finished chunks" in other.stderr and "of other settings dropped" in other.stderr


@pytest.mark.parametrize("method", ["abmll", "lora"])
def test_evaluate_keeps_what_adapt_writes(run_abmll, demo, method):
    """`evaluate --save-adapted DIR` writes each held-out task's adaptation as `adapt` does: the same tensors and
    metadata, and a folder `predict` reads."""
    saved = demo["root"] / f"saved-{method}"
    out = demo["root"] / f"evaluate-saving-{method}/report.json"
    result = run_abmll("evaluate", *demo["sets"], "--set", f"method={method}", "--checkpoint",
                       demo["checkpoints"][method], "--save-adapted", saved, "--out", out, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in saved.iterdir()) == ["after_l", "after_m", "after_t", "after_u"]
    adapted = adapt(run_abmll, demo, method)
    want, got = load_file(str(adapted / "phi.safetensors")), load_file(str(saved / TASK / "phi.safetensors"))
    assert sorted(want) == sorted(got)
    for name in want:
        assert torch.equal(want[name], got[name]), name
    assert (saved / TASK / "adapter/adapter_model.safetensors").exists()
    lines, _ = predict(run_abmll, demo, f"predict-saved-{method}", "--set", f"method={method}",
                       "--adapted", saved / TASK, "--input", demo["queries"])
    reference, _ = predict(run_abmll, demo, f"predict-adapted-{method}", "--set", f"method={method}",
                           "--adapted", adapted, "--input", demo["queries"])
    assert lines == reference


def test_a_tasks_own_tsv_file_as_queries(run_abmll, demo):
    """The task's test file as CrossFit writes it gives the predictions of the same queries written as JSONL."""
    adapted = adapt(run_abmll, demo, "abmll")
    tsv = demo["root"] / f"demo/data/{TASK}/{TASK}_16_100_test.tsv"
    from_tsv, report = predict(run_abmll, demo, "predict-tsv", "--adapted", adapted, "--input", tsv)
    from_jsonl, _ = predict(run_abmll, demo, "predict-jsonl", "--adapted", adapted, "--input", demo["queries"])
    assert len(from_tsv) == 64 and report["labelled"] == 64
    assert [(p["probs"], p["label"], p["line"]) for p in from_tsv] == \
        [(p["probs"], p["label"], p["line"]) for p in from_jsonl]
