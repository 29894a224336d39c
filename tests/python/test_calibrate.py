"""`abmll calibrate` against torchmetrics (ECE, MCE, accuracy, the confidence's AUROC for right answers), torch (NLL),
a direct Brier score and a temperature fitted with torch's LBFGS as in Guo et al. 2017; plus the refusal of invalid
prediction lines."""
import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from torchmetrics.classification import BinaryAUROC, MulticlassAccuracy, MulticlassCalibrationError


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def calibrate(run_abmll, tmp_path, rows, *extra, name="p.jsonl"):
    predictions = write_jsonl(tmp_path / name, rows)
    out = tmp_path / "c.json"
    result = run_abmll("calibrate", "--predictions", predictions, "--out", out, *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def reference(probs_rows, labels, bins=15):
    """Metrics from the reference implementations; rows padded with zeros to a common number of options."""
    width = max(len(p) for p in probs_rows)
    probs = torch.tensor([p + [0.0] * (width - len(p)) for p in probs_rows], dtype=torch.float64)
    target = torch.tensor(labels)
    classes = max(width, 2)
    if width < 2:
        probs = torch.cat([probs, torch.zeros(len(probs), 1, dtype=torch.float64)], dim=1)
    ece = MulticlassCalibrationError(num_classes=classes, n_bins=bins, norm="l1")(probs, target).item()
    mce = MulticlassCalibrationError(num_classes=classes, n_bins=bins, norm="max")(probs, target).item()
    acc = MulticlassAccuracy(num_classes=classes, average="micro")(probs, target).item()
    with np.errstate(divide="ignore"):
        nll = torch.nn.functional.nll_loss(torch.log(probs), target).item()
    onehot = torch.nn.functional.one_hot(target, probs.shape[1]).to(torch.float64)
    brier = ((probs - onehot) ** 2).sum(dim=1).mean().item()
    # The confidence as a score for being right; undefined (null) when every answer is right, or every one wrong.
    confidence, predicted = probs.max(dim=1)
    right = (predicted == target).long()
    auroc = BinaryAUROC()(confidence, right).item() if 0 < right.sum() < len(right) else None
    return dict(ece=ece, mce=mce, accuracy=acc, nll=nll, brier=brier, auroc=auroc)


def probs_rows_padded(probs_rows):
    width = max(len(p) for p in probs_rows)
    return [p + [0.0] * (width - len(p)) for p in probs_rows]


def correct(probs_rows, labels):
    """Whether each prediction (the first option with the largest probability) is the label."""
    return [int(np.argmax(p)) == y for p, y in zip(probs_rows, labels)]


def selective_reference(probs_rows, labels):
    """AURC and E-AURC, item by item: with K items more confident than item i and m as confident (itself
    included), i is among the k most confident with probability clip((k - K) / m, 0, 1) over the orders of the tied
    ones; the expected error count among the first k sums that over the wrong items."""
    confidence = np.max(np.array(probs_rows_padded(probs_rows)), axis=1)
    wrong = ~np.array(correct(probs_rows, labels))
    n = len(labels)
    more = (confidence[None, :] > confidence[:, None]).sum(axis=1)
    same = (confidence[None, :] == confidence[:, None]).sum(axis=1)
    k = np.arange(1, n + 1)[:, None]
    errors = (wrong[None, :] * np.clip((k - more[None, :]) / same[None, :], 0, 1)).sum(axis=1)
    aurc = np.mean(errors / k[:, 0])
    right = n - wrong.sum()
    best = np.mean(np.maximum(0, k[:, 0] - right) / k[:, 0])
    return aurc, aurc - best


def check_against_reference(got, probs_rows, labels, bins=15):
    """torchmetrics bins and averages in float32 (it casts confidences with .float()): ECE and MCE agree to float32
    precision; NLL and Brier come from float64 references and agree to float64 precision."""
    want = reference(probs_rows, labels, bins)
    for key, value in want.items():
        if (key == "nll" and math.isinf(value)) or value is None:
            assert got[key] is None  # JSON has no infinity
            continue
        # torchmetrics' AUROC comes back in float32.
        tolerance = 2e-6 if key in ("ece", "mce", "accuracy", "auroc") else 1e-12
        assert got[key] == pytest.approx(value, abs=tolerance, rel=tolerance), (key, got[key], value)
    assert got["n"] == len(labels)
    assert sum(b["count"] for b in got["bins"]) == len(labels)
    aurc, e_aurc = selective_reference(probs_rows, labels)
    assert got["aurc"] == pytest.approx(aurc, abs=1e-12) and got["e_aurc"] == pytest.approx(e_aurc, abs=1e-12)
    if want["auroc"] is not None:  # to float64 precision: every pair of a right and a wrong answer, ties half
        confidence = np.max(np.array(probs_rows_padded(probs_rows)), axis=1)
        right = np.array(correct(probs_rows, labels))
        wins = (confidence[right][:, None] > confidence[~right][None, :]).sum()
        ties = (confidence[right][:, None] == confidence[~right][None, :]).sum()
        assert got["auroc"] == pytest.approx((wins + ties / 2) / (right.sum() * (~right).sum()), abs=1e-12)


@pytest.mark.parametrize("seed,classes,scale", [(0, 2, 1.0), (1, 4, 3.0), (2, 10, 0.3), (3, 5, 8.0)])
def test_random_predictions_match_torchmetrics(run_abmll, tmp_path, seed, classes, scale):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(700, classes, generator=gen, dtype=torch.float64) * scale
    probs = torch.softmax(logits, dim=1)
    labels = torch.randint(0, classes, (700,), generator=gen).tolist()
    rows = [{"probs": p, "label": y} for p, y in zip(probs.tolist(), labels)]
    got = calibrate(run_abmll, tmp_path, rows)
    check_against_reference(got, probs.tolist(), labels)
    # Logits in, same metrics out.
    got_from_logits = calibrate(run_abmll, tmp_path, [{"logits": z, "label": y} for z, y in
                                                      zip(logits.tolist(), labels)], name="l.jsonl")
    for key in ["ece", "mce", "accuracy", "nll", "brier", "auroc", "aurc", "e_aurc"]:
        assert got_from_logits[key] == pytest.approx(got[key], abs=1e-12)


def test_bins_option(run_abmll, tmp_path):
    gen = torch.Generator().manual_seed(7)
    probs = torch.softmax(torch.randn(300, 3, generator=gen, dtype=torch.float64) * 2, dim=1)
    labels = torch.randint(0, 3, (300,), generator=gen).tolist()
    got = calibrate(run_abmll, tmp_path, [{"probs": p, "label": y} for p, y in zip(probs.tolist(), labels)],
                    "--bins", "7")
    check_against_reference(got, probs.tolist(), labels, bins=7)
    assert len(got["bins"]) == 8


@pytest.mark.parametrize("bins", [4, 8])
def test_edge_cases_match_torchmetrics(run_abmll, tmp_path, bins):
    # With a power-of-two number of bins every edge is exact in float32 and float64, so "exactly on an edge" means
    # the same to torchmetrics and to abmll.
    rows = []
    for k in range(bins // 2, bins):  # confidences on inner edges at or above 1/2 (so they are the maximum)
        e = k / bins
        rows += [{"probs": [e, 1 - e], "label": 0}, {"probs": [e, 1 - e], "label": 1}]
    # Confidence exactly 1.0 (its own bin), and exact ties (the first option wins, as torch.max picks it).
    rows += [{"probs": [1.0, 0.0, 0.0], "label": 0}, {"probs": [0.0, 1.0], "label": 0},
             {"probs": [0.5, 0.5], "label": 1}, {"probs": [0.25, 0.25, 0.25, 0.25], "label": 0}]
    got = calibrate(run_abmll, tmp_path, rows, "--bins", str(bins))
    check_against_reference(got, [r["probs"] for r in rows], [r["label"] for r in rows], bins=bins)
    assert got["nll"] is None  # a label with probability 0: infinite NLL, written as null
    assert got["bins"][-1]["lo"] == got["bins"][-1]["hi"] == 1.0 and got["bins"][-1]["count"] == 2
    # An edge belongs to the bin above it: k / bins opens bin k.
    for k in range(bins // 2 + 1, bins):
        assert got["bins"][k]["lo"] == k / bins and got["bins"][k]["count"] == 2


def test_empty_bins_and_one_class(run_abmll, tmp_path):
    # Every confidence in one bin: the others are empty and contribute nothing.
    rows = [{"probs": [0.91, 0.09], "label": i % 3 != 0} for i in range(30)]
    rows = [{"probs": r["probs"], "label": int(r["label"])} for r in rows]
    got = calibrate(run_abmll, tmp_path, rows)
    check_against_reference(got, [r["probs"] for r in rows], [r["label"] for r in rows])
    assert sum(1 for b in got["bins"] if b["count"]) == 1
    # One option per query: always right with confidence 1 (torchmetrics needs >= 2 classes: padded with a zero).
    got = calibrate(run_abmll, tmp_path, [{"probs": [1.0], "label": 0}] * 5, name="one.jsonl")
    assert got["accuracy"] == 1.0 and got["ece"] == 0.0 and got["nll"] == 0.0 and got["brier"] == 0.0


def fit_temperature_reference(logits, labels):
    """Guo et al.'s recipe: LBFGS on the NLL over the temperature (here its log, to keep it positive)."""
    z = torch.tensor(logits, dtype=torch.float64)
    y = torch.tensor(labels)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=500, tolerance_grad=1e-14, tolerance_change=1e-16,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return log_t.exp().item()


def test_temperature_scaling_matches_lbfgs_fit(run_abmll, tmp_path):
    gen = torch.Generator().manual_seed(11)
    classes = 4
    # Overconfident logits: the right temperature is well above 1.
    true_logits = torch.randn(800, classes, generator=gen, dtype=torch.float64) * 1.5
    labels = torch.distributions.Categorical(logits=true_logits).sample().tolist()
    logits = (true_logits * 3).tolist()
    val = write_jsonl(tmp_path / "val.jsonl", [{"logits": z, "label": y} for z, y in zip(logits[:400], labels[:400])])
    rows = [{"logits": z, "label": y} for z, y in zip(logits[400:], labels[400:])]
    got = calibrate(run_abmll, tmp_path, rows, "--fit-temperature", val)

    t_ref = fit_temperature_reference(logits[:400], labels[:400])
    assert got["temperature"] == pytest.approx(t_ref, rel=1e-6)
    assert got["temperature"] > 2
    scaled = torch.softmax(torch.tensor(logits[400:], dtype=torch.float64) / got["temperature"], dim=1)
    check_against_reference(got["after"], scaled.tolist(), labels[400:])
    assert got["after"]["nll"] < got["nll"]
    assert got["validation"]["nll_after"] < got["validation"]["nll_before"]


def test_reliability_diagram_is_well_formed_svg(run_abmll, tmp_path):
    gen = torch.Generator().manual_seed(5)
    probs = torch.softmax(torch.randn(200, 3, generator=gen, dtype=torch.float64) * 2, dim=1)
    labels = torch.randint(0, 3, (200,), generator=gen).tolist()
    svg = tmp_path / "r.svg"
    got = calibrate(run_abmll, tmp_path, [{"probs": p, "label": y} for p, y in zip(probs.tolist(), labels)],
                    "--plot", svg)
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.find("{http://www.w3.org/2000/svg}title")
            is not None]
    assert len(bars) == sum(1 for b in got["bins"] if b["count"])


@pytest.mark.parametrize("line,problem", [
    ('{"probs": [0.5, 0.6], "label": 0}', "sum to 1.1"),
    ('{"probs": [1.2, -0.2], "label": 0}', "is negative"),
    ('{"probs": [0.5, 0.5], "label": 2}', "out of range for 2 options"),
    ('{"probs": [0.5, 0.5], "label": -1}', "out of range"),
    ('{"probs": [0.5, 0.5], "label": 0.5}', "must be an integer"),
    ('{"probs": [0.5, 0.5]}', 'missing "label"'),
    ('{"logits": [NaN, 1.0], "label": 0}', "malformed JSON"),
    ('{"logits": [1e400, 1.0], "label": 0}', "number overflow"),
    ('{"probs": [0.5, 0.5], "label": 0', "malformed JSON"),
    ('{"probs": [0.5, 0.5], "logits": [0, 0], "label": 0}', "exactly one of"),
    ('{"probs": [], "label": 0}', "non-empty list"),
    ('[1, 2]', "expected a JSON object"),
])
def test_invalid_lines_are_refused_with_their_line(run_abmll, tmp_path, line, problem):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"probs": [0.3, 0.7], "label": 1}\n\n' + line + "\n")
    result = run_abmll("calibrate", "--predictions", path, "--out", tmp_path / "c.json")
    assert result.returncode == 2, result.stderr
    assert f"{path}:3: " in result.stderr
    assert problem in result.stderr
    assert not (tmp_path / "c.json").exists()


def test_missing_or_empty_file(run_abmll, tmp_path):
    result = run_abmll("calibrate", "--predictions", tmp_path / "none.jsonl", "--out", tmp_path / "c.json")
    assert result.returncode == 2 and "cannot open" in result.stderr
    (tmp_path / "empty.jsonl").write_text("\n")
    result = run_abmll("calibrate", "--predictions", tmp_path / "empty.jsonl", "--out", tmp_path / "c.json")
    assert result.returncode == 2 and "no predictions" in result.stderr
