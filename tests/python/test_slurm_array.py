"""scripts/slurm/array.sbatch run as SLURM runs a job-array task (SLURM_ARRAY_TASK_ID set, the batch shell signalled
with SIGTERM before the time limit, `--signal=B:TERM@300`), on a job of the shape scripts/reproduce.sh writes:
`{ test -f CKPT || abmll meta-train ...; } && { test -f REPORT || abmll evaluate ...; }`. The signal must reach
abmll itself, which saves a checkpoint and exits 143, the job stopping there with that status; bash alone running
the compound command would die and leave abmll running unsignalled."""
import json
import signal
import subprocess
import time

import pytest


@pytest.fixture(scope="module")
def demo(tmp_path_factory, abmll_bin):
    root = tmp_path_factory.mktemp("slurm")
    assert subprocess.run([abmll_bin, "make-demo", "--out", root / "demo"], capture_output=True).returncode == 0
    return root


def test_sigterm_to_the_batch_shell_reaches_abmll(demo, abmll_bin, source_dir):
    run = demo / "run"
    sets = (f"--set model.path={demo / 'demo/model'} --set data.path={demo / 'demo/data'} "
            f"--set data.partition={demo / 'demo/data/partitions/demo.json'}")
    config = source_dir / "configs/demo.yaml"
    job = (f"{{ test -f {run}/checkpoints/step-5000.safetensors || {abmll_bin} meta-train --config {config} {sets} "
           f"--set outer.steps=5000 --set run.checkpoint_every=0 --out {run} --resume; }} && "
           f"{{ test -f {demo}/report.json || echo evaluation started; }}")
    jobs = demo / "jobs.txt"
    jobs.write_text(job + "\n")
    env = dict(__import__("os").environ, SLURM_ARRAY_TASK_ID="1")
    batch = subprocess.Popen(["bash", source_dir / "scripts/slurm/array.sbatch", jobs], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        time.sleep(0.01)
    batch.send_signal(signal.SIGTERM)  # SLURM signals the batch shell only (B:)
    stdout, stderr = batch.communicate(timeout=120)
    assert batch.returncode == 143, stderr
    steps = len(metrics.read_text().splitlines())
    assert steps < 5000
    assert (run / f"checkpoints/step-{steps}.safetensors").exists(), stderr  # saved at the step it stopped after
    assert json.loads((run / "report.json").read_text())["results"]["status"] == "interrupted"
    assert "evaluation started" not in stdout  # the job stopped at the interrupted command
    # Nothing of the job is left running once the batch shell has exited.
    alive = subprocess.run(["pgrep", "-f", f"--out {run} --resume"], capture_output=True, text=True)
    assert alive.stdout.strip() == "", alive.stdout
