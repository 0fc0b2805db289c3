"""Drivers for assignment 1: public code that calls the student's functions inside the grading sandbox.

Each ``name(inputs, h)`` runs in the student's process after the notebook's cells, receives the
grader's inputs for one question (never its check-only keys) and returns plain data whose shape the
question's schema in ``hidden_tests.py`` fixes. No expected value and no check lives here.
"""

from __future__ import annotations

import numpy as np
import torch

from course_utils.tabular import TabularMDP


def build_mdp(data: dict) -> TabularMDP:
    """The grader's random MDP (plain data) as a :class:`TabularMDP`."""
    S, A = len(data["R"]), len(data["R"][0])
    return TabularMDP(
        np.array(data["P"]),
        np.array(data["R"]),
        np.array(data["p0"]),
        np.array(data["terminal"]),
        data["gamma"],
        tuple(f"s{i}" for i in range(S)),
        tuple(f"a{i}" for i in range(A)),
    )


def discounted_return(inputs, h):
    f = h.student.discounted_return
    return [h.call(f, np.array(e["rewards"]), e["gamma"]) for e in inputs["episodes"]]


def returns_to_go(inputs, h):
    f = h.student.returns_to_go
    out = []
    for c in inputs["cases"]:
        kwargs = {"terminated": c["terminated"], "truncated": c["truncated"]}
        if c["last_value"] is not None:
            kwargs["last_value"] = c["last_value"]
        out.append(h.call(f, np.array(c["rewards"]), c["gamma"], **kwargs))
    return out


def estimate_J(inputs, h):  # noqa: N802 - the notebook's name
    f = h.student.estimate_J
    mdp = build_mdp(inputs["mdp"])
    theta = torch.tensor(inputs["theta"], dtype=torch.float64)
    return [
        h.call(f, mdp, theta.clone(), case["n_episodes"], np.random.default_rng(s))
        for case in inputs["cases"]
        for s in case["seeds"]
    ]


def score_function(inputs, h):
    f = h.student.score_function_estimate
    theta = torch.tensor(inputs["theta"], dtype=torch.float64)
    values = torch.tensor(inputs["f"], dtype=torch.float64)
    out = []
    for b in inputs["baselines"]:
        kwargs = {} if b is None else {"baseline": b}
        out.append(
            [
                h.call(f, theta.clone(), values.clone(), inputs["n_samples"], np.random.default_rng(s), **kwargs)
                for s in inputs["seeds"]
            ]
        )
    return out


def optimal_baseline(inputs, h):
    f = h.student.optimal_baseline
    return [
        h.call(f, torch.tensor(p["theta"], dtype=torch.float64), torch.tensor(p["f"], dtype=torch.float64))
        for p in inputs["problems"]
    ]


def policy_gradient(inputs, h):
    f = h.student.estimate_policy_gradient
    mdp = build_mdp(inputs["mdp"])
    theta = torch.tensor(inputs["theta"], dtype=torch.float64)
    out = []
    for weighting, baseline in inputs["configs"]:
        out.append(
            [
                h.call(
                    f,
                    mdp,
                    theta.clone(),
                    inputs["n_episodes"],
                    np.random.default_rng(s),
                    weighting=weighting,
                    baseline=baseline,
                )
                for s in inputs["seeds"]
            ]
        )
    return out


def train_policy(inputs, h):
    """Single iterations from θ = 0 (each θ_1 = α ĝ), then one full training run."""
    f = h.student.train_policy
    mdp = build_mdp(inputs["mdp"])
    step = inputs["step"]
    steps = [
        h.call(f, mdp, 1, step["n_episodes"], step["learning_rate"], np.random.default_rng(s)) for s in step["seeds"]
    ]
    trained = h.call_arrays(
        f,
        mdp,
        inputs["n_iterations"],
        inputs["n_episodes"],
        inputs["learning_rate"],
        np.random.default_rng(inputs["seed"]),
    )
    return {"steps": steps, "trained": trained}
