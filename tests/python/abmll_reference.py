"""An independent implementation of one ABMLL meta-training step (ABMLL.md section 3, both variational families),
written with torch, a transformers model and hand-written Bayesian LoRA (forward hooks on the adapted projections),
to check abmll's step against: same inputs (the step's token ids and noise seed, read from abmll's --trace-step
file), same losses and theta gradients.

It shares no code with abmll and takes the simplest route everywhere: one sequence per forward (no padding, no
batching of tasks), the textbook KL formula in float64, torch.distributions for the hyperprior. For the `weight`
family (ABMLL.md 2(b)) it builds the dense mean M and scale S of every layer and applies the local
reparameterisation from its definition, x M^T + sqrt(x^2 (S^2)^T) * eps, with eps regenerated from each task's
noise seed as abmll documents it (src/meta/weight_lora.h), for each task's sequences alone."""
import math

import torch
import torch.nn.functional as F

PARTS = ("a_mean", "a_rho", "b_mean", "b_rho")
WEIGHT_PARTS = ("b_mu", "a_mu", "b_sigma", "a_sigma")
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
    """Adds the adapter's term to each adapted projection's output for the current sequence (group `group`, the
    `row`-th sequence of that group). Factor family: scale * (x A_g^T) B_g^T with sampled factors. Weight family:
    x M_t^T + sqrt(x^2 (S_t^2)^T) * eps_group[row, :L], t = group // samples the sequence's task, L its length."""

    def __init__(self, model, sites, scale):
        self.factors = {}  # factor family: site -> (A [groups, r, in], B [groups, out, r])
        self.dense = {}    # weight family: site -> (M [tasks, out, in], S [tasks, out, in])
        self.noise = {}    # weight family: site -> {group: eps [rows of the group, length, out]}
        self.samples = 1
        self.group = 0
        self.row = 0
        self.scale = scale
        modules = dict(model.named_modules())
        self.handles = [modules[s].register_forward_hook(self.hook_for(s)) for s in sites]

    def hook_for(self, site):
        def hook(module, inputs, output):
            x = inputs[0]
            if site in self.dense:
                m, s = self.dense[site]
                t = self.group // self.samples
                eps = self.noise[site][self.group][self.row, :x.shape[1]].to(x.dtype)
                return output + x @ m[t].T + torch.sqrt((x * x) @ (s[t] * s[t]).T) * eps
            a, b = self.factors[site]
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
    """[G] mean over each task's examples and samples of -log p(answer | prompt), one sequence per forward. Sample s
    of a task's j-th example is the j-th sequence of group task * samples + s."""
    totals = [0.0] * tasks
    counts = [0] * tasks
    examples = [0] * tasks
    for prompt, answer, task in items:
        ids = torch.tensor([prompt + answer])
        row = examples[task]
        examples[task] += 1
        for s in range(samples):
            hooks.group = task * samples + s
            hooks.row = row
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


MASK64 = (1 << 64) - 1
PROJ_INDEX = {p: i for i, p in enumerate(PROJ_ORDER)}


def mix64(z):
    """splitmix64's finaliser, on Python integers taken modulo 2^64."""
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def weight_dense(f, cfg):
    """Dense M and S [..., out, in] of the weight family from its factors (ABMLL.md 2(b))."""
    s, c = cfg["scale"], cfg["floor"]
    m = s * f["b_mu"] @ f["a_mu"]
    z = s * f["b_sigma"] @ f["a_sigma"]
    scale = z + c if cfg["weight_scale"] == "linear" else F.softplus(z) + c
    return m, scale


NOISE_CHUNK = 64  # positions per noise chunk (WeightLora::kNoiseChunk)


