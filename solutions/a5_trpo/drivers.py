"""Drivers for assignment 5: public code that calls the student's functions inside the grading sandbox.

Each ``name(inputs, h)`` runs in the student's process after the notebook's cells, receives the
grader's inputs for one question (never its check-only keys) and returns plain data whose shape the
question's schema in ``hidden_tests.py`` fixes. No expected value and no check lives here.
"""

from __future__ import annotations

import numpy as np
import torch


def tensor(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


def build_policy(layers: list[int], weights: list | None = None, seed: int | None = None) -> torch.nn.Sequential:
    """A float64 MLP policy (tanh between layers) mapping observations to logits; sizes ``layers``.

    Its parameters are ``weights`` (one [W, b] pair per layer, W of shape (out, in)) or, with ``seed``, drawn
    by NumPy (the same network in every process, whatever torch's random state).
    """
    modules: list[torch.nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:], strict=True)):
        if i:
            modules.append(torch.nn.Tanh())
        modules.append(torch.nn.Linear(n_in, n_out, dtype=torch.float64))
    policy = torch.nn.Sequential(*modules)
    linears = [m for m in policy if isinstance(m, torch.nn.Linear)]
    rng = np.random.default_rng(seed) if weights is None else None
    with torch.no_grad():
        for k, linear in enumerate(linears):
            if weights is None:
                scale = 1.5 / np.sqrt(linear.in_features)
                linear.weight.copy_(torch.from_numpy(rng.normal(0, scale, tuple(linear.weight.shape))))
                linear.bias.copy_(torch.from_numpy(rng.normal(0, 0.3, tuple(linear.bias.shape))))
            else:
                linear.weight.copy_(tensor(weights[k][0]))
                linear.bias.copy_(tensor(weights[k][1]))
    return policy


def large_case(inputs) -> tuple[torch.nn.Sequential, torch.Tensor, torch.Tensor]:
    """The large network's policy, observations and vector, all drawn from ``inputs["large"]["seed"]``."""
    large = inputs["large"]
    policy = build_policy(large["layers"], seed=large["seed"])
    rng = np.random.default_rng(large["seed"] + 1)
    n_params = sum(p.numel() for p in policy.parameters())
    obs = torch.from_numpy(rng.normal(0, 1, (large["batch"], large["layers"][0])))
    v = torch.from_numpy(rng.normal(0, 1, n_params))
    return policy, obs, v


def fisher_vector_product(inputs, h):
    f = h.student.fisher_vector_product
    small = build_policy(inputs["layers"], weights=inputs["weights"])
    obs = tensor(inputs["obs"])
    out = {"small": [h.call(f, small, obs.clone(), tensor(c["v"]), c["damping"]) for c in inputs["calls"]]}
    policy, obs, v = large_case(inputs)  # tens of thousands of parameters: F itself would not fit in memory
    out["large"] = h.call(f, policy, obs, v, inputs["large"]["damping"])
    return out


class CountedProduct:
    """v ↦ A v for the grader's matrix A, one vector (n,) at a time, counting the products."""

    def __init__(self, matrix):
        self.matrix = tensor(matrix)
        self.calls = 0

    def __call__(self, v):
        self.calls += 1
        v = torch.as_tensor(v, dtype=torch.float64)
        if v.shape != self.matrix.shape[:1]:
            raise ValueError(f"the product takes one vector of shape {tuple(self.matrix.shape[:1])}")
        return self.matrix @ v


def conjugate_gradient(inputs, h):
    f = h.student.conjugate_gradient
    out = []
    for case in inputs["cases"]:
        product = CountedProduct(case["A"])
        x = h.call(f, product, tensor(case["b"]), case["n_iters"], case["tol"])
        out.append({"x": x, "products": product.calls})
    return out


def trpo_full_step(inputs, h):
    f = h.student.trpo_full_step
    out = []
    for case in inputs["cases"]:
        product = CountedProduct(case["F"])
        out.append(h.call(f, tensor(case["x"]), product, case["max_kl"]))
    return out


class AlongTheStep:
    """The grader's surrogate L(θ_old + step) and mean KL̄(θ_old + step) as functions of the step vector.

    With t = ⟨step, d⟩ / ⟨d, d⟩ for the full step d and the rest of the step r = step − t d:
    L = L0 + a·t − b·t² − ‖r‖² and KL̄ = κ·t² + ‖r‖². Both count their evaluations.
    """

    def __init__(self, case):
        self.d = tensor(case["full_step"])
        self.L0, self.a, self.b, self.kappa = case["L0"], case["a"], case["b"], case["kappa"]
        self.surrogate_calls = self.kl_calls = 0

    def _split(self, step):
        step = torch.as_tensor(step, dtype=torch.float64)
        if step.shape != self.d.shape:
            raise ValueError(f"a step has the full step's shape {tuple(self.d.shape)}")
        t = (step @ self.d) / (self.d @ self.d)
        rest = step - t * self.d
        return t, rest @ rest

    def surrogate(self, step):
        self.surrogate_calls += 1
        t, rest = self._split(step)
        return self.L0 + self.a * t - self.b * t**2 - rest

    def kl(self, step):
        self.kl_calls += 1
        t, rest = self._split(step)
        return self.kappa * t**2 + rest


def backtracking_line_search(inputs, h):
    f = h.student.backtracking_line_search
    out = []
    for case in inputs["cases"]:
        line = AlongTheStep(case)
        fraction = h.call(
            f, line.surrogate, line.kl, tensor(case["full_step"]), case["max_kl"], case["coef"], case["max_backtracks"]
        )
        out.append({"fraction": fraction, "surrogate_calls": line.surrogate_calls, "kl_calls": line.kl_calls})
    return out
