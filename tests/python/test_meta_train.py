"""`abmll meta-train` end to end on a tiny Llama and synthetic JSONL tasks: the run folder it writes, the PEFT export
(loaded by PEFT on the transformers model), exact resume (after --max-steps and after SIGTERM), refusals, and the
`weight` variational family through meta-train, adapt and evaluate."""
import json
import pathlib
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

from interruption import sigterm_after_lines
from make_model_fixtures import write_byte_tokenizer

LOSS_FIELDS = ["step", "outer_loss", "query_nll", "kl", "hyperprior", "support_nll_first", "support_nll_last",
               "grad_norm", "lr"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("meta_train")
    model_dir = root / "model"
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, vocab_size=256,
                                         max_position_embeddings=256)).eval()
    model.save_pretrained(model_dir, safe_serialization=True)
    write_byte_tokenizer(model_dir)

    # Tasks: "is the word's first letter in the task's set?" with yes/no answers; five training tasks, two held out.
    data = root / "tasks"
    data.mkdir()
    words = ["apple", "brick", "cloud", "dune", "ember", "frost", "grain", "haze", "ivory", "jade", "kite", "lemon",
             "moss", "nectar", "onyx", "pearl", "quartz", "reef", "slate", "thorn"]
    names = []
    for t in range(7):
        letters = set("abcdefghijklmnopqrst"[t::3])
        rows = [{"input": f"word: {w}", "output": "yes" if w[0] in letters else "no"} for w in words * 2]
        (data / f"rule{t}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        names.append(f"rule{t}")
    (data / "partition.json").write_text(json.dumps({"train": names[:5], "dev": [], "test": names[5:]}))
    config = root / "config.yaml"
    config.write_text(f"""
method: abmll
run: {{seed: 3, device: cpu, checkpoint_every: 2}}
model: {{path: {json.dumps(str(model_dir))}, max_length: 64}}
lora: {{rank: 2, alpha: 4, targets: [q_proj, v_proj]}}
posterior: {{init_scale: 0.01}}
data: {{format: jsonl, path: {json.dumps(str(data))}, partition: {json.dumps(str(data / "partition.json"))},
        shots: 4, query_size: 4}}
inner: {{steps: 2, lr: 0.05, samples: 1}}
outer: {{steps: 6, tasks_per_batch: 2, lr: 0.01, warmup_steps: 1, beta: 0.001, gamma: 0.001}}
""")
    return {"root": root, "model": model_dir, "config": config}


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def loss_view(lines):
    return [{k: line[k] for k in LOSS_FIELDS} for line in lines]


@pytest.fixture(scope="module")
def full_run(workspace, abmll_bin):
    out = workspace["root"] / "full"
    result = subprocess.run([abmll_bin, "meta-train", "--config", workspace["config"], "--out", out],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return out


def test_run_folder(full_run):
    lines = metrics(full_run)
    assert [line["step"] for line in lines] == [1, 2, 3, 4, 5, 6]
    for line in lines:
        for key in LOSS_FIELDS + ["tokens_per_s", "elapsed_s", "peak_memory_mb"]:
            assert isinstance(line[key], (int, float)) and line[key] == line[key], (key, line)
    assert lines[0]["kl"] == pytest.approx(0.0, abs=1e-6) or lines[0]["kl"] > 0
    assert sorted(p.name for p in (full_run / "checkpoints").iterdir()) == [
        "step-2.safetensors", "step-4.safetensors", "step-6.safetensors"]
    report = json.loads((full_run / "report.json").read_text())
    assert report["results"]["status"] == "completed" and report["results"]["steps_done"] == 6
    assert (full_run / "config.yaml").exists()


def test_peft_loads_the_exported_adapter(full_run, workspace, run_abmll, tmp_path):
    from peft import PeftModel

    adapter = full_run / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 2 and config["lora_alpha"] == 4
    assert sorted(config["target_modules"]) == ["q_proj", "v_proj"]
    base = LlamaForCausalLM.from_pretrained(workspace["model"], torch_dtype=torch.float32).eval()
    model = PeftModel.from_pretrained(base, adapter).eval()
    ids = [5, 77, 120, 9, 200, 31]
    with torch.no_grad():
        want = model(input_ids=torch.tensor([ids])).logits[0]
    out = tmp_path / "logits.safetensors"
    result = run_abmll("logits", "--model", workspace["model"], "--adapter", adapter, "--ids",
                       ",".join(map(str, ids)), "--out", out)
    assert result.returncode == 0, result.stderr
    got = load_file(str(out))["logits"]
    diff = (got - want).abs().max().item()
    print(f"PEFT vs abmll logits with the exported adapter: max abs diff {diff:.3g}")
    assert diff <= 1e-4
    # The adapter is not the identity: theta's B means moved away from PEFT's zero initialisation.
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    assert any(name.endswith("lora_B.weight") and t.abs().max() > 0 for name, t in weights.items())


def test_resume_after_max_steps_continues_exactly(full_run, workspace, abmll_bin):
    out = workspace["root"] / "split"
    first = subprocess.run([abmll_bin, "meta-train", "--config", workspace["config"], "--out", out,
                            "--max-steps", "3"], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    assert len(metrics(out)) == 3
    second = subprocess.run([abmll_bin, "meta-train", "--config", workspace["config"], "--out", out, "--resume"],
                            capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "resuming from" in second.stderr
    assert loss_view(metrics(out)) == loss_view(metrics(full_run))
    a = load_file(str(out / "checkpoints/step-6.safetensors"))
    b = load_file(str(full_run / "checkpoints/step-6.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_other_recomputation_continues_exactly(full_run, workspace, abmll_bin):
    """Which layers are recomputed in backward changes memory, not results: a run resumes under another
    model.gradient_checkpointing / model.checkpointed_layers (as after running out of memory) and continues exactly."""
    out = workspace["root"] / "recompute"
    args = [abmll_bin, "meta-train", "--config", workspace["config"], "--out", out]
    first = subprocess.run(args + ["--max-steps", "3"], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(args + ["--resume", "--set", "model.gradient_checkpointing=true", "--set",
                                    "model.checkpointed_layers=1"], capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "resuming from" in second.stderr
    assert loss_view(metrics(out)) == loss_view(metrics(full_run))


def test_out_of_memory_is_reported_with_what_to_change(workspace, run_abmll, tmp_path):
    """A step that cannot allocate under any recomputation policy (here: ten billion Monte Carlo samples per task)
    is retried with half as many layers keeping their activations, down to none, then ends the run with exit code 1
    and one plain message naming the step, the device, the policy and the settings that lower memory; no C++
    backtrace."""
    result = run_abmll("meta-train", "--config", workspace["config"], "--out", tmp_path / "oom", "--set",
                       "inner.samples=10000000000")
    assert result.returncode == 1, result.stderr
    assert "step 1 ran out of memory on cpu with 2 of 2 layers keeping their activations; retrying it with 1 " \
           "keeping them (model.gradient_checkpointing: true, model.checkpointed_layers: 1)" in result.stderr
    assert "with 1 of 2 layers keeping their activations; retrying it with 0 keeping them (" \
           "model.gradient_checkpointing: true, model.checkpointed_layers: -1)" in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert "error: out of memory in step 1 on cpu with every layer recomputed in backward" in message
    assert "can't allocate memory" in message
    assert "inner.samples" in message and "--profile-memory" in message
    assert "model.checkpointed_layers larger" not in message  # nothing left to recompute
    assert "frame #" not in result.stderr and "Exception raised from" not in result.stderr


def test_sigterm_checkpoints_and_resume_matches(workspace, abmll_bin):
    out = workspace["root"] / "killed"
    args = [abmll_bin, "meta-train", "--config", workspace["config"], "--out", out, "--set", "outer.steps=40",
            "--set", "run.checkpoint_every=0"]
    reference = workspace["root"] / "reference40"
    done = subprocess.run(args[:5] + [reference] + args[6:] + ["--max-steps", "12"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr

    code, stderr = sigterm_after_lines(args + ["--max-steps", "12"], out / "metrics.jsonl", 1)
    assert code == 143, stderr
    steps_done = len(metrics(out))
    assert 1 <= steps_done < 12
    assert (out / f"checkpoints/step-{steps_done}.safetensors").exists()
    assert json.loads((out / "report.json").read_text())["results"]["status"] == "interrupted"

    resumed = subprocess.run(args + ["--max-steps", "12", "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert loss_view(metrics(out)) == loss_view(metrics(reference))


def test_refusals(workspace, run_abmll, full_run):
    cfg = workspace["config"]
    result = run_abmll("meta-train", "--config", cfg, "--out", full_run)
    assert result.returncode == 2 and "already holds checkpoints" in result.stderr
    result = run_abmll("meta-train", "--config", cfg, "--out", workspace["root"] / "x", "--set",
                       "outer.tasks_per_batch=9")
    assert result.returncode == 2 and "exceeds the number of training tasks (5)" in result.stderr
    result = run_abmll("meta-train", "--config", cfg, "--out", full_run, "--resume", "--set", "lora.rank=3")
    assert result.returncode == 2 and "different training config" in result.stderr


def test_adapt_to_a_held_out_task(full_run, workspace, run_abmll, tmp_path):
    from peft import PeftModel

    out = tmp_path / "adapt"
    result = run_abmll("adapt", "--config", workspace["config"], "--checkpoint",
                       full_run / "checkpoints/step-6.safetensors", "--task", "rule5", "--out", out,
                       "--set", "inner.eval_steps=4")
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())["results"]
    assert report["held_out"] is True and report["support_size"] == 4
    nll = report["support_nll"]
    assert len(nll) == 5 and nll[-1] < nll[0]  # the inner steps fit the support set
    phi = load_file(str(out / "phi.safetensors"))
    theta = load_file(str(full_run / "checkpoints/step-6.safetensors"))
    for name, t in phi.items():
        assert name.startswith("phi.") and t.shape == theta["theta." + name[4:]].shape
    assert any(not torch.equal(t, theta["theta." + name[4:]]) for name, t in phi.items())
    base = LlamaForCausalLM.from_pretrained(workspace["model"], torch_dtype=torch.float32).eval()
    PeftModel.from_pretrained(base, out / "adapter")  # loads

    # The run's folder names its newest checkpoint, step 6.
    by_run = run_abmll("adapt", "--config", workspace["config"], "--checkpoint", full_run, "--task", "rule5",
                       "--out", tmp_path / "by_run", "--set", "inner.eval_steps=4")
    assert by_run.returncode == 0, by_run.stderr
    assert "step-6.safetensors" in by_run.stderr
    phi_by_run = load_file(str(tmp_path / "by_run/phi.safetensors"))
    assert phi_by_run.keys() == phi.keys() and all(torch.equal(t, phi_by_run[name]) for name, t in phi.items())

    # Several tasks under one loaded model (a training task, and every held-out one): DIR/<task>/ each, the same
    # tensors and report as adapting it alone.
    several = run_abmll("adapt", "--config", workspace["config"], "--checkpoint", full_run, "--task", "rule2",
                        "--held-out", "--out", tmp_path / "several", "--set", "inner.eval_steps=4")
    assert several.returncode == 0, several.stderr
    assert sorted(p.name for p in (tmp_path / "several").iterdir()) == ["rule2", "rule5", "rule6"]
    alone_rule2 = run_abmll("adapt", "--config", workspace["config"], "--checkpoint", full_run, "--task", "rule2",
                            "--out", tmp_path / "rule2", "--set", "inner.eval_steps=4")
    assert alone_rule2.returncode == 0, alone_rule2.stderr
    for task, alone in [("rule5", out), ("rule2", tmp_path / "rule2")]:
        folder = tmp_path / "several" / task
        got, want = load_file(str(folder / "phi.safetensors")), load_file(str(alone / "phi.safetensors"))
        assert got.keys() == want.keys() and all(torch.equal(t, want[name]) for name, t in got.items()), task
        got_report = json.loads((folder / "report.json").read_text())["results"]
        want_report = json.loads((alone / "report.json").read_text())["results"]
        for key in ["task", "held_out", "support_size", "support_nll"]:
            assert got_report[key] == want_report[key], (task, key)
        assert (folder / "config.yaml").exists() and (folder / "adapter/adapter_model.safetensors").exists()
    assert json.loads((tmp_path / "several/rule2/report.json").read_text())["results"]["held_out"] is False
    twice = run_abmll("adapt", "--config", workspace["config"], "--checkpoint", full_run, "--task", "rule5",
                      "--task", "rule5", "--out", tmp_path / "twice")
    assert twice.returncode == 2 and "--task rule5: named twice" in twice.stderr
    unknown_later = run_abmll("adapt", "--config", workspace["config"], "--checkpoint", full_run, "--task", "rule5",
                              "--task", "rule9", "--out", tmp_path / "unknown")
    assert unknown_later.returncode == 2 and "rule9" in unknown_later.stderr
    assert not (tmp_path / "unknown").exists()  # looked up before anything is adapted

    missing = run_abmll("adapt", "--config", workspace["config"], "--checkpoint",
                        full_run / "checkpoints/step-6.safetensors", "--task", "rule9", "--out", tmp_path / "x")
    assert missing.returncode == 2 and "no such task" in missing.stderr
    other_rank = run_abmll("adapt", "--config", workspace["config"], "--checkpoint",
                           full_run / "checkpoints/step-6.safetensors", "--task", "rule5", "--out", tmp_path / "y",
                           "--set", "lora.rank=3")
    assert other_rank.returncode == 2 and "a different lora.rank" in other_rank.stderr


def test_adapting_several_tasks_stops_between_them(full_run, workspace, abmll_bin, tmp_path):
    """SIGTERM while the second of three tasks adapts: it is finished and written, the third is not started, and
    the exit code says so."""
    out = tmp_path / "several"
    code, stderr = sigterm_after_lines(
        [abmll_bin, "adapt", "--config", workspace["config"], "--checkpoint", full_run, "--task", "rule2",
         "--held-out", "--out", out, "--set", "inner.eval_steps=400"], out / "rule2/report.json", 1)
    assert code == 143, stderr
    assert "interrupted after 2 task(s)" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["rule2", "rule5"]
    for task in ["rule2", "rule5"]:
        assert json.loads((out / task / "report.json").read_text())["results"]["task"] == task


def test_weight_family_end_to_end(workspace, run_abmll, tmp_path):
    from peft import PeftModel

    cfg = workspace["config"]
    weight = ["--set", "posterior.family=weight", "--set", "posterior.weight_scale=linear"]
    run = tmp_path / "weight"
    result = run_abmll("meta-train", "--config", cfg, "--out", run, "--set", "outer.steps=3", *weight)
    assert result.returncode == 0, result.stderr
    lines = metrics(run)
    assert [line["step"] for line in lines] == [1, 2, 3]
    for line in lines:
        assert line["scale_floor_hits"] == 0 and line["scale_floor_entries"] > 0
        assert line["kl"] >= 0 and line["hyperprior"] > 0
    # Under gradient checkpointing a recomputed layer draws the same noise: the same losses and gradients.
    recomputed = tmp_path / "weight-checkpointed"
    result = run_abmll("meta-train", "--config", cfg, "--out", recomputed, "--set", "outer.steps=3", "--max-steps", 2,
                       "--set", "model.gradient_checkpointing=true", *weight)
    assert result.returncode == 0, result.stderr
    for ours, plain in zip(metrics(recomputed), lines[:2]):
        for key in ["outer_loss", "query_nll", "kl", "grad_norm"]:
            assert ours[key] == pytest.approx(plain[key], rel=1e-5), key
    theta = load_file(str(run / "checkpoints/step-3.safetensors"))
    assert {name.rsplit(".", 1)[1] for name in theta if name.startswith("theta.")} == \
        {"b_mu", "a_mu", "b_sigma", "a_sigma"}

    # The PEFT export is the posterior mean: lora_A = A_mu, lora_B = B_mu.
    exported = load_file(str(run / "adapter/adapter_model.safetensors"))
    site = "model.layers.1.self_attn.v_proj"
    a = next(t for n, t in exported.items() if n.endswith(f"{site[6:]}.lora_A.weight"))
    b = next(t for n, t in exported.items() if n.endswith(f"{site[6:]}.lora_B.weight"))
    assert torch.equal(a, theta[f"theta.{site}.a_mu"]) and torch.equal(b, theta[f"theta.{site}.b_mu"])
    base = LlamaForCausalLM.from_pretrained(workspace["model"], torch_dtype=torch.float32).eval()
    PeftModel.from_pretrained(base, run / "adapter")  # loads

    checkpoint = run / "checkpoints/step-3.safetensors"
    adapted = run_abmll("adapt", "--config", cfg, "--checkpoint", checkpoint, "--task", "rule5", "--out",
                        tmp_path / "adapt", *weight)
    assert adapted.returncode == 0, adapted.stderr
    phi = load_file(str(tmp_path / "adapt/phi.safetensors"))
    assert set(phi) == {"phi." + name[6:] for name in theta if name.startswith("theta.")}

    # A checkpoint is read under its own family and scale form only.
    as_factor = run_abmll("adapt", "--config", cfg, "--checkpoint", checkpoint, "--task", "rule5", "--out",
                          tmp_path / "x")
    assert as_factor.returncode == 2
    assert "meta-trained with posterior.family: weight, posterior.weight_scale: linear" in as_factor.stderr
    assert "the config says posterior.family: factor" in as_factor.stderr
    as_softplus = run_abmll("evaluate", "--config", cfg, "--checkpoint", checkpoint, "--out", tmp_path / "e.json",
                            "--set", "posterior.family=weight", "--set", "posterior.weight_scale=softplus")
    assert as_softplus.returncode == 2 and "posterior.weight_scale: linear" in as_softplus.stderr

    evaluated = run_abmll("evaluate", "--config", cfg, "--checkpoint", checkpoint, "--out", tmp_path / "r.json",
                          "--set", "eval.samples=3", *weight)
    assert evaluated.returncode == 0, evaluated.stderr
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    assert results["n_tasks"] == 2 and results["posterior_samples"] == 3


def test_profile_steps(full_run, workspace, abmll_bin, tmp_path):
    """--profile-step writes a per-operator table and a Chrome trace of exactly the profiled steps, and profiling
    leaves the losses unchanged."""
    out = tmp_path / "profiled"
    result = subprocess.run([abmll_bin, "meta-train", "--config", workspace["config"], "--out", out, "--max-steps", "4",
                             "--profile-step", "2", "--profile-steps", "2"], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert loss_view(metrics(out)) == loss_view(metrics(full_run))[:4]
    assert sorted(p.name for p in (out / "profile").iterdir()) == ["steps-2-3.ops.tsv", "steps-2-3.trace.json"]

    rows = [line.split("\t") for line in (out / "profile/steps-2-3.ops.tsv").read_text().splitlines()]
    assert rows[0] == ["kind", "name", "calls", "self_ms", "total_ms"]
    table = {name: (kind, int(calls), float(self_ms), float(total_ms))
             for kind, name, calls, self_ms, total_ms in rows[1:]}
    assert all(kind == "cpu" for kind, *_ in table.values())  # no GPU here
    assert all(0 <= s <= t + 1e-3 for _, _, s, t in table.values())
    # Two steps, each with several forwards (support, query) through 4 adapted sites (q and v in 2 layers), every
    # LoRA update 2 batched products.
    assert table["aten::bmm"][1] >= 2 * 2 * 4
    assert sum(s for _, _, s, _ in table.values()) / 1e3 < metrics(out)[2]["elapsed_s"]

    trace = json.loads((out / "profile/steps-2-3.trace.json").read_text())
    names = {event.get("name") for event in trace["traceEvents"]}
    assert "aten::bmm" in names and "aten::mm" in names


def test_profile_memory(full_run, workspace, abmll_bin, tmp_path):
    """--profile-memory adds a table of what is live at the profiled step's peak, per allocating operator; its total
    is what replaying the trace's own allocation records (address, bytes) gives at their peak."""
    out = tmp_path / "profiled"
    result = subprocess.run([abmll_bin, "meta-train", "--config", workspace["config"], "--out", out, "--max-steps", "3",
                             "--profile-step", "2", "--profile-memory"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert loss_view(metrics(out)) == loss_view(metrics(full_run))[:3]
    assert sorted(p.name for p in (out / "profile").iterdir()) == [
        "steps-2-2.memory.tsv", "steps-2-2.ops.tsv", "steps-2-2.trace.json"]
    assert ".memory.tsv (peak" in result.stderr

    rows = [line.split("\t") for line in (out / "profile/steps-2-2.memory.tsv").read_text().splitlines()]
    assert rows[0] == ["mb", "allocations", "allocated_in"]
    total, parts = rows[1], rows[2:]
    assert total[2].startswith("(all of the below; the peak was reached in: ")
    sizes = [float(mb) for mb, _, _ in parts]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 0
    assert abs(float(total[0]) - sum(sizes)) <= 1e-3 * len(parts)
    assert int(total[1]) == sum(int(n) for _, n, _ in parts)
    where = {w for _, _, w in parts}
    assert any("aten::" in w for w in where)
    assert len(where) == len(parts)

    # The trace's allocation records replayed: the same peak, the same live allocations made while profiling.
    trace = json.loads((out / "profile/steps-2-2.trace.json").read_text())
    events = sorted((e for e in trace["traceEvents"] if e.get("name") == "[memory]" and e["args"]["Device Type"] == 0),
                    key=lambda e: e["ts"])
    assert events
    level = peak = 0
    live, at_peak = {}, {}
    for e in events:
        size, addr = e["args"]["Bytes"], e["args"]["Addr"]
        level += size
        if size > 0:
            live[addr] = size
        else:
            live.pop(addr, None)
        if level > peak:
            peak, at_peak = level, dict(live)
    assert abs(sum(at_peak.values()) / 2**20 - float(total[0])) <= 1e-3
    assert len(at_peak) == int(total[1])


def test_resume_of_a_checkpoint_from_before_model_tf32(full_run, workspace, run_abmll, tmp_path):
    """A checkpoint whose config has no model.tf32 (written before the key existed, with full float32 products)
    resumes under model.tf32 = false, and is refused under the default (true), naming the key."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    out = tmp_path / "old"
    (out / "checkpoints").mkdir(parents=True)
    source = full_run / "checkpoints/step-4.safetensors"
    with safe_open(str(source), "pt") as f:
        metadata = f.metadata()
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    config = json.loads(metadata["config"])
    del config["model"]["tf32"]
    metadata["config"] = json.dumps(config)
    save_file(tensors, str(out / "checkpoints/step-4.safetensors"), metadata=metadata)
    args = ["meta-train", "--config", workspace["config"], "--out", out, "--resume", "--max-steps", "5"]
    refused = run_abmll(*args)
    assert refused.returncode == 2 and "/model/tf32" in refused.stderr
    resumed = run_abmll(*args, "--set", "model.tf32=false")
    assert resumed.returncode == 0, resumed.stderr
    assert "(step 4)" in resumed.stderr
    # On the CPU TF32 changes nothing: step 5 is the uninterrupted run's step 5.
    assert loss_view(metrics(out)) == loss_view(metrics(full_run))[4:5]


def test_one_process_at_a_time_in_a_run_folder(workspace, abmll_bin, run_abmll):
    """A second meta-train in a folder another one is writing (say, a requeued job whose predecessor still runs) is
    refused with exit code 2 naming the holder; the lock goes with its holder, even one killed outright."""
    out = workspace["root"] / "locked"
    args = ["meta-train", "--config", workspace["config"], "--out", out, "--set", "outer.steps=100000"]
    first = subprocess.Popen([abmll_bin, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not ((out / "metrics.jsonl").exists() and
                                              (out / "metrics.jsonl").read_text().count("\n") >= 1):
            time.sleep(0.01)
        second = run_abmll(*args, "--resume")
        assert second.returncode == 2, second.stderr
        assert "another abmll meta-train is using this folder (meta-train on host" in second.stderr
        assert f"pid {first.pid})" in second.stderr
    finally:
        first.kill()
        first.communicate(timeout=60)
    third = run_abmll(*args, "--resume", "--max-steps", "1")
    assert third.returncode == 0, third.stderr
