"""A meta-training step or a task's adaptation that runs out of memory is retried with more layers recomputed in
backward (model.recompute_on_oom) and gives the results of a run that recomputed them from the start; option scoring
that runs out of memory is retried with smaller forwards (eval.forward_tokens) and gives the scores of a run that
started with them. The shortage is real: the process's address space is capped (RLIMIT_AS) between the peaks of the
two settings (every layer recomputed or none; small or large forwards), both measured here first, so LibTorch's
allocator itself refuses."""
import json
import pathlib
import random
import resource
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file

from make_model_fixtures import write_byte_tokenizer

LOSS_FIELDS = ["step", "outer_loss", "query_nll", "kl", "hyperprior", "support_nll_first", "support_nll_last",
               "grad_norm", "lr"]
LAYERS = 4


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A 4-layer Llama of random weights (model.random_weights) whose layers' activations are large for their
    compute (hidden size 32, MLP width 8192), and tasks of 250-byte inputs (byte-level tokens)."""
    root = tmp_path_factory.mktemp("recompute_on_oom")
    model = root / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu", "rms_norm_eps": 1e-5,
        "hidden_size": 32, "intermediate_size": 8192, "num_hidden_layers": LAYERS, "num_attention_heads": 4,
        "num_key_value_heads": 2, "vocab_size": 256, "max_position_embeddings": 512, "rope_theta": 10000.0,
        "tie_word_embeddings": False, "torch_dtype": "float32"}))
    write_byte_tokenizer(model)
    data = root / "tasks"
    data.mkdir()
    rng = random.Random(0)
    names = [f"long{t}" for t in range(5)]
    for name in names:
        rows = [{"input": " ".join(rng.choice("abcdefgh") for _ in range(125)), "output": rng.choice(["yes", "no"])}
                for _ in range(40)]
        (data / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "partition.json").write_text(json.dumps({"train": names[:4], "dev": [], "test": names[4:]}))
    config = root / "config.yaml"
    config.write_text(f"""
method: abmll
run: {{seed: 5, device: cpu, checkpoint_every: 0}}
model: {{path: {json.dumps(str(model))}, max_length: 256, random_weights: true}}
lora: {{rank: 4, alpha: 8, targets: [q_proj, v_proj]}}
data: {{format: jsonl, path: {json.dumps(str(data))}, partition: {json.dumps(str(data / "partition.json"))},
        shots: 8, query_size: 8}}
