"""Benchmark of one ABMLL meta-training step (factor family, first order): abmll against a Python reference of the
same step (transformers model + batched Bayesian LoRA written with PyTorch), on the same model, the same token ids
(the episodes abmll traced for step 1) and the same shapes. Each side runs in its own process with the same thread
count; time per step is the median over the timed steps after warm-up; peak memory is the process's maximum RSS.
Not a test: run through scripts/bench_meta_step.sh.

The reference is batched the way a careful PyTorch user would write it: all tasks' sequences (times the Monte Carlo
samples) in one padded forward per inner step, each row with its own task's sampled factors (a per-row bmm in a
forward hook), NLL of the answer tokens from the full logits, closed-form KL and hyperprior, autograd for every
gradient. Only its speed and memory are measured here; abmll's numerics are checked against an independent
reference in tests/python/test_abmll_reference.py."""
import argparse
import json
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import time

SHAPES = {
    "tiny": None,  # the demo model of `abmll make-demo`
    "100m": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                 num_key_value_heads=4, vocab_size=32000, max_position_embeddings=512, tie_word_embeddings=False),
}


def make_models(abmll, cache):
    demo = cache / "demo"
    if not (demo / "model/model.safetensors").exists():
        subprocess.run([abmll, "make-demo", "--out", demo], check=True, capture_output=True)
    big = cache / "model-100m"
    if not (big / "model.safetensors").exists():
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM
        torch.manual_seed(0)
        LlamaForCausalLM(LlamaConfig(**SHAPES["100m"])).to(torch.float32).save_pretrained(big, safe_serialization=True)
        # The demo's byte-level tokenizer: its ids (< 263) are valid in the larger vocabulary.
        shutil.copy(demo / "model/tokenizer.json", big / "tokenizer.json")
    return {"tiny": demo / "model", "100m": big}, demo / "data"


def config_args(model, data):
    return ["--config", str(pathlib.Path(__file__).resolve().parents[2] / "configs/demo.yaml"),
            "--set", f"model.path={model}", "--set", f"data.path={data}",
            "--set", f"data.partition={data / 'partitions/demo.json'}",
            "--set", "outer.steps=1000", "--set", "run.checkpoint_every=0", "--set", "run.log_every=1000"]


