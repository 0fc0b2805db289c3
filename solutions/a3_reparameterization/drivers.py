"""Drivers for assignment 3: public code that calls the student's functions inside the grading sandbox.

Each ``name(inputs, h)`` runs in the student's process after the notebook's cells, receives the
grader's inputs for one question (never its check-only keys) and returns plain data whose shape the
question's schema in ``hidden_tests.py`` fixes. No expected value and no check lives here.
"""

from __future__ import annotations

import math

import torch


def tensor(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


def gaussian_rsample(inputs, h):
    f = h.student.gaussian_rsample

    def pathwise():
        # one row per noise draw: per-sample gradients of f(z) = ||z - c||² w.r.t. μ and log σ
        eps = tensor(inputs["path_eps"])
        mu = tensor(inputs["path_mu"]).repeat(len(eps), 1).requires_grad_(True)
        log_sigma = tensor(inputs["path_log_sigma"]).repeat(len(eps), 1).requires_grad_(True)
        z = f(mu, log_sigma, eps)
        return list(torch.autograd.grad(((z - tensor(inputs["c"])) ** 2).sum(), (mu, log_sigma)))

    return {
        "value": h.call(f, tensor(inputs["mu"]), tensor(inputs["log_sigma"]), tensor(inputs["eps"])),
        "pathwise": h.call(pathwise),
    }


def gaussian_kl(inputs, h):
    f = h.student.gaussian_kl

    def gradient():
        mu = tensor(inputs["mu"]).requires_grad_(True)
        log_sigma = tensor(inputs["log_sigma"]).requires_grad_(True)
        return list(torch.autograd.grad(f(mu, log_sigma).sum(), (mu, log_sigma)))

    return {"kl": h.call(f, tensor(inputs["mu"]), tensor(inputs["log_sigma"])), "gradient": h.call(gradient)}


# The ELBO is graded on its own: while it runs, the notebook's gaussian_rsample and gaussian_kl are these
# reference ones, so a mistake in A.1 or A.2 does not cost points here a second time.
REFERENCE = {
    "gaussian_rsample": lambda mu, log_sigma, eps: mu + log_sigma.exp() * eps,
    "gaussian_kl": lambda mu, log_sigma: (0.5 * (mu**2 + (2 * log_sigma).exp() - 1) - log_sigma).sum(-1),
}


def linear_gaussian_log_likelihood(model: dict):
    """log N(x; W z + b, η I) for each row of z, (S, K) -> (S,): the grader's model as a function."""
    W, b, eta = tensor(model["W"]), tensor(model["b"]), model["eta"]
    constant = 0.5 * len(b) * math.log(2 * math.pi * eta)

    def log_likelihood(x, z):
        return -0.5 * ((x - (z @ W.T + b)) ** 2).sum(-1) / eta - constant

    return log_likelihood


def elbo(inputs, h):
    f = h.student.elbo
    log_likelihood = linear_gaussian_log_likelihood(inputs["model"])
    x = tensor(inputs["x"])
    namespace = getattr(f, "__globals__", {})
    saved = {k: namespace[k] for k in REFERENCE if k in namespace}
    namespace.update(REFERENCE)
    try:

        def gradient():
            mu = tensor(inputs["mu"]).requires_grad_(True)
            log_sigma = tensor(inputs["log_sigma"]).requires_grad_(True)
            return list(
                torch.autograd.grad(f(x, mu, log_sigma, tensor(inputs["eps"]), log_likelihood), (mu, log_sigma))
            )

        out = {
            "value": h.call(
                f, x, tensor(inputs["mu"]), tensor(inputs["log_sigma"]), tensor(inputs["eps"]), log_likelihood
            ),
            "gradient": h.call(gradient),
        }
        # The estimator: one estimate per noise batch (R batches of S draws) for each q.
        out["estimates"] = {
            name: [
                h.call(f, x, tensor(q["mu"]), tensor(q["log_sigma"]), eps, log_likelihood) for eps in tensor(q["eps"])
            ]
            for name, q in inputs["estimators"].items()
        }
    finally:
        for k in REFERENCE:
            namespace.pop(k, None)
        namespace.update(saved)
    return out


def gumbel_softmax(inputs, h):
    f = h.student.gumbel_softmax
    logits, g = tensor(inputs["logits"]), tensor(inputs["g"])
    out = {"relaxed": [h.call(f, logits.clone(), tau, g.clone()) for tau in inputs["taus"]]}
    sample = h.student.sample_gumbel
    K = len(inputs["freq_logits"])
    out["noise"] = h.call(sample, (inputs["n_noise"], K), torch.Generator().manual_seed(inputs["noise_seed"]))
    out["repeats"] = [
        h.call(sample, (inputs["n_repeat"], K), torch.Generator().manual_seed(seed)) for seed in inputs["repeat_seeds"]
    ]
    return out


def straight_through(inputs, h):
    f = h.student.straight_through
    logits, tau = tensor(inputs["logits"]), inputs["tau"]

    def backward():
        leaf = logits.clone().requires_grad_(True)
        hard = f(torch.softmax(leaf / tau, dim=-1))
        return torch.autograd.grad((tensor(inputs["w"]) * hard).sum(), leaf)[0]

    return {"forward": h.call(f, torch.softmax(logits / tau, dim=-1)), "backward": h.call(backward)}
