"""An independent implementation of one ABMLL meta-training step (ABMLL.md section 3, `factor` family), written
with torch, a transformers model and hand-written Bayesian LoRA (forward hooks on the adapted projections), to
check abmll's step against: same inputs (the step's token ids and noise seed, read from abmll's --trace-step file),
same losses and theta gradients.

It shares no code with abmll and takes the simplest route everywhere: one sequence per forward (no padding, no
batching of tasks), the textbook KL formula in float64, torch.distributions for the hyperprior."""
import math

import torch
import torch.nn.functional as F

PARTS = ("a_mean", "a_rho", "b_mean", "b_rho")
PROJ_ORDER = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def site_names(num_layers, targets):
    """Adapted sites in abmll's order: by layer, then q, k, v, o, gate, up, down."""
    names = []
    for layer in range(num_layers):
        for proj in PROJ_ORDER:
            if proj in targets:
                kind = "self_attn" if proj in PROJ_ORDER[:4] else "mlp"
                names.append(f"model.layers.{layer}.{kind}.{proj}")
    return names


class BayesianLoraHooks:
    """Adds scale * (x A_g^T) B_g^T to each adapted projection's output, g = the group of the current sequence."""

    def __init__(self, model, sites, scale):
        self.factors = {}  # site -> (A [groups, r, in], B [groups, out, r])
        self.group = 0
        self.scale = scale
        modules = dict(model.named_modules())
        self.handles = [modules[s].register_forward_hook(self.hook_for(s)) for s in sites]

    def hook_for(self, site):
        def hook(module, inputs, output):
            a, b = self.factors[site]
            x = inputs[0]
            return output + self.scale * (x @ a[self.group].T) @ b[self.group].T
        return hook


def sigma(rho, floor):
    return F.softplus(rho) + floor


def sample_factors(phi, sites, samples, generators, floor):
    """Reparameterised draws, consuming each task's own generator exactly as abmll does: per site, A's noise then
    B's, each as one draw [S, r, in] (resp. [S, out, r]) per task g from generators[g]; group g * S + s."""
    out = {}
    for s in sites:
        draws = []
        for mean, rho in ((phi[s]["a_mean"], phi[s]["a_rho"]), (phi[s]["b_mean"], phi[s]["b_rho"])):
            g, rows, cols = mean.shape
            # Drawn in float32 as abmll draws them (theta is float32), whatever precision the reference runs in.
            eps = torch.stack([torch.randn((samples, rows, cols), generator=generators[t], dtype=torch.float32)
                               for t in range(g)]).to(mean.dtype)
            w = mean.unsqueeze(1) + sigma(rho, floor).unsqueeze(1) * eps
            draws.append(w.reshape(g * samples, rows, cols))
        out[s] = tuple(draws)
    return out


def task_nll(model, hooks, items, tasks, samples):
    """[G] mean over each task's examples and samples of -log p(answer | prompt), one sequence per forward."""
    totals = [0.0] * tasks
    counts = [0] * tasks
    for prompt, answer, task in items:
        ids = torch.tensor([prompt + answer])
        for s in range(samples):
            hooks.group = task * samples + s
            logits = model(input_ids=ids).logits[0]
            logits = logits if logits.dtype == torch.float64 else logits.float()
            logp = torch.log_softmax(logits, dim=-1)
            positions = torch.arange(len(prompt) - 1, len(prompt) + len(answer) - 1)
            totals[task] = totals[task] - logp[positions, torch.tensor(answer)].sum()
            counts[task] += 1
    return torch.stack([t / c for t, c in zip(totals, counts)])


def kl_per_task(phi, theta, sites, floor):
    """KL(q_phi_g || p_theta) per task g, the textbook formula in float64."""
    total = 0
    for s in sites:
        for m, r in (("a_mean", "a_rho"), ("b_mean", "b_rho")):
            mq, sq = phi[s][m].double(), sigma(phi[s][r], floor).double()
            mp, sp = theta[s][m].double(), sigma(theta[s][r], floor).double()
            kl = torch.log(sp / sq) + (sq ** 2 + (mq - mp) ** 2) / (2 * sp ** 2) - 0.5
            total = total + kl.flatten(1).sum(1)
    return total


