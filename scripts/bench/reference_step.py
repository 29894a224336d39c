"""The Python reference of one ABMLL meta-training step (factor family, first order) that the benchmarks time against
abmll: a transformers model with a batched Bayesian LoRA written with PyTorch, fed the token ids of the episodes abmll
traced for its step 1 (`abmll meta-train --trace-step 1`).

It is batched the way a careful PyTorch user would write it: all tasks' sequences (times the Monte Carlo samples)
in one padded forward per inner step, each row with its own task's sampled factors (a per-row bmm in a forward hook,
in float32 whatever the base's dtype), NLL of the answer tokens from the full logits, closed-form KL and hyperprior,
autograd for every gradient, optionally transformers' own gradient checkpointing. Only its speed and memory are
measured; abmll's numerics are checked against an independent reference in tests/python/test_abmll_reference.py.

Run in its own process (one thread count, a clean peak-memory figure), on the folder of an abmll run traced at
step 1 (its resolved config.yaml gives the step's hyperparameters, trace-step-1.safetensors the token ids):
  python reference_step.py --run RUN (--model DIR | --config-json FILE) [--device cuda] [--dtype bf16]
prints {"seconds_per_step", "peak_memory_mb"}: the median over timed steps after warm-up, and the process's peak
resident memory on the CPU or the CUDA caching allocator's peak on a GPU."""
import argparse
import json
import pathlib
import resource
import statistics
import time

import yaml


def hyperparameters(run):
    """The step's hyperparameters from an abmll run folder's resolved config (what the reference implements:
    factor family, first order, plain SGD inner steps, one Monte Carlo sample, LoRA on q_proj and v_proj)."""
    c = yaml.safe_load((run / "config.yaml").read_text())
    expected = {"posterior.family": (c["posterior"]["family"], "factor"),
                "outer.second_order": (c["outer"]["second_order"], False),
                "inner.optimizer": (c["inner"]["optimizer"], "sgd"),
                "inner.samples": (c["inner"]["samples"], 1),
                "lora.rslora": (c["lora"]["rslora"], False),
                "lora.targets": (sorted(c["lora"]["targets"]), ["q_proj", "v_proj"])}
    for key, (got, want) in expected.items():
        if got != want:
            raise SystemExit(f"{run}/config.yaml: the reference implements {key} = {want}, the run has {got}")
    train_tasks = json.loads(pathlib.Path(c["data"]["partition"]).read_text())["train"]
    return dict(rank=c["lora"]["rank"], alpha=c["lora"]["alpha"], floor=c["posterior"]["scale_floor"],
                tasks=c["outer"]["tasks_per_batch"], inner_steps=c["inner"]["steps"], inner_lr=c["inner"]["lr"],
                beta=c["outer"]["beta"], gamma=c["outer"]["gamma"], n_train=len(train_tasks),
                init_scale=c["posterior"]["init_scale"], tf32=c["model"].get("tf32", False))


