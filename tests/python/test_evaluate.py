"""`abmll evaluate` on the embedded demo (`abmll make-demo`): the report, predictions.jsonl and reliability diagram it
writes for each method; the option probabilities against transformers (the same prompts run through the HF model,
log-probabilities of each option's tokens summed, softmax over options); `abmll calibrate` on the predictions
reproducing the report's pooled metrics; and refusals of bad inputs (exit code 2)."""
import json
import math
import pathlib
import shutil

import pytest
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

from hf_option_scores import option_scores
from interruption import sigterm_after_lines


@pytest.fixture(scope="module")
def demo(tmp_path_factory, abmll_bin, source_dir):
    import subprocess

    root = tmp_path_factory.mktemp("evaluate")
    assert subprocess.run([abmll_bin, "make-demo", "--out", root / "demo"], capture_output=True).returncode == 0
    sets = ["--config", source_dir / "configs/demo.yaml", "--set", f"model.path={root / 'demo/model'}",
            "--set", f"data.path={root / 'demo/data'}",
            "--set", f"data.partition={root / 'demo/data/partitions/demo.json'}", "--set", "eval.query_size=8"]
    train = subprocess.run([abmll_bin, "meta-train", *sets, "--max-steps", "3", "--out", root / "run"],
                           capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr
    checkpoints = sorted((root / "run/checkpoints").glob("step-*.safetensors"))
    assert checkpoints, "meta-train wrote no checkpoint"
    return {"root": root, "sets": sets, "checkpoint": checkpoints[-1], "model": root / "demo/model"}


def evaluate(run_abmll, demo, name, *extra):
    out = demo["root"] / name / "REPORT.json"
    result = run_abmll("evaluate", *demo["sets"], *extra, "--out", out, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    predictions = [json.loads(line) for line in (out.parent / "predictions.jsonl").read_text().splitlines()]
    return report, predictions, out.parent


def check_outputs(report, predictions, folder, method):
    results = report["results"]
    assert results["method"] == method and results["n_tasks"] == 4 and len(results["per_task"]) == 4
    assert len(predictions) == sum(t["n"] for t in results["per_task"]) == 4 * 8
    pooled = results["aggregate"]["pooled"]
    assert pooled["n"] == 32 and len(pooled["bins"]) == 16
    for key in ("accuracy", "ece"):
        lo, hi = pooled[f"{key}_ci95"]
        assert 0 <= lo <= hi <= 1
        lo, hi = results["aggregate"]["mean_over_tasks"][f"{key}_ci95"]
        assert 0 <= lo <= hi <= 1
    mean_acc = sum(t["accuracy"] for t in results["per_task"]) / 4
    assert results["aggregate"]["mean_over_tasks"]["accuracy"] == pytest.approx(mean_acc)
    for p in predictions:
        assert set(p) == {"task", "id", "probs", "label", "option_loglik", "source", "entropy", "expected_entropy",
                          "mutual_information"}
        assert len(p["probs"]) == len(p["option_loglik"]) == 2 and sum(p["probs"]) == pytest.approx(1, abs=1e-12)
        assert p["entropy"] == pytest.approx(-sum(q * math.log(q) for q in p["probs"] if q > 0), abs=1e-12)
        assert p["mutual_information"] == pytest.approx(p["entropy"] - p["expected_entropy"], abs=1e-12)
        assert p["mutual_information"] >= 0
        if method in ("pretrained", "icl", "lora", "fomaml", "reptile"):  # one adapter: nothing to disagree
            assert p["mutual_information"] == 0
    svg = (folder / "reliability.svg").read_text()
    assert "<svg" in svg and "</svg>" in svg


@pytest.fixture(scope="module")
def pretrained(demo, abmll_bin):
    import subprocess

    out = demo["root"] / "pretrained/REPORT.json"
    result = subprocess.run([abmll_bin, "evaluate", *demo["sets"], "--set", "method=pretrained", "--out", out],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    predictions = [json.loads(line) for line in (out.parent / "predictions.jsonl").read_text().splitlines()]
    return json.loads(out.read_text()), predictions, out.parent


def test_pretrained_outputs(pretrained):
    check_outputs(*pretrained, "pretrained")
    assert all(t["truncated_prompts"] == 0 for t in pretrained[0]["results"]["per_task"])


def test_pretrained_probabilities_match_transformers(pretrained, demo):
    """Oracle: each query's example (from its source line), prompt and continuation tokenized separately (for this
    byte-level tokenizer the same ids as the scorer's options in context), the HF model run on prompt + option,
    log-softmax summed over the option's tokens."""
    _, predictions, _ = pretrained
    tok = Tokenizer.from_file(str(demo["model"] / "tokenizer.json"))
    model = AutoModelForCausalLM.from_pretrained(demo["model"], torch_dtype=torch.float32).eval()
    worst_p = worst_ll = 0.0
    for p in predictions:
        file, line = p["source"].rsplit(":", 1)
        text, output = pathlib.Path(file).read_text().splitlines()[int(line) - 1].split("\t")[:2]
        options = ["no", "yes"]  # the demo's label set, sorted bytewise
        assert options[p["label"]] == output
        logliks, probs = option_scores(model, tok, text, options)
        worst_p = max(worst_p, *(abs(a - b) for a, b in zip(probs, p["probs"])))
        worst_ll = max(worst_ll, *(abs(a - b) for a, b in zip(logliks, p["option_loglik"])))
    print(f"abmll vs transformers option scoring: probs max abs diff {worst_p:.3g}, log-lik {worst_ll:.3g}")
    assert worst_p <= 1e-4 and worst_ll <= 1e-4


def calibrate(run_abmll, folder):
    out = folder / "calibrate.json"
    result = run_abmll("calibrate", "--predictions", folder / "predictions.jsonl", "--out", out)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def test_calibrate_reproduces_the_pooled_metrics(pretrained, run_abmll):
    report, _, folder = pretrained
    pooled = report["results"]["aggregate"]["pooled"]
    got = calibrate(run_abmll, folder)
    for key in ("n", "accuracy", "ece", "mce", "brier"):
        assert got[key] == pytest.approx(pooled[key], abs=1e-12), key


def test_report_plots_compare_methods_pooled_over_seeds(demo, run_abmll):
    """`abmll report --plots`: each method's curve holds the bins of its seeds' predictions taken together, as
    `abmll calibrate` bins the concatenated predictions files."""
    import xml.etree.ElementTree as ElementTree

    folders = {}
    for method, seed in (("pretrained", 0), ("pretrained", 1), ("icl", 0)):
        *_, folders[method, seed] = evaluate(run_abmll, demo, f"plotted/{method}-{seed}", "--set", f"method={method}",
                                             "--set", f"run.seed={seed}")
    plots = demo["root"] / "plots"
    reports = [folder / "REPORT.json" for folder in folders.values()]
    result = run_abmll("report", *reports, "--out", demo["root"] / "plotted.md", "--plots", plots)
    assert result.returncode == 0, result.stderr
    figure = json.loads((plots / "reliability-demo-model.json").read_text())
    assert [(c["method"], c["seeds"]) for c in figure["curves"]] == [("pretrained", [0, 1]), ("icl", [0])]
    for curve in figure["curves"]:
        together = demo["root"] / f"together-{curve['method']}"
        together.mkdir()
        (together / "predictions.jsonl").write_text("".join(
            (folder / "predictions.jsonl").read_text() for (method, _), folder in folders.items()
            if method == curve["method"]))
        reference = calibrate(run_abmll, together)
        for key in ("n", "accuracy", "ece", "mce"):
            assert curve[key] == pytest.approx(reference[key], abs=1e-12), key
        assert [b["count"] for b in curve["bins"]] == [b["count"] for b in reference["bins"]]
        for got, want in zip(curve["bins"], reference["bins"]):
            assert got["accuracy"] == pytest.approx(want["accuracy"], abs=1e-12)
            assert got["confidence"] == pytest.approx(want["confidence"], abs=1e-12)
    svg = ElementTree.parse(plots / "reliability-demo-model.svg").getroot()
    assert len(svg.findall("{http://www.w3.org/2000/svg}polyline")) == 2


def test_report_baseline_pairs_the_queries(demo, run_abmll):
    """`abmll report --baseline`: each method's differences from the baseline are the differences of the table's
    figures over the seeds both have, with intervals of a paired bootstrap over queries, which an independent one
    (numpy) reproduces; swapping the two negates them; runs that did not score the same queries are refused."""
    import shutil

    import numpy as np

    folders = {}
    for method, seed in (("pretrained", 0), ("pretrained", 1), ("icl", 0), ("icl", 1)):
        *_, folders[method, seed] = evaluate(run_abmll, demo, f"paired/{method}-{seed}", "--set", f"method={method}",
                                             "--set", f"run.seed={seed}")
    reports = [folder / "REPORT.json" for folder in folders.values()]
    result = run_abmll("report", *reports, "--out", demo["root"] / "paired.md", "--baseline", "pretrained",
                       "--resamples", "4000")
    assert result.returncode == 0, result.stderr
    assert "## Paired differences from pretrained" in (demo["root"] / "paired.md").read_text()
    rows = json.loads((demo["root"] / "paired.paired.json").read_text())["rows"]
    assert [(r["method"], r["seeds"], r["queries"]) for r in rows] == [("icl", [0, 1], 64)]
    row = rows[0]

    def table_figure(method, key):
        return np.mean([json.loads((folders[method, seed] / "REPORT.json").read_text())
                        ["results"]["aggregate"]["mean_over_tasks"][key] for seed in (0, 1)])

    for key in ("accuracy", "ece", "nll", "brier", "aurc"):
        want = table_figure("icl", key) - table_figure("pretrained", key)
        assert row[key]["difference"] == pytest.approx(want, abs=1e-12), key
        assert row[key]["ci95"][0] < row[key]["ci95"][1]
    # AUROC: over the tasks where both runs have one.
    seed_means = []
    for seed in (0, 1):
        per_task = [{t["task"]: t.get("auroc") for t in json.loads((folders[method, seed] / "REPORT.json").read_text())
                     ["results"]["per_task"]} for method in ("icl", "pretrained")]
        both = [per_task[0][t] - per_task[1][t] for t in per_task[0]
                if per_task[0][t] is not None and per_task[1].get(t) is not None]
        if both:
            seed_means.append(np.mean(both))
    assert row["auroc"]["difference"] == pytest.approx(np.mean(seed_means), abs=1e-12)

    # The accuracy interval by numpy: within each (seed, task), queries drawn with replacement, the same for both.
    strata = {}
    for (method, seed), folder in folders.items():
        for line in (folder / "predictions.jsonl").read_text().splitlines():
            p = json.loads(line)
            right = float(np.argmax(p["probs"]) == p["label"])
            strata.setdefault((seed, p["task"]), {}).setdefault((p["id"], p["source"]), {})[method] = right
    pairs = [np.array([[q["icl"], q["pretrained"]] for q in queries.values()]) for queries in strata.values()]
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(20000):
        draws.append(np.mean([np.diff(p[rng.integers(0, len(p), len(p))][:, ::-1].mean(axis=0))[0] for p in pairs]))
    lo, hi = np.percentile(draws, [2.5, 97.5])
    print(f"icl - pretrained accuracy: {row['accuracy']['difference']:.4f}, abmll interval {row['accuracy']['ci95']}, "
          f"numpy [{lo:.4f}, {hi:.4f}]")
    assert row["accuracy"]["ci95"][0] == pytest.approx(lo, abs=0.1 * (hi - lo))
    assert row["accuracy"]["ci95"][1] == pytest.approx(hi, abs=0.1 * (hi - lo))

    result = run_abmll("report", *reports, "--out", demo["root"] / "swapped.md", "--baseline", "icl")
    assert result.returncode == 0, result.stderr
    swapped = json.loads((demo["root"] / "swapped.paired.json").read_text())["rows"][0]
    assert swapped["method"] == "pretrained"
    for key in ("accuracy", "ece", "nll", "brier", "auroc", "aurc"):
        assert swapped[key]["difference"] == pytest.approx(-row[key]["difference"], abs=1e-12)

    # Split by a config key (ICL's demonstrations computed in each query's row, eval.share_prefix false, against
    # shared): each variant is compared with the baseline run of its seed, the one of the same value where the
    # baseline has several (seed 0 here).
    unshared = ["--set", "eval.share_prefix=false"]
    for seed in (0, 1):
        *_, folders["icl-unshared", seed] = evaluate(run_abmll, demo, f"paired/icl-unshared-{seed}", "--set",
                                                     "method=icl", "--set", f"run.seed={seed}", *unshared)
    *_, folders["pretrained-unshared", 0] = evaluate(run_abmll, demo, "paired/pretrained-unshared-0", "--set",
                                                     "method=pretrained", "--set", "run.seed=0", *unshared)
    split = [folder / "REPORT.json" for folder in folders.values()]
    result = run_abmll("report", *split, "--out", demo["root"] / "by.md", "--by", "eval.share_prefix", "--baseline",
                       "pretrained", "--resamples", "200")
    assert result.returncode == 0, result.stderr
    by_rows = json.loads((demo["root"] / "by.paired.json").read_text())["rows"]
    assert [(r["method"], r["variant"], r["seeds"]) for r in by_rows] == [
        ("icl", {"eval.share_prefix": "false"}, [0, 1]), ("icl", {"eval.share_prefix": "true"}, [0, 1])]
    assert by_rows[1]["accuracy"]["difference"] == pytest.approx(row["accuracy"]["difference"], abs=1e-12)
    assert by_rows[0]["accuracy"]["difference"] == pytest.approx(row["accuracy"]["difference"], abs=1e-12)
    assert "| benchmark | model | method | eval.share_prefix | seeds |" in (demo["root"] / "by.md").read_text()
    # Without --by the two ICL runs of a seed collide; a key that is not one is refused with the nearest.
    result = run_abmll("report", *split, "--out", demo["root"] / "z.md")
    assert result.returncode == 2 and "`--by KEY`" in result.stderr
    result = run_abmll("report", *split, "--out", demo["root"] / "z.md", "--by", "eval.share_prefx")
    assert result.returncode == 2 and "--by eval.share_prefx: not a config key (did you mean 'eval.share_prefix'?)" \
        in result.stderr

    result = run_abmll("report", *reports, "--out", demo["root"] / "x.md", "--baseline", "lora")
    assert result.returncode == 2 and "--baseline lora: no run of that method (the runs' methods: icl, pretrained)" \
        in result.stderr
    # Another episode's queries under the same seed: not the same data.
    bad = demo["root"] / "paired-bad/pretrained-1"
    shutil.copytree(folders["pretrained", 1], bad)
    lines = (bad / "predictions.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["label"] = 1 - first["label"]
    (bad / "predictions.jsonl").write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    result = run_abmll("report", folders["pretrained", 0] / "REPORT.json", bad / "REPORT.json",
                       folders["icl", 0] / "REPORT.json", folders["icl", 1] / "REPORT.json", "--out",
                       demo["root"] / "y.md", "--baseline", "pretrained")
    assert result.returncode == 2, result.stderr
    assert f"{bad / 'predictions.jsonl'}:1" in result.stderr and "did not score the same data" in result.stderr
    assert not (demo["root"] / "y.md").exists()


def test_abmll_after_meta_training(demo, run_abmll):
    fast = ["--set", "method=abmll", "--set", "inner.eval_steps=2", "--checkpoint", demo["checkpoint"]]
    report, predictions, folder = evaluate(run_abmll, demo, "abmll", *fast, "--set", "eval.samples=3")
    check_outputs(report, predictions, folder, "abmll")
    results = report["results"]
    assert results["inner_steps"] == 2 and results["posterior_samples"] == 3
    for t in results["per_task"]:
        assert t["support_size"] == 8 and len(t["support_nll"]) == 3
        assert t["support_nll"][-1] < t["support_nll"][0]  # the inner steps fit the support set
    got = calibrate(run_abmll, folder)
    for key in ("ece", "accuracy", "aurc", "e_aurc"):
        assert got[key] == pytest.approx(results["aggregate"]["pooled"][key], abs=1e-12), key
    assert results["aggregate"]["mean_over_tasks"]["aurc"] == pytest.approx(
        sum(t["aurc"] for t in results["per_task"]) / 4, abs=1e-12)
    # Same seed, same predictions; the posterior-mean path (eval.samples=0) runs too and differs.
    _, predictions_again, _ = evaluate(run_abmll, demo, "abmll_again", *fast, "--set", "eval.samples=3")
    assert predictions_again == predictions
    # The run's folder names its newest checkpoint.
    by_run = [a if a != demo["checkpoint"] else demo["root"] / "run" for a in fast]
    report_by_run, predictions_by_run, _ = evaluate(run_abmll, demo, "abmll_by_run", *by_run, "--set", "eval.samples=3")
    assert report_by_run["results"]["checkpoint"] == str(demo["checkpoint"])
    assert predictions_by_run == predictions
    _, at_mean, _ = evaluate(run_abmll, demo, "abmll_mean", *fast, "--set", "eval.samples=0")
    assert [p["probs"] for p in at_mean] != [p["probs"] for p in predictions]
    # Three posterior draws disagree somewhere; the posterior mean is one adapter.
    assert max(p["mutual_information"] for p in predictions) > 0
    assert all(p["mutual_information"] == 0 for p in at_mean)


@pytest.mark.parametrize("method", ["icl", "abmll_icl"])
def test_icl_methods_put_demonstrations_in_the_prompts(demo, run_abmll, method):
    prior = ["--checkpoint", demo["checkpoint"]] if method == "abmll_icl" else []
    # As many support examples as fit model.max_length (4 here) lead every prompt of a task: ~50 identical tokens.
    settings = ["--set", f"method={method}", "--set", "eval.samples=2", "--set", "inner.eval_steps=1", *prior]
    report, predictions, folder = evaluate(run_abmll, demo, method, *settings)
    check_outputs(report, predictions, folder, method)
    assert all(t["mean_demos"] >= 3 for t in report["results"]["per_task"])
    # The demonstrations, the same at the start of every query prompt of a task, are computed once per row of
    # queries (eval.share_prefix); computing them in every query's own row gives the same option scores.
    _, separate_predictions, _ = evaluate(run_abmll, demo, f"{method}-separate", *settings,
                                          "--set", "eval.share_prefix=false")
    worst = max(abs(a - b) for p, q in zip(predictions, separate_predictions)
                for a, b in zip(p["option_loglik"], q["option_loglik"]))
    print(f"{method}: shared demonstrations vs each query's own: max abs option log-likelihood difference {worst:.3g}")
    assert worst < 1e-5


def test_bad_inputs_exit_2(demo, run_abmll):
    out = demo["root"] / "bad/REPORT.json"
    cases = [
        (["--set", "method=abmll"], "needs --checkpoint"),
        (["--set", "method=abmll", "--checkpoint", demo["root"] / "missing.safetensors"], "missing.safetensors"),
        (["--set", "method=abmll", "--checkpoint", demo["root"] / "demo"],
         f"{demo['root'] / 'demo'}: a folder, but not a meta-training run's"),
        (["--set", "method=fomaml"], "needs --checkpoint"),
        (["--set", "method=lora", "--checkpoint", demo["checkpoint"]], "a checkpoint of method abmll, not lora"),
        (["--set", "method=pretrained", "--checkpoint", demo["checkpoint"]], "uses no meta-trained parameters"),
        (["--set", "method=nonsense"], "nonsense"),
        # Found before any task is adapted or scored: every held-out task's episode is drawn first.
        (["--checkpoint", demo["checkpoint"], "--set", "eval.query_size=65"],
         "evaluate (data.shots 8, eval.query_size 65, eval.split test): task 'after_l': its test split holds 64 "
         "examples, fewer than the 65 queries asked for"),
    ]
    for extra, message in cases:
        result = run_abmll("evaluate", *demo["sets"], *extra, "--out", out)
        assert result.returncode == 2, (extra, result.stderr)
        assert message in result.stderr, (extra, result.stderr)
        assert "queries, accuracy" not in result.stderr
    result = run_abmll("evaluate", *demo["sets"], "--set", "method=pretrained")
    assert result.returncode == 2 and "--out" in result.stderr
    assert not out.exists()
    assert run_abmll("evaluate", "--help-config").returncode == 0


def test_dev_split_predictions_fit_the_temperature_of_the_test_predictions(demo, run_abmll, pretrained):
    """eval.split dev scores the held-out tasks' dev files (the same support sets), and its predictions are what
    `calibrate --fit-temperature` fits on: the temperature workflow without touching the test files. A held-out task
    without a dev file of its own is refused with exit code 2, naming it."""
    report, predictions, folder = evaluate(run_abmll, demo, "dev", "--set", "method=pretrained",
                                           "--set", "eval.split=dev")
    check_outputs(report, predictions, folder, "pretrained")
    assert report["results"]["split"] == "dev" and pretrained[0]["results"]["split"] == "test"
    assert all("_dev.tsv:" in p["source"] for p in predictions)
    assert all("_test.tsv:" in p["source"] for p in pretrained[1])
    assert {p["task"] for p in predictions} == {p["task"] for p in pretrained[1]}

    out = demo["root"] / "dev" / "calibrated.json"
    result = run_abmll("calibrate", "--predictions", pretrained[2] / "predictions.jsonl",
                       "--fit-temperature", folder / "predictions.jsonl", "--out", out)
    assert result.returncode == 0, result.stderr
    calibrated = json.loads(out.read_text())
    # The untrained demo model is confidently wrong, so the fit flattens it (the temperature reaches its bound).
    assert calibrated["temperature"] > 1 and calibrated["validation"]["n"] == 32
    assert calibrated["validation"]["file"] == str(folder / "predictions.jsonl")
    assert calibrated["validation"]["nll_after"] < calibrated["validation"]["nll_before"]

    data = demo["root"] / "data-without-dev"
    shutil.copytree(demo["root"] / "demo/data", data)
    held_out = json.loads((data / "partitions/demo.json").read_text())["test"]
    (data / held_out[1] / f"{held_out[1]}_16_100_dev.tsv").unlink()
    result = run_abmll("evaluate", *demo["sets"], "--set", f"data.path={data}", "--set", "method=pretrained",
                       "--set", "eval.split=dev", "--out", demo["root"] / "dev-missing/REPORT.json")
    assert result.returncode == 2, result.stderr
    assert "eval.split: dev: no dev split apart from the support split" in result.stderr
    assert held_out[1] in result.stderr and held_out[0] not in result.stderr.split("eval.split: dev")[1]


@pytest.mark.parametrize("method", ["lora", "fomaml", "reptile"])
def test_point_estimate_baselines_adapt_from_their_checkpoint(demo, run_abmll, method):
    """Each baseline meta-trains (3 steps) into a checkpoint of its own, and evaluate adapts that LoRA on each
    held-out task's support set for inner.eval_steps steps; `lora` without a checkpoint starts from PEFT's init."""
    run = demo["root"] / f"train-{method}"
    result = run_abmll("meta-train", *demo["sets"], "--set", f"method={method}", "--max-steps", "3", "--out", run,
                       timeout=300)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and all(math.isfinite(l["outer_loss"]) and l["grad_norm"] > 0 for l in lines)
    assert ("kl" in lines[0]) is False  # no posterior: no KL term
    assert (run / "adapter/adapter_model.safetensors").exists()
    checkpoint = run / "checkpoints/step-3.safetensors"
    report, predictions, folder = evaluate(run_abmll, demo, f"eval-{method}", "--set", f"method={method}",
                                           "--set", "inner.eval_steps=3", "--checkpoint", checkpoint)
    check_outputs(report, predictions, folder, method)
    results = report["results"]
    assert results["adapted_from"] == "checkpoint" and results["inner_steps"] == 3
    for t in results["per_task"]:
        assert len(t["support_nll"]) == 4 and t["support_nll"][-1] < t["support_nll"][0]
    # Someone else's checkpoint is refused by name rather than misread.
    other = "fomaml" if method != "fomaml" else "reptile"
    result = run_abmll("evaluate", *demo["sets"], "--set", f"method={other}", "--checkpoint", checkpoint,
                       "--out", folder / "other.json")
    assert result.returncode == 2 and f"a checkpoint of method {method}, not {other}" in result.stderr
    if method == "lora":
        report, predictions, folder = evaluate(run_abmll, demo, "eval-lora-scratch", "--set", "method=lora",
                                               "--set", "inner.eval_steps=3")
        check_outputs(report, predictions, folder, "lora")
        assert report["results"]["adapted_from"] == "peft_init"


@pytest.mark.parametrize("method", ["lora", "fomaml"])
def test_lora_dropout_trains_and_mc_dropout_averages_its_masks(demo, run_abmll, method):
    """lora.dropout is on while the point-LoRA methods train and adapt: it changes the losses, reproducibly, and a
    run stopped and resumed draws the masks an uninterrupted one draws. eval.mc_dropout averages eval.samples
    forwards with their own masks: the draws disagree (mutual information), the same seed gives the same
    predictions, and the table lists it apart. Dropout where the method has none is refused."""
    def train(name, *extra, steps=3):
        run = demo["root"] / name
        result = run_abmll("meta-train", *demo["sets"], "--set", f"method={method}", "--max-steps", str(steps),
                           "--out", run, *extra, timeout=300)
        assert result.returncode == 0, result.stderr
        return run, [json.loads(line)["outer_loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]

    dropout = ["--set", "lora.dropout=0.3"]
    _, plain = train(f"dropout-{method}-off")
    run, with_dropout = train(f"dropout-{method}-on", *dropout)
    _, again = train(f"dropout-{method}-again", *dropout)
    assert with_dropout == again and with_dropout != plain
    stopped, first = train(f"dropout-{method}-resumed", *dropout, steps=2)
    result = run_abmll("meta-train", *demo["sets"], "--set", f"method={method}", "--max-steps", "3", "--out",
                       stopped, "--resume", *dropout, timeout=300)
    assert result.returncode == 0, result.stderr
    resumed = [json.loads(line)["outer_loss"] for line in (stopped / "metrics.jsonl").read_text().splitlines()]
    assert resumed == with_dropout

    # Validation scores as evaluate does, by MC dropout, or with validation.samples 0 by the LoRA without dropout.
    for samples in ("-1", "0"):
        train(f"dropout-{method}-validated{samples}", *dropout, "--set", "eval.mc_dropout=true", "--set",
              "validation.every=2", "--set", f"validation.samples={samples}", steps=2)

    checkpoint = run / "checkpoints/step-3.safetensors"
    mc = ["--set", f"method={method}", "--checkpoint", checkpoint, "--set", "inner.eval_steps=2", *dropout,
          "--set", "eval.mc_dropout=true", "--set", "eval.samples=4"]
    report, predictions, folder = evaluate(run_abmll, demo, f"mc-{method}", *mc)
    assert report["results"]["method"] == method and len(predictions) == 32
    assert all(p["mutual_information"] == pytest.approx(p["entropy"] - p["expected_entropy"], abs=1e-12)
               for p in predictions)
    assert max(p["mutual_information"] for p in predictions) > 0
    _, repeated, _ = evaluate(run_abmll, demo, f"mc-{method}-again", *mc)
    assert repeated == predictions
    single_report, single, single_folder = evaluate(run_abmll, demo, f"mc-{method}-off", *mc[:-4])
    check_outputs(single_report, single, single_folder, method)  # one adapter: no disagreement
    assert [p["probs"] for p in single] != [p["probs"] for p in predictions]
    result = run_abmll("report", folder / "REPORT.json", demo["root"] / f"mc-{method}-off/REPORT.json", "--out",
                       demo["root"] / f"mc-{method}.md")
    assert result.returncode == 0, result.stderr
    assert f"| demo | model | {method} (MC dropout) | 1 |" in result.stdout

    for extra, message in [
            (["--set", "method=abmll", "--checkpoint", demo["checkpoint"], *dropout],
             "lora.dropout: 0.3 with method abmll: dropout applies to the LoRA of lora, reptile and fomaml"),
            (["--set", f"method={method}", "--checkpoint", checkpoint, "--set", "eval.mc_dropout=true"],
             "eval.mc_dropout: needs lora.dropout above 0"),
            (["--set", "method=pretrained", *dropout, "--set", "eval.mc_dropout=true"],
             "eval.mc_dropout: method pretrained has no LoRA dropout to sample")]:
        result = run_abmll("evaluate", *demo["sets"], *extra, "--out", demo["root"] / "refused/REPORT.json")
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_sigterm_between_tasks_and_resume_give_the_uninterrupted_report(demo, run_abmll, abmll_bin):
    """SIGTERM during a task: the task finishes, is recorded in REPORT.tasks.jsonl, and the run exits 143 without a
    report; --resume runs only the remaining tasks and writes the report an uninterrupted run writes (the same
    figures and predictions), then removes the record. Settings that change the results void the record."""
    slow = ["--checkpoint", demo["checkpoint"], "--set", "inner.eval_steps=40", "--set", "eval.samples=60",
            "--set", "eval.query_size=0"]
    reference, reference_predictions, _ = evaluate(run_abmll, demo, "uninterrupted", *slow)

    out = demo["root"] / "interrupted" / "REPORT.json"
    record = out.parent / "REPORT.tasks.jsonl"
    code, stderr = sigterm_after_lines([abmll_bin, "evaluate", *demo["sets"], *slow, "--out", out], record, 1)
    assert code == 143, stderr
    assert not out.exists()
    saved_record = record.read_text()
    finished = len(saved_record.splitlines())
    assert 1 <= finished < 4, stderr
    assert f"interrupted after {finished} of 4 tasks; `--resume` continues" in stderr

    resumed = run_abmll("evaluate", *demo["sets"], *slow, "--out", out, "--resume", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"--resume: {finished} finished task" in resumed.stderr
    assert resumed.stderr.count("queries, accuracy") == 4 - finished  # only the remaining tasks ran
    report = json.loads(out.read_text())
    assert report["results"]["per_task"] == reference["results"]["per_task"]
    assert report["results"]["aggregate"] == reference["results"]["aggregate"]
    predictions = [json.loads(line) for line in (out.parent / "predictions.jsonl").read_text().splitlines()]
    assert predictions == reference_predictions
    assert not record.exists()

    # The record under other settings (one more posterior sample) is dropped, as are a line that is not a record and
    # a torn last line.
    record.write_text(saved_record + '{"fingerprint": 5}\n{"fingerprint": "')
    other = run_abmll("evaluate", *demo["sets"], *slow, "--set", "eval.samples=61", "--out", out, "--resume",
                      timeout=300)
    assert other.returncode == 0, other.stderr
    assert "--resume: 0 finished tasks" in other.stderr
    assert f"({finished + 1} of other settings dropped" in other.stderr
    assert other.stderr.count("queries, accuracy") == 4


def test_one_evaluation_per_folder_at_a_time(demo, run_abmll):
    """Predictions, plot and the finished-task record go beside the report, so a folder another evaluation holds
    (here Python's flock on .abmll-evaluate.lock, as abmll takes it) is refused with exit code 2; once released it is
    usable. A meta-train's lock on the same folder does not stand in the way (they write different files)."""
    import fcntl

    folder = demo["root"] / "locked"
    folder.mkdir()
    meta_train_lock = open(folder / ".abmll-meta-train.lock", "w")
    fcntl.flock(meta_train_lock, fcntl.LOCK_EX)
    with open(folder / ".abmll-evaluate.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("another tool\n")
        held.flush()
        refused = run_abmll("evaluate", *demo["sets"], "--set", "method=pretrained", "--out", folder / "r.json")
        assert refused.returncode == 2, refused.stderr
        assert "another abmll evaluate is using this folder (another tool)" in refused.stderr
    done = run_abmll("evaluate", *demo["sets"], "--set", "method=pretrained", "--out", folder / "r.json")
    assert done.returncode == 0, done.stderr
    meta_train_lock.close()
