"""abmll's ABMLL meta-training step against the independent Python implementation in abmll_reference.py, on the
same tiny checkpoint, token ids and noise: losses and theta gradients, first- and second-order, for both variational
families (factor; weight with a linear and a softplus scale). Both families draw each task's noise from that task's
own seed (the trace's noise_seeds), so the reference regenerates it task by task, one sequence at a time."""
import json
import math

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from abmll_reference import PARTS, WEIGHT_PARTS, abmll_step, site_names

RELATIVE = 1e-5


def split_items(trace, split):
    ids_p, ids_a = trace[f"{split}.prompt_ids"].tolist(), trace[f"{split}.answer_ids"].tolist()
    items, pp, pa = [], 0, 0
    for lp, la, t in zip(trace[f"{split}.prompt_lengths"].tolist(), trace[f"{split}.answer_lengths"].tolist(),
                         trace[f"{split}.task"].tolist()):
        items.append((ids_p[pp:pp + lp], ids_a[pa:pa + la], t))
        pp, pa = pp + lp, pa + la
    return items


@pytest.fixture(scope="module")
def demo(tmp_path_factory, abmll_bin):
    import subprocess
    root = tmp_path_factory.mktemp("reference")
    assert subprocess.run([abmll_bin, "make-demo", "--out", root / "demo"], capture_output=True).returncode == 0
    return root


@pytest.mark.parametrize("family,second_order,samples,first_nll_only", [
    ("factor", False, 1, False), ("factor", True, 2, True),
    ("weight-linear", False, 1, False), ("weight-linear", True, 2, True), ("weight-softplus", True, 2, False)])
def test_step_matches_reference(demo, run_abmll, source_dir, family, second_order, samples, first_nll_only):
    out = demo / f"run-{family}-{second_order}-{samples}"
    weight_scale = family.split("-")[1] if family.startswith("weight") else "linear"
    # The weight family takes smaller inner steps: at 5e-2 a step pulls entries of S_q close to 0 (with a linear
    # scale), the KL grows to thousands and second-order float32 gradients lose digits on both sides.
    inner_lr = 1e-2 if family.startswith("weight") else 5e-2
    family_keys = ["--set", f"posterior.family={family.split('-')[0]}",
                   "--set", f"posterior.weight_scale={weight_scale}"]
    step = 2  # the second step: theta has moved from its initialisation (B means no longer zero)
    result = run_abmll(
        "meta-train", "--config", source_dir / "configs/demo.yaml", "--out", out, "--max-steps", step,
        "--trace-step", step,
        "--set", f"model.path={demo / 'demo/model'}", "--set", f"data.path={demo / 'demo/data'}",
        "--set", f"data.partition={demo / 'demo/data/partitions/demo.json'}",
        "--set", "data.shots=3", "--set", "data.query_size=2", "--set", "outer.tasks_per_batch=2",
        "--set", "inner.steps=2", "--set", f"inner.samples={samples}", "--set", f"inner.lr={inner_lr}",
        "--set", f"inner.first_step_nll_only={str(first_nll_only).lower()}",
        "--set", f"outer.second_order={str(second_order).lower()}",
        "--set", "outer.beta=0.05", "--set", "outer.gamma=0.01", "--set", "posterior.init_scale=0.05", *family_keys)
    assert result.returncode == 0, result.stderr
    trace_path = out / f"trace-step-{step}.safetensors"
    trace = load_file(str(trace_path))
    with safe_open(str(trace_path), "pt") as f:
        meta = f.metadata()

    config = json.loads((demo / "demo/model/config.json").read_text())
    # Eager attention: twice differentiable (for second order), and a different computation from abmll's SDPA.
    model = AutoModelForCausalLM.from_pretrained(demo / "demo/model", dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    for p in model.parameters():
        p.requires_grad_(False)
    sites = site_names(config["num_hidden_layers"], ["q_proj", "v_proj"])
    parts = WEIGHT_PARTS if family.startswith("weight") else PARTS
    theta = {s: {p: trace[f"theta.{s}.{p}"].clone().requires_grad_(True) for p in parts} for s in sites}
    support, query = split_items(trace, "support"), split_items(trace, "query")
    cfg = {"scale": 8 / 4, "floor": 2.0611536224385579e-09, "samples": samples, "second_order": second_order,
           "inner_steps": 2, "inner_lr": inner_lr, "first_step_nll_only": first_nll_only, "beta": 0.05, "gamma": 0.01,
           "num_train_tasks": len(json.loads((demo / "demo/data/partitions/demo.json").read_text())["train"]),
           "hyper_mean_std": 1.0, "hyper_a0": 1.0, "hyper_b0": 0.01,
           "family": family.split("-")[0], "weight_scale": weight_scale}
    losses, grads = abmll_step(model, theta, sites, support, query, 2, json.loads(meta["noise_seeds"]), cfg)

    print(f"{family}: scale floor hits in the step's KLs: {meta.get('scale_floor_hits')}")
    for key in ["outer_loss", "query_nll", "kl", "hyperprior"]:
        got = float(meta[key])
        print(f"{key}: abmll {got:.9g} reference {losses[key]:.9g}")
        assert got == pytest.approx(losses[key], rel=RELATIVE, abs=1e-7), key
    assert json.loads(meta["support_nll"]) == pytest.approx(losses["support_nll"], rel=RELATIVE)
    # Per tensor, the relative L2 error: the two sides sum the same float32 terms in different orders (batched
    # and padded here, one sequence at a time there), which leaves errors of a few float32 ulps of the largest terms.
    worst = 0.0
    for s in sites:
        for p in parts:
            ours, ref = trace[f"grad.{s}.{p}"].double(), grads[s][p].double()
            error = ((ours - ref).norm() / ref.norm()).item() if ref.norm() > 0 else ours.norm().item()
            print(f"{s}.{p}: relative error {error:.3g}")
            worst = max(worst, error)
            assert error <= RELATIVE, (s, p, error)
    print(f"largest relative gradient error: {worst:.3g}")