def run_abmll(abmll, model, data, out, steps, warmup):
    """abmll meta-train for warmup + steps steps; per-step seconds from metrics.jsonl, peak RSS from /usr/bin/time."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = ["/usr/bin/time", "-f", "%M", abmll, "meta-train", *config_args(model, data), "--max-steps",
           str(warmup + steps), "--trace-step", "1", "--out", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"abmll failed: {result.stderr[-2000:]}")
    peak_kb = int(result.stderr.strip().splitlines()[-1])
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    elapsed = [line["elapsed_s"] for line in lines]
    per_step = [b - a for a, b in zip(elapsed, elapsed[1:])][warmup - 1:]
    tokens = statistics.median(line["tokens_per_s"] for line in lines[warmup:])
    return statistics.median(per_step), peak_kb / 1024, tokens


def reference_child(args):
    """The Python reference, in its own process: args.trace holds the episodes of abmll's step 1."""
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    trace = load_file(args.trace)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    cfg = model.config
    rank, scale, floor, tasks, samples = 4, 8 / 4, 2.0611536224385579e-09, 4, 1
    inner_steps, inner_lr, beta, gamma, n_train = 3, 0.1, 1e-4, 1e-4, 16
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    sites = {}
    for layer in range(cfg.num_hidden_layers):
        sites[f"model.layers.{layer}.self_attn.q_proj"] = (cfg.num_attention_heads * head_dim, cfg.hidden_size)
        sites[f"model.layers.{layer}.self_attn.v_proj"] = (cfg.num_key_value_heads * head_dim, cfg.hidden_size)
    rho0 = torch.log(torch.expm1(torch.tensor(1e-2 - floor))).item()
    theta = {}
    for s, (out_f, in_f) in sites.items():
        bound = 1 / in_f ** 0.5
        theta[s] = [torch.empty(rank, in_f).uniform_(-bound, bound), torch.full((rank, in_f), rho0),
                    torch.zeros(out_f, rank) + 0.01 * torch.randn(out_f, rank), torch.full((out_f, rank), rho0)]
        for t in theta[s]:
            t.requires_grad_(True)

    def batch(split):
        ids_p, ids_a = trace[f"{split}.prompt_ids"].tolist(), trace[f"{split}.answer_ids"].tolist()
        seqs, answer_pos, task_of, pp, pa = [], [], [], 0, 0
        for lp, la, t in zip(trace[f"{split}.prompt_lengths"].tolist(), trace[f"{split}.answer_lengths"].tolist(),
                             trace[f"{split}.task"].tolist()):
            seqs.append(ids_p[pp:pp + lp] + ids_a[pa:pa + la])
            answer_pos.append((lp, la))
            task_of.append(t)
            pp, pa = pp + lp, pa + la
        width = max(len(s) for s in seqs)
        ids = torch.zeros(len(seqs), width, dtype=torch.long)
        mask = torch.zeros(len(seqs), width, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        return ids, mask, answer_pos, torch.tensor(task_of)

    data = {split: batch(split) for split in ("support", "query")}
    current = {}  # site -> (A [rows, r, in], B [rows, out, r]) for the rows of the running forward

    def hook_for(site):
        def hook(module, inputs, output):
            a, b = current[site]
            return output + scale * torch.bmm(torch.bmm(inputs[0], a.transpose(1, 2)), b.transpose(1, 2))
        return hook

    modules = dict(model.named_modules())
    for s in sites:
        modules[s].register_forward_hook(hook_for(s))

    def sigma(rho):
        return F.softplus(rho) + floor

    def task_nll(phi, split):
        ids, mask, answer_pos, task_of = data[split]
        for s in sites:  # one reparameterised draw per task, gathered per row
            a_m, a_r, b_m, b_r = phi[s]
            a = a_m + sigma(a_r) * torch.randn_like(a_m)
            b = b_m + sigma(b_r) * torch.randn_like(b_m)
            current[s] = (a[task_of], b[task_of])
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits, -1)
        per_row = []
        for i, (lp, la) in enumerate(answer_pos):
            targets = ids[i, lp:lp + la]
            per_row.append(-logp[i, lp - 1:lp - 1 + la].gather(1, targets[:, None]).sum())
        per_row = torch.stack(per_row)
        return torch.zeros(tasks).index_add(0, task_of, per_row) / torch.bincount(task_of, minlength=tasks)

    def kl(phi, prior):
        total = torch.zeros(tasks)
        for s in sites:
            for (mq, rq), (mp, rp) in (((phi[s][0], phi[s][1]), (prior[s][0], prior[s][1])),
                                       ((phi[s][2], phi[s][3]), (prior[s][2], prior[s][3]))):
                sq, sp = sigma(rq), sigma(rp)
                total = total + (torch.log(sp / sq) + (sq ** 2 + (mq - mp) ** 2) / (2 * sp ** 2) - 0.5).flatten(1).sum(1)
        return total

    def hyperprior(th):
        normal = torch.distributions.Normal(0.0, 1.0)
        gam = torch.distributions.Gamma(torch.tensor(1.0), torch.tensor(0.01))
        total = 0
        for s in sites:
            a_m, a_r, b_m, b_r = th[s]
            total = total - normal.log_prob(a_m).sum() - normal.log_prob(b_m).sum()
            total = total - gam.log_prob(1 / sigma(a_r) ** 2).sum() - gam.log_prob(1 / sigma(b_r) ** 2).sum()
        return total

    def step():
        prior = {s: [t.detach() for t in theta[s]] for s in sites}
        phi = {s: [t.detach().unsqueeze(0).repeat(tasks, 1, 1).requires_grad_(True) for t in theta[s]] for s in sites}
        for _ in range(inner_steps):
            loss = task_nll(phi, "support").sum() + beta * kl(phi, prior).sum()
            flat = [t for s in sites for t in phi[s]]
            grads = iter(torch.autograd.grad(loss, flat))
            phi = {s: [(t - inner_lr * next(grads)).detach().requires_grad_(True) for t in phi[s]] for s in sites}
        query = task_nll(phi, "query").mean()
        g_phi = iter(torch.autograd.grad(query, [t for s in sites for t in phi[s]]))
        fixed = {s: [t.detach() for t in phi[s]] for s in sites}
        reg = beta * kl(fixed, theta).mean() + gamma * hyperprior(theta) / n_train
        g_theta = iter(torch.autograd.grad(reg, [t for s in sites for t in theta[s]]))
        with torch.no_grad():  # a plain SGD outer update stands in for AdamW (negligible either way)
            for s in sites:
                for t in theta[s]:
                    t -= 1e-3 * (next(g_theta) + next(g_phi).sum(0))

    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        step()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds_per_step": statistics.median(times), "peak_memory_mb": peak_mb}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--abmll")
    parser.add_argument("--cache", default=str(pathlib.Path.home() / ".cache/abmll/bench/meta-step"))
    parser.add_argument("--models", default="tiny,100m")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--trace", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return reference_child(args)
    if not args.abmll:
        parser.error("--abmll is required")
    cache = pathlib.Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    models, data = make_models(args.abmll, cache)
    records = []
    print("| model | abmll s/step | reference s/step | speed ratio | abmll peak MB | reference peak MB |")
    print("|---|---|---|---|---|---|")
    for name in args.models.split(","):
        out = cache / f"run-{name}"
        ours, ours_mb, tokens = run_abmll(args.abmll, models[name], data, out, args.steps, args.warmup)
        child = subprocess.run([sys.executable, __file__, "--child", "--model", str(models[name]), "--trace",
                                str(out / "trace-step-1.safetensors"), "--steps", str(args.steps), "--warmup",
                                str(args.warmup)], capture_output=True, text=True)
        if child.returncode != 0:
            sys.exit(f"reference failed: {child.stderr[-2000:]}")
        ref = json.loads(child.stdout.strip().splitlines()[-1])
        records.append({"model": name, "abmll_seconds_per_step": ours, "abmll_peak_memory_mb": ours_mb,
                        "abmll_tokens_per_s": tokens, "reference_seconds_per_step": ref["seconds_per_step"],
                        "reference_peak_memory_mb": ref["peak_memory_mb"]})
        print(f"| {name} | {ours:.3f} | {ref['seconds_per_step']:.3f} | {ref['seconds_per_step'] / ours:.2f} | "
              f"{ours_mb:.0f} | {ref['peak_memory_mb']:.0f} |", flush=True)
    (cache / "meta_step.json").write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
