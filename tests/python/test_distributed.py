"""Data-parallel `abmll meta-train` over c10d with Gloo on CPU, ranks launched as torchrun would (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT) over loopback, on the embedded demo model:
- 2 ranks with 2 tasks each give the losses and theta of 1 process with 4 tasks (float tolerance), for both
  variational families (each task draws its noise from its own stream, whichever rank runs it);
- a 2-rank run resumed by 1 process continues as the uninterrupted run;
- validation split over 2 ranks gives the figures of 1 process;
- `evaluate` over 2 or 3 ranks writes the report and predictions of 1 process, a 2-rank evaluation stopped by a
  signal to one rank is resumed by 1 process to the same report, and one that loses a rank names it;
- a rank that dies or hangs makes the other exit within the timeout, naming it;
- bad launches are refused with exit code 2."""
import json
import os
import signal
import socket
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file

LOSS_FIELDS = ["outer_loss", "query_nll", "kl", "hyperprior", "support_nll_first", "support_nll_last", "grad_norm",
               "lr"]
RELATIVE = 1e-5  # float32 sums in other orders (per-rank batches, padding), amplified a little by 4 AdamW steps
LAUNCH_VARIABLES = ["RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS",
                    "SLURM_LOCALID", "SLURM_JOB_NODELIST", "SLURM_NODELIST", "SLURM_JOB_ID"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARIABLES}
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture(scope="module")
def demo(tmp_path_factory, abmll_bin, source_dir):
    root = tmp_path_factory.mktemp("distributed")
    assert subprocess.run([abmll_bin, "make-demo", "--out", root / "demo"], capture_output=True).returncode == 0
    d = root / "demo"
    args = ["meta-train", "--config", str(source_dir / "configs/demo.yaml"),
            "--set", f"model.path={d / 'model'}", "--set", f"data.path={d / 'data'}",
            "--set", f"data.partition={d / 'data/partitions/demo.json'}",
            "--set", "data.shots=4", "--set", "data.query_size=4", "--set", "inner.steps=2",
            "--set", "outer.tasks_per_batch=4", "--set", "outer.steps=4", "--set", "run.checkpoint_every=2"]
    return {"root": root, "args": args, "bin": abmll_bin}