def weight_group_noise(task_seed, sample, site, rows, length, out):
    """eps [rows, length, out] of one group (a task's seed, one sample) at a site in an adapter's first forward, as
    src/meta/weight_lora.h defines it: chunks of NOISE_CHUNK positions, each its own mt19937 draw."""
    parts = site.split(".")
    layer, proj = int(parts[2]), parts[4]
    key = layer * 8 + PROJ_INDEX[proj] + 1
    site_seed = mix64(mix64(task_seed ^ 1) ^ mix64(key))
    chunks = []
    for c in range(-(-length // NOISE_CHUNK)):
        chunk_seed = mix64(site_seed ^ mix64((sample << 32) + c))
        chunks.append(torch.randn((rows, NOISE_CHUNK, out), generator=torch.Generator().manual_seed(chunk_seed),
                                  dtype=torch.float32))
    return torch.cat(chunks, 1)[:, :length]


def set_weight_draw(hooks, phi, sites, samples, generators, items, cfg):
    """The weight family's 'sample': one seed from each task's generator, then each site's dense M, S and each
    group's noise for its sequences (its task's items) over the longest of them."""
    seeds = [torch.randint(1 << 62, (1,), generator=g).item() for g in generators]
    hooks.samples = samples
    hooks.dense = {s: weight_dense(phi[s], cfg) for s in sites}
    hooks.noise = {}
    for site in sites:
        out = hooks.dense[site][0].shape[-2]
        hooks.noise[site] = {}
        for t, seed in enumerate(seeds):
            lengths = [len(p) + len(a) for p, a, task in items if task == t]
            for s in range(samples):
                hooks.noise[site][t * samples + s] = weight_group_noise(seed, s, site, len(lengths), max(lengths), out)


def weight_kl_per_task(phi, theta, sites, cfg):
    """KL(q_phi_g || p_theta) per task g over the dense entries, S^2 floored at c^2, in float64."""
    c2 = cfg["floor"] ** 2
    total = 0
    for s in sites:
        mq, sq = (t.double() for t in weight_dense({k: v.double() for k, v in phi[s].items()}, cfg))
        mp, sp = (t.double() for t in weight_dense({k: v.double() for k, v in theta[s].items()}, cfg))
        vq, vp = torch.clamp(sq * sq, min=c2), torch.clamp(sp * sp, min=c2)
        kl = 0.5 * torch.log(vp / vq) + (vq + (mq - mp) ** 2) / (2 * vp) - 0.5
        total = total + kl.flatten(1).sum(1)
    return total


def weight_hyperprior(theta, sites, cfg, mean_std, a0, b0):
    """-log p(theta): N(0, mean_std^2) on every entry of M, Gamma(a0, b0) on every precision 1 / max(S^2, c^2)."""
    normal = torch.distributions.Normal(0.0, mean_std)
    gamma = torch.distributions.Gamma(torch.tensor(a0, dtype=torch.float64), torch.tensor(b0, dtype=torch.float64))
    total = 0
    for s in sites:
        m, sc = weight_dense({k: v.double() for k, v in theta[s].items()}, cfg)
        tau = 1.0 / torch.clamp(sc * sc, min=cfg["floor"] ** 2)
        total = total - normal.log_prob(m).sum() - gamma.log_prob(tau).sum()
    return total


def abmll_step(model, theta, sites, support, query, tasks, noise_seeds, cfg):
    """One ABMLL meta-gradient. theta: {site: {part: tensor requiring grad}}. support/query: [(prompt, answer,
    task)]. noise_seeds: one per task. Returns (losses dict, {site: {part: grad}})."""
    assert len(noise_seeds) == tasks
    generators = [torch.Generator().manual_seed(seed) for seed in noise_seeds]
    hooks = BayesianLoraHooks(model, sites, cfg["scale"])
    floor, samples, second = cfg["floor"], cfg["samples"], cfg["second_order"]
    weight = cfg.get("family", "factor") == "weight"
    parts = WEIGHT_PARTS if weight else PARTS

    def draw(phi, items):
        if weight:
            # Each task's noise seed from its own stream (WeightGaussian::sample).
            set_weight_draw(hooks, phi, sites, samples, generators, items, cfg)
        else:
            hooks.factors = sample_factors(phi, sites, samples, generators, floor)

    def kl_of(phi, prior):
        return weight_kl_per_task(phi, prior, sites, cfg) if weight else kl_per_task(phi, prior, sites, floor)

    def expand(t):
        g = t.unsqueeze(0).expand(tasks, *t.shape).clone()
        return g if second else g.detach().requires_grad_(True)

    phi = {s: {p: expand(theta[s][p]) for p in parts} for s in sites}
    prior = theta if second else {s: {p: theta[s][p].detach() for p in parts} for s in sites}
    support_nll = []
    for k in range(cfg["inner_steps"]):
        draw(phi, support)
        nll = task_nll(model, hooks, support, tasks, samples)
        support_nll.append(nll.mean().item())
        loss = nll.sum()
        if not (k == 0 and cfg["first_step_nll_only"]):
            loss = loss + cfg["beta"] * kl_of(phi, prior).sum()
        flat = [phi[s][p] for s in sites for p in parts]
        grads = torch.autograd.grad(loss, flat, create_graph=second)
        it = iter(grads)
        phi = {s: {p: (phi[s][p] - cfg["inner_lr"] * next(it)) for p in parts} for s in sites}
        if not second:
            phi = {s: {p: phi[s][p].detach().requires_grad_(True) for p in parts} for s in sites}

    draw(phi, query)
    query_nll = task_nll(model, hooks, query, tasks, samples)
    data_term = query_nll.mean()
    if weight:
        hyper = weight_hyperprior(theta, sites, cfg, cfg["hyper_mean_std"], cfg["hyper_a0"], cfg["hyper_b0"])
    else:
        hyper = hyperprior(theta, sites, floor, cfg["hyper_mean_std"], cfg["hyper_a0"], cfg["hyper_b0"])
    hyper_term = cfg["gamma"] * hyper / cfg["num_train_tasks"]
    theta_flat = [theta[s][p] for s in sites for p in parts]
    if second:
        kl = kl_of(phi, theta)
        loss = data_term + cfg["beta"] * kl.mean() + hyper_term
        grads = torch.autograd.grad(loss, theta_flat)
    else:
        phi_flat = [phi[s][p] for s in sites for p in parts]
        g_phi = torch.autograd.grad(data_term, phi_flat)
        phi_fixed = {s: {p: phi[s][p].detach() for p in parts} for s in sites}
        kl = kl_of(phi_fixed, theta)
        regulariser = cfg["beta"] * kl.mean() + hyper_term
        g_theta = torch.autograd.grad(regulariser, theta_flat)
        grads = [a.to(b.dtype) + b.sum(0) for a, b in zip(g_theta, g_phi)]
        loss = data_term + regulariser
    for h in hooks.handles:
        h.remove()
    it = iter(grads)
    return ({"outer_loss": loss.item(), "query_nll": data_term.item(), "kl": kl.mean().item(),
             "hyperprior": hyper.item(), "support_nll": support_nll},
            {s: {p: next(it) for p in parts} for s in sites})