def hyperprior(theta, sites, floor, mean_std, a0, b0):
    normal = torch.distributions.Normal(0.0, mean_std)
    gamma = torch.distributions.Gamma(torch.tensor(a0, dtype=torch.float64), torch.tensor(b0, dtype=torch.float64))
    total = 0
    for s in sites:
        for m, r in (("a_mean", "a_rho"), ("b_mean", "b_rho")):
            total = total - normal.log_prob(theta[s][m].double()).sum()
            tau = 1.0 / sigma(theta[s][r], floor).double() ** 2
            total = total - gamma.log_prob(tau).sum()
    return total


def abmll_step(model, theta, sites, support, query, tasks, noise_seeds, cfg):
    """One ABMLL meta-gradient. theta: {site: {part: tensor requiring grad}}. support/query: [(prompt, answer,
    task)]. noise_seeds: one per task. Returns (losses dict, {site: {part: grad}})."""
    assert len(noise_seeds) == tasks
    generators = [torch.Generator().manual_seed(seed) for seed in noise_seeds]
    hooks = BayesianLoraHooks(model, sites, cfg["scale"])
    floor, samples, second = cfg["floor"], cfg["samples"], cfg["second_order"]

    def expand(t):
        g = t.unsqueeze(0).expand(tasks, *t.shape).clone()
        return g if second else g.detach().requires_grad_(True)

    phi = {s: {p: expand(theta[s][p]) for p in PARTS} for s in sites}
    prior = theta if second else {s: {p: theta[s][p].detach() for p in PARTS} for s in sites}
    support_nll = []
    for k in range(cfg["inner_steps"]):
        hooks.factors = sample_factors(phi, sites, samples, generators, floor)
        nll = task_nll(model, hooks, support, tasks, samples)
        support_nll.append(nll.mean().item())
        loss = nll.sum()
        if not (k == 0 and cfg["first_step_nll_only"]):
            loss = loss + cfg["beta"] * kl_per_task(phi, prior, sites, floor).sum()
        flat = [phi[s][p] for s in sites for p in PARTS]
        grads = torch.autograd.grad(loss, flat, create_graph=second)
        it = iter(grads)
        phi = {s: {p: (phi[s][p] - cfg["inner_lr"] * next(it)) for p in PARTS} for s in sites}
        if not second:
            phi = {s: {p: phi[s][p].detach().requires_grad_(True) for p in PARTS} for s in sites}

    hooks.factors = sample_factors(phi, sites, samples, generators, floor)
    query_nll = task_nll(model, hooks, query, tasks, samples)
    data_term = query_nll.mean()
    hyper = hyperprior(theta, sites, floor, cfg["hyper_mean_std"], cfg["hyper_a0"], cfg["hyper_b0"])
    hyper_term = cfg["gamma"] * hyper / cfg["num_train_tasks"]
    theta_flat = [theta[s][p] for s in sites for p in PARTS]
    if second:
        kl = kl_per_task(phi, theta, sites, floor)
        loss = data_term + cfg["beta"] * kl.mean() + hyper_term
        grads = torch.autograd.grad(loss, theta_flat)
    else:
        phi_flat = [phi[s][p] for s in sites for p in PARTS]
        g_phi = torch.autograd.grad(data_term, phi_flat)
        phi_fixed = {s: {p: phi[s][p].detach() for p in PARTS} for s in sites}
        kl = kl_per_task(phi_fixed, theta, sites, floor)
        regulariser = cfg["beta"] * kl.mean() + hyper_term
        g_theta = torch.autograd.grad(regulariser, theta_flat)
        grads = [a.to(b.dtype) + b.sum(0) for a, b in zip(g_theta, g_phi)]
        loss = data_term + regulariser
    for h in hooks.handles:
        h.remove()
    it = iter(grads)
    return ({"outer_loss": loss.item(), "query_nll": data_term.item(), "kl": kl.mean().item(),
             "hyperprior": hyper.item(), "support_nll": support_nll},
            {s: {p: next(it) for p in PARTS} for s in sites})