def start_ranks(demo, world, out, extra=(), timeout_s=20, port=None, env_per_rank=None, command="meta-train"):
    """Starts `world` ranks of `command` (torchrun's variables) with the demo's settings; returns the Popen
    objects."""
    port = port or free_port()
    procs = []
    for rank in range(world):
        env = clean_env(RANK=rank, WORLD_SIZE=world, LOCAL_RANK=rank, MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        if env_per_rank:
            env.update({k: str(v) for k, v in env_per_rank(rank).items()})
        cmd = [demo["bin"], command, *demo["args"][1:], "--out", str(out), "--set", f"run.dist_timeout_s={timeout_s}",
               *extra]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def finish(procs, timeout=240):
    results = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        results.append((p.returncode, err))
    return results


def run_single(demo, out, extra=()):
    result = subprocess.run([demo["bin"], *demo["args"], "--out", str(out), *extra], env=clean_env(),
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    return result


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def compare_runs(a_dir, b_dir, checkpoint_step):
    """Largest relative differences of the metrics and of theta (and AdamW's moments) at `checkpoint_step`."""
    ma, mb = metrics(a_dir), metrics(b_dir)
    assert [m["step"] for m in ma] == [m["step"] for m in mb]
    worst_metric = 0.0
    for x, y in zip(ma, mb):
        for key in LOSS_FIELDS:
            worst_metric = max(worst_metric, abs(x[key] - y[key]) / max(abs(y[key]), 1e-12))
    ta = load_file(str(a_dir / f"checkpoints/step-{checkpoint_step}.safetensors"))
    tb = load_file(str(b_dir / f"checkpoints/step-{checkpoint_step}.safetensors"))
    assert sorted(ta) == sorted(tb)
    worst_tensor, worst_name = 0.0, ""
    for name in ta:
        if not name.startswith(("theta.", "adamw.")):
            continue
        scale = tb[name].double().abs().max().item()
        diff = (ta[name].double() - tb[name].double()).abs().max().item() / max(scale, 1e-30)
        if diff > worst_tensor:
            worst_tensor, worst_name = diff, name
    return worst_metric, worst_tensor, worst_name


# Per variational family, the settings added to the demo's: the weight family with the paper's (linear) scale, and
# smaller inner steps so that S stays away from zero (as in test_abmll_reference.py).
FAMILY_SETTINGS = {
    "factor": [],
    "weight": ["--set", "posterior.family=weight", "--set", "posterior.weight_scale=linear", "--set", "inner.lr=0.02"],
}


@pytest.fixture(scope="module")
def single(demo):
    out = demo["root"] / "single"
    run_single(demo, out)
    return out


@pytest.mark.parametrize("family", ["factor", "weight"])
def test_two_ranks_match_one_process(demo, single, family):
    settings = FAMILY_SETTINGS[family]
    if family != "factor":
        single = demo["root"] / f"single-{family}"
        run_single(demo, single, extra=settings)
    out = demo["root"] / f"two-{family}"
    results = finish(start_ranks(demo, 2, out, extra=settings))
    for rank, (code, err) in enumerate(results):
        assert code == 0, f"rank {rank}: {err}"
    assert "rank 0 of 2" in results[0][1]
    # The run is of the family asked for: its theta has that family's parameters.
    names = load_file(str(out / "checkpoints/step-4.safetensors")).keys()
    assert any(n.startswith("theta.") and n.endswith(".b_sigma" if family == "weight" else ".a_rho") for n in names)
    worst_metric, worst_tensor, name = compare_runs(out, single, 4)
    print(f"{family}: largest relative difference, 2 ranks vs 1 process: metrics {worst_metric:.3g}, "
          f"checkpoint tensors {worst_tensor:.3g} ({name})")
    assert worst_metric < RELATIVE
    assert worst_tensor < RELATIVE
    # The runs are not trivially equal: theta moved from its initialisation.
    first = load_file(str(single / "checkpoints/step-2.safetensors"))
    last = load_file(str(single / "checkpoints/step-4.safetensors"))
    assert any((first[k] - last[k]).abs().max() > 1e-4 for k in first if k.startswith("theta."))
    report = json.loads((out / "report.json").read_text())
    assert report["results"]["ranks"] == 2 and report["results"]["steps_done"] == 4


def test_two_rank_run_resumed_by_one_process(demo, single):
    out = demo["root"] / "two-then-one"
    # Step 2 profiled on both ranks (each writes its own table and trace); the results stay those of one process.
    results = finish(start_ranks(demo, 2, out, extra=["--max-steps", "2", "--profile-step", "2"]))
    assert all(code == 0 for code, _ in results), results
    assert [m["step"] for m in metrics(out)] == [1, 2]
    assert sorted(p.name for p in (out / "profile").iterdir()) == [
        f"steps-2-2.rank-{r}.{kind}" for r in (0, 1) for kind in ("ops.tsv", "trace.json")]
    run_single(demo, out, extra=["--resume"])
    worst_metric, worst_tensor, name = compare_runs(out, single, 4)
    print(f"largest relative difference, 2 ranks then 1 vs 1 throughout: metrics {worst_metric:.3g}, "
          f"checkpoint tensors {worst_tensor:.3g} ({name})")
    assert worst_metric < RELATIVE
    assert worst_tensor < RELATIVE


def wait_for_lines(path, lines, procs, limit=120):
    """Waits until `path` exists with at least `lines` complete lines, every rank still running (one that exits
    fails the test with its output)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= lines:
            return
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    raise AssertionError(f"{path} did not reach {lines} lines within {limit} s")


def lose_rank(procs, victim, survivor, ready, how="kill", timeout_s=5):
    """Once `ready()` returns, kills (SIGKILL) or stops (SIGSTOP) rank `victim` and waits for rank `survivor`;
    returns its stderr and the seconds it took to exit. Every rank is reaped, whatever happens."""
    try:
        ready()
        os.kill(procs[victim].pid, signal.SIGKILL if how == "kill" else signal.SIGSTOP)
        lost_at = time.monotonic()
        _, err = procs[survivor].communicate(timeout=4 * timeout_s + 30)
        return err, time.monotonic() - lost_at
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()


@pytest.mark.parametrize("victim,how", [(1, "kill"), (0, "kill"), (1, "hang")])
def test_lost_rank_is_named_within_the_timeout(demo, victim, how):
    timeout_s = 5
    out = demo["root"] / f"lost-{victim}-{how}"
    procs = start_ranks(demo, 2, out, extra=["--set", "outer.steps=100000"], timeout_s=timeout_s)
    survivor = procs[1 - victim]
    err, waited = lose_rank(procs, victim, 1 - victim, lambda: wait_for_lines(out / "metrics.jsonl", 1, procs), how,
                            timeout_s)
    print(f"rank {1 - victim} exited {waited:.1f} s after rank {victim} was {'killed' if how == 'kill' else 'stopped'}"
          f" (timeout {timeout_s} s): {err.strip().splitlines()[-1]}")
    assert survivor.returncode == 1, err
    assert f"rank {victim}" in err.splitlines()[-1], err
    # A death is seen at once (the connection closes), a hang after the collective's timeout; diagnosing it may take
    # one more store timeout when rank 0 is the one lost.
    assert waited < 2 * timeout_s + 15


def test_bad_launches_exit_2(demo):
    out = demo["root"] / "bad"
    base = [demo["bin"], *demo["args"], "--out", str(out)]
    cases = [
        (clean_env(RANK=2, WORLD_SIZE=2, MASTER_ADDR="127.0.0.1", MASTER_PORT=29500), [], "RANK='2' is not below"),
        (clean_env(RANK=0, WORLD_SIZE="two"), [], "WORLD_SIZE='two'"),
        (clean_env(RANK=0, WORLD_SIZE=2, MASTER_ADDR="127.0.0.1", MASTER_PORT=99999), [], "MASTER_PORT='99999'"),
        (clean_env(SLURM_PROCID=0, SLURM_NTASKS=2, SLURM_LOCALID=0, SLURM_JOB_NODELIST="gpu[01-"), [],
         "SLURM_JOB_NODELIST"),
        (clean_env(), ["--dist-backend", "mpi"], "--dist-backend 'mpi'"),
    ]
    for env, extra, expected in cases:
        result = subprocess.run(base + extra, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, (expected, result.stderr)
        assert expected in result.stderr, result.stderr

    # Ranks that disagree on WORLD_SIZE: the one that differs from rank 0 is refused (2); rank 0 cannot set up its
    # group without it and fails within the timeout.
    procs = start_ranks(demo, 2, out, timeout_s=5, env_per_rank=lambda r: {"WORLD_SIZE": 2 if r == 0 else 3})
    (code0, err0), (code1, err1) = finish(procs, timeout=60)
    assert code1 == 2 and "WORLD_SIZE mismatch" in err1, err1
    assert code0 in (1, 2), err0
    # Fewer tasks per meta-batch than ranks.
    procs = start_ranks(demo, 2, out, extra=["--set", "outer.tasks_per_batch=1"], timeout_s=10)
    for code, err in finish(procs, timeout=60):
        assert code == 2 and "below the number of ranks" in err, err


def test_rank_that_never_starts_fails_the_rendezvous_within_the_timeout(demo):
    out = demo["root"] / "alone"
    env = clean_env(RANK=0, WORLD_SIZE=2, MASTER_ADDR="127.0.0.1", MASTER_PORT=free_port())
    start = time.monotonic()
    result = subprocess.run([demo["bin"], *demo["args"], "--out", str(out), "--set", "run.dist_timeout_s=3"],
                            env=env, capture_output=True, text=True, timeout=120)
    waited = time.monotonic() - start
    print(f"rank 0 alone gave up after {waited:.1f} s: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 1, result.stderr
    assert "rendezvous" in result.stderr and "1 of 2 ranks joined" in result.stderr, result.stderr
    assert "missing: rank 1" in result.stderr, result.stderr
    assert waited < 3 + 20


def test_two_ranks_validate_as_one_process(demo):
    """Validation split over the ranks (rank 0 two of three tasks, rank 1 one) and combined: the figures of one
    process, exactly at step 0 (the same theta everywhere) and to float tolerance after training steps."""
    settings = ["--set", "validation.every=2", "--set", "validation.max_tasks=3", "--set", "eval.samples=3"]
    single = demo["root"] / "single-validated"
    run_single(demo, single, extra=settings)
    out = demo["root"] / "two-validated"
    results = finish(start_ranks(demo, 2, out, extra=settings))
    assert all(code == 0 for code, _ in results), results
    read = lambda run: [json.loads(line) for line in (run / "validation.jsonl").read_text().splitlines()]
    one, two = read(single), read(out)
    assert [v["step"] for v in one] == [v["step"] for v in two] == [0, 2, 4]
    assert all(v["tasks"] == 3 for v in one + two)
    keys = ["queries", "accuracy", "ece", "nll", "brier", "mean_task_accuracy", "per_task_accuracy",
            "support_nll_before", "support_nll_after"]
    assert {k: one[0][k] for k in keys} == {k: two[0][k] for k in keys}
    worst = 0.0
    for a, b in zip(one[1:], two[1:]):
        assert a["per_task_accuracy"].keys() == b["per_task_accuracy"].keys()
        for k in ["accuracy", "ece", "nll", "brier", "support_nll_before", "support_nll_after"]:
            worst = max(worst, abs(a[k] - b[k]) / max(abs(a[k]), 1e-12))
    print(f"validation after training steps, 2 ranks vs 1 process: largest relative difference {worst:.3g}")
    assert worst < 1e-4
    assert [v["best"] for v in one] == [v["best"] for v in two]
    assert (out / "checkpoints" / "best.safetensors").exists()  # written by rank 0


def evaluate_single(demo, report, extra):
    result = subprocess.run([demo["bin"], "evaluate", *demo["args"][1:], "--out", str(report), *extra],
                            env=clean_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def evaluation(report):
    """The report's figures and the predictions beside it."""
    results = json.loads(report.read_text())["results"]
    return results["per_task"], results["aggregate"], (report.parent / "predictions.jsonl").read_text()


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_evaluate_as_one_process(demo, single, world):
    """The held-out tasks split over the ranks in rounds (3 ranks: 3 tasks, then 1) give, on rank 0, the report and
    predictions of one process to the last digit: each task is adapted and scored as one process would."""
    settings = ["--checkpoint", str(single / "checkpoints/step-4.safetensors"), "--set", "eval.samples=3"]
    one = demo["root"] / "evaluate-one" / "REPORT.json"
    if not one.exists():
        evaluate_single(demo, one, settings)
    out = demo["root"] / f"evaluate-{world}" / "REPORT.json"
    results = finish(start_ranks(demo, world, out, extra=settings, command="evaluate"))
    for rank, (code, err) in enumerate(results):
        assert code == 0, f"rank {rank}: {err}"
    assert results[0][1].count("queries, accuracy") == 4  # rank 0 logs every rank's tasks
    assert evaluation(out) == evaluation(one)
    report = json.loads(out.read_text())
    assert report["results"]["ranks"] == world and report["results"]["n_tasks"] == 4
    assert not (out.parent / "REPORT.tasks.jsonl").exists()


def test_two_rank_evaluation_interrupted_resumed_by_one_process(demo, single):
    """SIGTERM to rank 1 alone: both ranks finish the round (one task each), rank 0 records both, and both exit 143
    without a report; one process resumes with the two other tasks and writes the uninterrupted report."""
    settings = ["--checkpoint", str(single / "checkpoints/step-4.safetensors"), "--set", "eval.samples=30",
                "--set", "inner.eval_steps=20"]
    one = demo["root"] / "evaluate-slow-one" / "REPORT.json"
    evaluate_single(demo, one, settings)
    out = demo["root"] / "evaluate-slow-two" / "REPORT.json"
    record = out.parent / "REPORT.tasks.jsonl"
    procs = start_ranks(demo, 2, out, extra=settings, command="evaluate")
    # Rank 0 creates the record once both ranks have joined (and installed their signal handlers).
    wait_for_lines(record, 0, procs)
    procs[1].send_signal(signal.SIGTERM)
    results = finish(procs)
    assert [code for code, _ in results] == [143, 143], results
    assert "interrupted after 2 of 4 tasks" in results[0][1]
    assert not out.exists() and len(record.read_text().splitlines()) == 2
    resumed = evaluate_single(demo, out, [*settings, "--resume"])
    assert "--resume: 2 finished tasks" in resumed.stderr
    assert resumed.stderr.count("queries, accuracy") == 2
    assert evaluation(out) == evaluation(one)


def test_evaluation_rank_lost_mid_evaluation_is_named(demo, single):
    """A rank killed while the ranks evaluate: the survivor (rank 0) exits within the timeout naming it, and what was
    finished before stays recorded for --resume."""
    timeout_s = 5
    out = demo["root"] / "evaluate-lost" / "REPORT.json"
    slow = ["--checkpoint", str(single / "checkpoints/step-4.safetensors"), "--set", "eval.samples=30",
            "--set", "inner.eval_steps=20"]
    procs = start_ranks(demo, 2, out, extra=slow, timeout_s=timeout_s, command="evaluate")
    record = out.parent / "REPORT.tasks.jsonl"
    # Killed during the second round, once the first is recorded.
    err, waited = lose_rank(procs, 1, 0, lambda: wait_for_lines(record, 2, procs), timeout_s=timeout_s)
    print(f"rank 0 exited {waited:.1f} s after rank 1 was killed: {err.strip().splitlines()[-1]}")
    assert procs[0].returncode == 1, err
    assert "rank 1" in err.splitlines()[-1] and "evaluation round 2" in err.splitlines()[-1], err
    assert waited < 2 * timeout_s + 15
    assert not out.exists() and len(record.read_text().splitlines()) == 2