inner: {{steps: 1, lr: 0.01, samples: 1}}
outer: {{steps: 2, tasks_per_batch: 2, lr: 0.001, warmup_steps: 1}}
""")
    return {"root": root, "config": config}


def run(abmll_bin, args, address_space_mb=None):
    """abmll with `args`; returns (returncode, stderr, peak address space in MB), the peak read from /proc while it
    runs (VmPeak, the kernel's high-water mark)."""

    def cap():
        limit = address_space_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.Popen([abmll_bin, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={"OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "1", "PATH": "/usr/bin:/bin"},
                            preexec_fn=cap if address_space_mb else None)
    peak_kb = 0
    status = pathlib.Path(f"/proc/{proc.pid}/status")
    deadline = time.time() + 600
    while proc.poll() is None and time.time() < deadline:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmPeak:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    _, stderr = proc.communicate(timeout=60)
    return proc.returncode, stderr, peak_kb // 1024


def run_meta_train(abmll_bin, config, out, settings, address_space_mb=None):
    """meta-train for 2 steps with `settings` (--set)."""
    return run(abmll_bin, ["meta-train", "--config", config, "--out", out, *sum((["--set", s] for s in settings), [])],
               address_space_mb)


def losses(out):
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: line[k] for k in LOSS_FIELDS} for line in lines]


@pytest.fixture(scope="module")
def trained(workspace, abmll_bin):
    """A 2-step meta-training run that recomputes every layer, and its peak address space in MB."""
    out = workspace["root"] / "recomputed"
    rc, err, peak = run_meta_train(abmll_bin, workspace["config"], out, ["model.gradient_checkpointing=true"])
    assert rc == 0, err
    return out, peak


def test_step_out_of_memory_is_retried_with_more_recomputation(workspace, trained, abmll_bin):
    root, config = workspace["root"], workspace["config"]
    _, peak_recomputed = trained
    rc, err, peak_kept = run_meta_train(abmll_bin, config, root / "kept", ["model.gradient_checkpointing=false"])
    assert rc == 0, err
    # The shape (narrow, with a wide MLP) makes every layer's activations ~250 MB: far above the ~100 MB by which a
    # process's peak address space varies with what started it.
    assert peak_kept - peak_recomputed > 400, (peak_recomputed, peak_kept)
    assert losses(root / "kept") == losses(root / "recomputed")
    limit = (peak_recomputed + peak_kept) // 2

    rc, err, _ = run_meta_train(abmll_bin, config, root / "capped", ["model.gradient_checkpointing=false"], limit)
    assert rc == 0, err
    assert f"step 1 ran out of memory on cpu with {LAYERS} of {LAYERS} layers keeping their activations" in err
    assert "model.checkpointed_layers" in err
    assert losses(root / "capped") == losses(root / "recomputed")

    rc, err, _ = run_meta_train(abmll_bin, config, root / "refused",
                                ["model.gradient_checkpointing=false", "model.recompute_on_oom=false"], limit)
    assert rc == 1, err
    message = err.strip().splitlines()[-1]
    assert (f"error: out of memory in step 1 on cpu with {LAYERS} of {LAYERS} layers keeping their activations"
            in message)
    assert "model.checkpointed_layers larger or -1 for all" in message
    assert "ran out of memory" not in err and "Traceback" not in err


def test_adaptation_follows_the_policy_and_retries_out_of_memory(workspace, trained, abmll_bin):
    """adapt (and evaluate, through the same function) runs its inner steps under the config's recomputation policy,
    and retries an adaptation that runs out of memory with more of it, giving the same posterior."""
    root, config = workspace["root"], workspace["config"]
    checkpoint = trained[0] / "checkpoints/step-2.safetensors"

    def adapt(out, checkpointing, address_space_mb=None):
        return run(abmll_bin, ["adapt", "--config", config, "--checkpoint", checkpoint, "--task", "long4", "--out",
                               root / out, "--set", "data.shots=16", "--set", "inner.eval_steps=1", "--set",
                               f"model.gradient_checkpointing={checkpointing}"], address_space_mb)

    rc, err, peak_recomputed = adapt("adapt-recomputed", "true")
    assert rc == 0, err
    rc, err, peak_kept = adapt("adapt-kept", "false")
    assert rc == 0, err
    assert peak_kept - peak_recomputed > 400, (peak_recomputed, peak_kept)  # the policy takes effect
    rc, err, _ = adapt("adapt-capped", "false", (peak_recomputed + peak_kept) // 2)
    assert rc == 0, err
    assert (f"task long4's adaptation ran out of memory on cpu with {LAYERS} of {LAYERS} layers keeping their "
            "activations; retrying it") in err
    reference = load_file(str(root / "adapt-recomputed/phi.safetensors"))
    for out in ("adapt-kept", "adapt-capped"):
        phi = load_file(str(root / out / "phi.safetensors"))
        assert phi.keys() == reference.keys() and all(torch.equal(phi[k], reference[k]) for k in phi), out


def test_scoring_out_of_memory_is_retried_with_smaller_forwards(workspace, abmll_bin):
    """Option scoring that runs out of memory is retried with forwards of half as many tokens (eval.forward_tokens)
    until it fits, giving the scores of a run that started there. 96 queries of ~250 tokens, the base model."""
    root, config = workspace["root"], workspace["config"]
    rng = random.Random(1)
    queries = root / "queries.jsonl"
    queries.write_text("".join(json.dumps({"input": " ".join(rng.choice("abcdefgh") for _ in range(125))}) + "\n"
                               for _ in range(96)))

    def predict(out, forward_tokens, address_space_mb=None):
        rc, err, peak = run(abmll_bin, ["predict", "--config", config, "--set", "method=pretrained", "--task", "long4",
                                        "--input", queries, "--out", root / out, "--set",
                                        f"eval.forward_tokens={forward_tokens}"], address_space_mb)
        probs = ([json.loads(line)["probs"] for line in (root / out / "predictions.jsonl").open()]
                 if rc == 0 else None)
        return rc, err, peak, probs

    rc, err, peak_large, large = predict("scored-large", 16384)
    assert rc == 0, err
    rc, err, peak_small, small = predict("scored-small", 2048)
    assert rc == 0, err
    assert peak_large - peak_small > 400, (peak_small, peak_large)  # forwards of 64 rows against 8
    rc, err, _, capped = predict("scored-capped", 16384, (peak_small + peak_large) // 2)
    assert rc == 0, err
    assert "scoring ran out of memory on cpu with forwards of 16384 tokens; retrying with 8192" in err
    worst = max(abs(a - b) for p, q in zip(capped, small) for a, b in zip(p, q))
    print(f"peak address space {peak_large} MB (forwards of 16384 tokens) vs {peak_small} MB (2048); capped at "
          f"{(peak_small + peak_large) // 2} MB: largest probability difference, retried against started small, "
          f"{worst:.3g}")
    assert len(capped) == 96 and worst <= 1e-6
    assert max(abs(a - b) for p, q in zip(large, small) for a, b in zip(p, q)) <= 1e-6