def run(args, hp):
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = hp["tf32"]  # as the traced run (model.tf32); no effect on the CPU
    dtype = {"float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}[args.dtype]
    trace = load_file(pathlib.Path(args.run) / "trace-step-1.safetensors")
    if args.model:
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).to(device)
    else:  # random weights of a config's shape, made on the device
        config = AutoConfig.for_model(**json.loads(open(args.config_json).read()))
        with device:
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if args.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()  # transformers checkpoints only in training mode (no dropout in Llama / Qwen2)
    cfg = model.config
    rank, scale, floor, tasks = hp["rank"], hp["alpha"] / hp["rank"], hp["floor"], hp["tasks"]
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    sites = {}
    for layer in range(cfg.num_hidden_layers):
        sites[f"model.layers.{layer}.self_attn.q_proj"] = (cfg.num_attention_heads * head_dim, cfg.hidden_size)
        sites[f"model.layers.{layer}.self_attn.v_proj"] = (cfg.num_key_value_heads * head_dim, cfg.hidden_size)
    rho0 = torch.log(torch.expm1(torch.tensor(hp["init_scale"] - floor))).item()
    theta = {}
    for s, (out_f, in_f) in sites.items():
        bound = 1 / in_f ** 0.5
        theta[s] = [torch.empty(rank, in_f, device=device).uniform_(-bound, bound),
                    torch.full((rank, in_f), rho0, device=device),
                    0.01 * torch.randn(out_f, rank, device=device), torch.full((out_f, rank), rho0, device=device)]
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
        return ids.to(device), mask.to(device), answer_pos, torch.tensor(task_of, device=device)

    data = {split: batch(split) for split in ("support", "query")}
    current = {}  # site -> (A [rows, r, in], B [rows, out, r]) for the rows of the running forward

    def hook_for(site):
        def hook(module, inputs, output):
            a, b = current[site]
            update = scale * torch.bmm(torch.bmm(inputs[0].float(), a.transpose(1, 2)), b.transpose(1, 2))
            return output + update.to(output.dtype)
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
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
        per_row = []
        for i, (lp, la) in enumerate(answer_pos):
            targets = ids[i, lp:lp + la]
            per_row.append(-logp[i, lp - 1:lp - 1 + la].gather(1, targets[:, None]).sum())
        per_row = torch.stack(per_row)
        return (torch.zeros(tasks, device=device).index_add(0, task_of, per_row)
                / torch.bincount(task_of, minlength=tasks))

    def kl(phi, prior):
        total = torch.zeros(tasks, device=device)
        for s in sites:
            for (mq, rq), (mp, rp) in (((phi[s][0], phi[s][1]), (prior[s][0], prior[s][1])),
                                       ((phi[s][2], phi[s][3]), (prior[s][2], prior[s][3]))):
                sq, sp = sigma(rq), sigma(rp)
                total = total + (torch.log(sp / sq) + (sq ** 2 + (mq - mp) ** 2) / (2 * sp ** 2) - 0.5).flatten(1).sum(1)
        return total

    def hyperprior(th):
        normal = torch.distributions.Normal(torch.tensor(0.0, device=device), torch.tensor(1.0, device=device))
        gam = torch.distributions.Gamma(torch.tensor(1.0, device=device), torch.tensor(0.01, device=device))
        total = 0
        for s in sites:
            a_m, a_r, b_m, b_r = th[s]
            total = total - normal.log_prob(a_m).sum() - normal.log_prob(b_m).sum()
            total = total - gam.log_prob(1 / sigma(a_r) ** 2).sum() - gam.log_prob(1 / sigma(b_r) ** 2).sum()
        return total

    def step():
        prior = {s: [t.detach() for t in theta[s]] for s in sites}
        phi = {s: [t.detach().unsqueeze(0).repeat(tasks, 1, 1).requires_grad_(True) for t in theta[s]] for s in sites}
        for _ in range(hp["inner_steps"]):
            loss = task_nll(phi, "support").sum() + hp["beta"] * kl(phi, prior).sum()
            flat = [t for s in sites for t in phi[s]]
            grads = iter(torch.autograd.grad(loss, flat))
            phi = {s: [(t - hp["inner_lr"] * next(grads)).detach().requires_grad_(True) for t in phi[s]]
                   for s in sites}
        query = task_nll(phi, "query").mean()
        g_phi = iter(torch.autograd.grad(query, [t for s in sites for t in phi[s]]))
        fixed = {s: [t.detach() for t in phi[s]] for s in sites}
        reg = hp["beta"] * kl(fixed, theta).mean() + hp["gamma"] * hyperprior(theta) / hp["n_train"]
        g_theta = iter(torch.autograd.grad(reg, [t for s in sites for t in theta[s]]))
        with torch.no_grad():  # a plain SGD outer update stands in for AdamW (negligible either way)
            for s in sites:
                for t in theta[s]:
                    t -= 1e-3 * (next(g_theta) + next(g_phi).sum(0))

    times = []
    for i in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2 ** 20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds_per_step": statistics.median(times), "peak_memory_mb": peak_mb}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", required=True, help="an abmll meta-train folder run with --trace-step 1")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a Hugging Face model folder")
    source.add_argument("--config-json", help="a config.json: random weights of its shape")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bf16", "bfloat16"])
    parser.add_argument("--checkpointing", action="store_true")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(run(args, hyperparameters(pathlib.Path(args.run)))))


if __name__ == "__main__":
    main()
