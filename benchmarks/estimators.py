#!/usr/bin/env python3
"""The numbers behind notebooks 06 and 07: VAE likelihoods and a gradient-estimator variance table.

    .venv/bin/python benchmarks/estimators.py           # full budgets (a few minutes on a laptop CPU)
    .venv/bin/python benchmarks/estimators.py --fast    # small budgets, for a quick look

Prints three markdown tables:

1. Notebook 06 — Gaussian VAEs on the binarized scikit-learn digits: held-out negative ELBO
   (nats per image, 32 samples of z per image) for latent sizes 2 and 8, against the
   independent-pixel baseline; for the 2-D latent also the exact −log p(x) from a grid.
2. Notebook 07 — the categorical VAE (2 variables × 10 classes) trained by the score function
   with a leave-one-out baseline, by Gumbel-softmax (τ = 0.5) and by exact enumeration, with the
   same seeds and budget; held-out negative ELBO computed exactly by enumerating the 100 codes.
3. Single-sample gradient estimators on two fixed toy problems with exact gradients:
   ∇_μ E_{z∼N(μ,1)}[z²] at μ = 1 (exact 2), and ∇_θ Σ_k softmax(θ)_k f(e_k) for notebook 07's
   4-way categorical and quadratic cost (exact by enumeration): bias length ± standard error,
   variance (summed over coordinates) and mean squared error, for the score function, the score
   function with a baseline, reparameterization, Gumbel-softmax and straight-through at several τ.

Everything is seeded; the same command prints the same numbers. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils.data import load_digits_tensor
from course_utils.estimators import (
    gaussian_kl_standard_normal,
    gaussian_rsample,
    gumbel_noise,
    gumbel_softmax_sample,
    score_function_surrogate,
    straight_through,
)
from course_utils.seeding import seed_everything
from course_utils.torch_setup import set_torch_threads


def bernoulli_nll(logits, x):
    """−log p(x | logits) summed over pixels; broadcasts. (..., D) -> (...)."""
    return (F.softplus(logits) - x * logits).sum(-1)


def mlp(n_in, n_hidden, n_out):
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))


# --- notebook 06: Gaussian VAE ----------------------------------------------------------------------


class GaussianVAE(nn.Module):
    def __init__(self, d, latent_dim, hidden=128):
        super().__init__()
        self.encoder, self.decoder = mlp(d, hidden, 2 * latent_dim), mlp(latent_dim, hidden, d)

    def neg_elbo(self, x):
        mu, log_sigma = self.encoder(x).chunk(2, dim=-1)
        z = gaussian_rsample(mu, log_sigma)
        return bernoulli_nll(self.decoder(z), x) + gaussian_kl_standard_normal(mu, log_sigma)


def train_gaussian_vae(x_train, latent_dim, steps, seed, batch_size=128, lr=3e-3):
    seed_everything(seed)
    model = GaussianVAE(x_train.shape[1], latent_dim)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = model.neg_elbo(x_train[torch.randint(len(x_train), (batch_size,))]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def grid_neg_log_evidence(model, x, n_grid=201, limit=6.0):
    """Exact −log p(x) for a 2-D latent by a Riemann sum on an n_grid² grid. (N, D) -> (N,)."""
    with torch.no_grad():
        axis = torch.linspace(-limit, limit, n_grid)
        z = torch.cartesian_prod(axis, axis)
        logits = model.decoder(z)
        log_prior = -0.5 * (z**2).sum(-1) - math.log(2 * math.pi)
        cell = float(axis[1] - axis[0]) ** 2
        out = [
            -(torch.logsumexp(xb @ logits.T - F.softplus(logits).sum(-1) + log_prior, -1) + math.log(cell))
            for xb in x.split(60)
        ]
    return torch.cat(out)


def mean_se(values):
    values = values.double()
    return values.mean().item(), (values.std() / math.sqrt(len(values))).item()


def vae_table(data, steps, seed):
    x_train, x_test = data.x_train, data.x_test
    p = x_train.mean(0).clamp(0.5 / len(x_train), 1 - 0.5 / len(x_train))
    baseline = bernoulli_nll(torch.logit(p), x_test)
    print(
        f"\n### Notebook 06: Gaussian VAE on binarized digits ({steps} steps, seed {seed}; nats per held-out image)\n"
    )
    print("| model | held-out −ELBO | held-out −log p(x) (grid) | better than baseline by |")
    print("|---|---|---|---|")
    m, se = mean_se(baseline)
    print(f"| independent pixels (mean image) | {m:.2f} ± {se:.2f} | {m:.2f} (exact) | — |")
    for latent_dim in (2, 8):
        started = time.perf_counter()
        model = train_gaussian_vae(x_train, latent_dim, steps, seed)
        seed_everything(seed)
        with torch.no_grad():
            neg_elbo = torch.stack([model.neg_elbo(x_test) for _ in range(32)]).mean(0)
        m, se = mean_se(neg_elbo)
        gain, gain_se = mean_se(baseline - neg_elbo)
        exact = f"{grid_neg_log_evidence(model, x_test).mean():.2f}" if latent_dim == 2 else "(no grid in 8-D)"
        print(
            f"| VAE, latent {latent_dim} ({time.perf_counter() - started:.0f} s) | {m:.2f} ± {se:.2f} | {exact} | "
            f"{gain:.2f} ± {gain_se:.2f} |"
        )


# --- notebook 07: categorical VAE -------------------------------------------------------------------


class CategoricalVAE(nn.Module):
    def __init__(self, d, n_vars=2, n_classes=10, hidden=128):
        super().__init__()
        self.M, self.K = n_vars, n_classes
        self.encoder, self.decoder = mlp(d, hidden, n_vars * n_classes), mlp(n_vars * n_classes, hidden, d)
        self.codes = torch.tensor(list(itertools.product(range(n_classes), repeat=n_vars)))

    def logits(self, x):
        return self.encoder(x).view(-1, self.M, self.K)

    def kl(self, logits):
        log_q = torch.log_softmax(logits, -1)
        return (log_q.exp() * log_q).sum((-1, -2)) + self.M * math.log(self.K)

    def exact_neg_elbo(self, x):
        log_q = torch.log_softmax(self.logits(x), -1)
        log_q_code = log_q[:, torch.arange(self.M), self.codes].sum(-1)
        code_logits = self.decoder(F.one_hot(self.codes, self.K).float().flatten(-2))  # (codes, D)
        rec = F.softplus(code_logits).sum(-1) - x @ code_logits.T  # (N, codes)
        return (log_q_code.exp() * rec).sum(-1) + self.kl(self.logits(x))

    def loss(self, x, method, tau=0.5):
        logits = self.logits(x)
        kl = self.kl(logits)
        if method == "exact (enumeration)":
            return self.exact_neg_elbo(x).mean()
        if method == "Gumbel-softmax":
            z = gumbel_softmax_sample(logits, tau)
            return (bernoulli_nll(self.decoder(z.flatten(-2)), x) + kl).mean()
        q = torch.distributions.Categorical(logits=logits)
        k = q.sample()
        cost = bernoulli_nll(self.decoder(F.one_hot(k, self.K).float().flatten(-2)), x)
        baseline = (cost.sum() - cost) / (len(cost) - 1)
        return (score_function_surrogate(q.log_prob(k).sum(-1), cost, baseline) + cost + kl).mean()


def categorical_table(data, steps, seeds):
    methods = ["score function + baseline", "Gumbel-softmax", "exact (enumeration)"]
    print(f"\n### Notebook 07: categorical VAE, 2 × 10 classes ({steps} steps; exact held-out −ELBO, nats per image)\n")
    print("| method | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |")
    print("|---|" + "---|" * (len(seeds) + 1))
    for method in methods:
        results = []
        for seed in seeds:
            seed_everything(seed)
            model = CategoricalVAE(data.x_train.shape[1])
            opt = torch.optim.Adam(model.parameters(), lr=3e-3)
            batches = torch.randint(len(data.x_train), (steps, 128), generator=torch.Generator().manual_seed(seed))
            for idx in batches:
                loss = model.loss(data.x_train[idx], method)
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                results.append(model.exact_neg_elbo(data.x_test).mean().item())
        print(f"| {method} | " + " | ".join(f"{r:.2f}" for r in results) + f" | {sum(results) / len(results):.2f} |")


# --- toy problems: the variance table ---------------------------------------------------------------

THETA = torch.tensor([0.8, -0.4, 0.3, -1.0])
C, D_COST = torch.tensor([2.0, -1.0, 0.5, 1.5]), torch.tensor([0.0, 1.0, -0.5, 0.5])


def cost(z):
    return (z @ C) ** 2 + z @ D_COST


def summarize(name, grads, exact):
    """One table row: bias length ± SE, variance (trace of the covariance), mean squared error."""
    bias = (grads.mean(0) - exact).norm().item()
    variance = grads.var(0).sum().item()
    se = math.sqrt(variance / len(grads))
    mean = ", ".join(f"{v:+.3f}" for v in grads.mean(0).tolist())
    return f"| {name} | {mean} | {bias:.4f} ± {se:.4f} | {variance:.4f} | {bias**2 + variance:.4f} |"


def gaussian_rows(n, seed):
    mu0, exact = 1.0, torch.tensor([2.0])
    gen = torch.Generator().manual_seed(seed)
    mu = torch.full((n,), mu0, dtype=torch.float64, requires_grad=True)  # one μ per sample: per-sample gradients
    log_sigma = torch.zeros(n, dtype=torch.float64)
    rows = []
    z = gaussian_rsample(mu, log_sigma, generator=gen)
    rows.append(("reparameterization", torch.autograd.grad((z**2).sum(), mu)[0]))
    z = z.detach()
    log_prob = torch.distributions.Normal(mu, 1.0).log_prob(z)
    rows.append(
        (
            "score function",
            torch.autograd.grad(score_function_surrogate(log_prob, z**2).sum(), mu, retain_graph=True)[0],
        )
    )
    rows.append(
        (
            "score function + baseline b = E[z²]",
            torch.autograd.grad(score_function_surrogate(log_prob, z**2, baseline=mu0**2 + 1).sum(), mu)[0],
        )
    )
    print(f"\n### Toy problem A: ∇_μ E_(z∼N(μ,1))[z²] at μ = 1, single-sample estimators ({n} samples each)\n")
    print("exact gradient: +2.000\n")
    print("| estimator | mean | bias ± SE | variance | bias² + variance |")
    print("|---|---|---|---|---|")
    for name, g in rows:
        print(summarize(name, g.float()[:, None], exact))


def categorical_rows(n, seed, taus):
    theta = THETA.clone().requires_grad_()
    J = (torch.softmax(theta, -1) * cost(torch.eye(4))).sum()
    exact = torch.autograd.grad(J, theta)[0]
    noise = gumbel_noise((n, 4), generator=torch.Generator().manual_seed(seed))  # common random numbers

    def per_sample(kind, tau=1.0):
        theta_each = THETA.expand(n, 4).clone().requires_grad_()
        soft = torch.softmax((theta_each + noise) / tau, -1)
        hard = F.one_hot(soft.argmax(-1), 4).float()
        log_prob = (hard * torch.log_softmax(theta_each, -1)).sum(-1)
        loss = {
            "sf": lambda: score_function_surrogate(log_prob, cost(hard)),
            "sf+b": lambda: score_function_surrogate(log_prob, cost(hard), baseline=J.item()),
            "gs": lambda: cost(soft),
            "st": lambda: cost(straight_through(soft)),
        }[kind]()
        return torch.autograd.grad(loss.sum(), theta_each)[0]

    print(f"\n### Toy problem B: ∇_θ E_(z∼Cat(softmax θ))[(cᵀz)² + dᵀz], K = 4 (notebook 07), {n} samples each\n")
    print("exact gradient (enumeration): " + ", ".join(f"{v:+.3f}" for v in exact.tolist()) + "\n")
    print("| estimator | mean | bias ± SE | variance | bias² + variance |")
    print("|---|---|---|---|---|")
    print(summarize("score function", per_sample("sf"), exact))
    print(summarize("score function + baseline b = J(θ)", per_sample("sf+b"), exact))
    for tau in taus:
        print(summarize(f"Gumbel-softmax, τ = {tau}", per_sample("gs", tau), exact))
    for tau in taus:
        print(summarize(f"straight-through Gumbel, τ = {tau}", per_sample("st", tau), exact))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="small budgets (about a tenth)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    set_torch_threads(1)
    steps_gauss, steps_cat, n_toy = (400, 250, 40_000) if args.fast else (3000, 1000, 400_000)
    started = time.perf_counter()
    data = load_digits_tensor(seed=args.seed, binarize=True)
    vae_table(data, steps_gauss, args.seed)
    categorical_table(data, steps_cat, seeds=(0, 1, 2))
    gaussian_rows(n_toy, args.seed)
    categorical_rows(n_toy, args.seed, taus=(0.1, 0.5, 1.0, 2.0))
    print(f"\n({time.perf_counter() - started:.0f} s in total)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
