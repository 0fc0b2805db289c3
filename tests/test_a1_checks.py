"""Assignment 1's hidden checks, on their own: the exact quantities and reference simulations they rely on,
and that an honest estimator passes them while "exact value plus noise" oracles do not (fast, no sandbox).

The end-to-end cases (real notebooks graded in the sandbox) are in tests/grading_corpus/a1_score_function.py.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from course_grader.checks import mean_matches, same_variance
from course_grader.grading import check_question
from course_grader.runner import Helpers
from course_grader.spec import load_assignment
from course_utils.tabular import exact_J, sample_episode, score_function_gradients

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions"
SPEC = load_assignment(SOLUTIONS, "a1_score_function")
H = sys.modules["_course_hidden_tests_a1_score_function"]


def inputs_of(question: str, seed: int) -> dict:
    k = [q.id for q in SPEC.questions].index(question)
    return SPEC.questions[k].make_inputs(np.random.default_rng([seed, k]))


def record(value) -> dict:
    return {"value": np.asarray(value, dtype=np.float64).tolist()}


# ----------------------------------------------------------------------------- exact moments, reference simulations


@pytest.mark.parametrize("seed", [0, 1])
def test_exact_return_variance_matches_a_large_simulation(seed):
    """The second-moment Bellman equation gives Var(G_0) exactly: 400,000 simulated returns agree within 5 SE."""
    inputs = inputs_of("estimate_J", seed)
    mdp, theta = H.build_mdp(inputs["mdp"]), inputs["theta"]
    J, variance = H.return_moments(mdp, theta)
    assert math.isclose(J, float(exact_J(mdp, torch.tensor(theta, dtype=torch.float64))), rel_tol=1e-10)
    G = H.simulate(mdp, theta, 400_000, np.random.default_rng(seed))
    n = len(G)
    assert abs(G.mean() - J) < 5 * math.sqrt(variance / n)
    d = (G - J) ** 2  # E[d] = Var(G_0), with its own standard error
    assert abs(d.mean() - variance) < 5 * d.std(ddof=1) / math.sqrt(n), (d.mean(), variance)
    # and a wrong formula (the undiscounted second moment) would be far off
    assert abs(H.return_moments(mdp.with_gamma(1.0), theta)[1] - variance) > 10 * d.std(ddof=1) / math.sqrt(n)


def test_simulated_returns_are_distributed_like_sample_episode():
    """The grader's vectorised simulation samples the same returns as course_utils' sample_episode."""
    inputs = inputs_of("estimate_J", 2)
    mdp, theta = H.build_mdp(inputs["mdp"]), inputs["theta"]
    rng = np.random.default_rng(3)
    pi = H.policy_table(theta)
    course = np.array(
        [
            float(np.sum(mdp.gamma ** np.arange(len(t.rewards)) * t.rewards))
            for t in (sample_episode(mdp, pi, rng) for _ in range(4000))
        ]
    )
    ok, why = H.same_distribution(course[:, None], H.simulate(mdp, theta, 20_000, rng)[:, None])
    assert ok, why
    pairs = course.reshape(-1, 2)
    two = np.c_[pairs.mean(axis=1), pairs.std(axis=1, ddof=1) / math.sqrt(2)]
    assert H.returns_recovered(two, H.simulate(mdp, theta, H.N_REFERENCE_J, rng))[0]


@pytest.mark.parametrize(("weighting", "baseline"), [("total", 0.0), ("reward_to_go", 0.0), ("reward_to_go", 10.0)])
def test_simulated_gradients_are_the_course_estimator(weighting, baseline):
    """Unbiased against autograd through exact_J, and with score_function_gradients' variance and distribution."""
    inputs = inputs_of("policy_gradient", 0)
    mdp, theta = H.build_mdp(inputs["mdp"]), np.array(inputs["theta"])
    gradient = H.exact_gradient(mdp, theta).reshape(-1)
    rng = np.random.default_rng(4)
    mine = H.simulate(mdp, theta, 20_000, rng, weighting, baseline).reshape(20_000, -1)
    course = score_function_gradients(mdp, theta, 4000, rng, weighting=weighting, baseline=baseline or None)
    assert mean_matches(mine, gradient).passed
    assert same_variance(mine, course.reshape(4000, -1), gradient)[0]
    assert H.same_distribution(course, mine)[0]


def test_the_score_function_support_is_exact():
    """The enumerated values and probabilities reproduce the exact mean and variance of the n-sample estimator."""
    inputs = inputs_of("baseline", 0)
    for b in [0.0, *inputs["baselines"]]:
        points, probs, _ = H.sf_support(inputs["theta"], inputs["f"], b, 3)
        gradient, variance = H.sf_exact(inputs["theta"], inputs["f"], b, 3)
        assert math.isclose(probs.sum(), 1.0, rel_tol=1e-12)
        assert np.allclose(probs @ points, gradient, atol=1e-12)
        assert math.isclose(probs @ ((points - gradient) ** 2).sum(axis=1), variance, rel_tol=1e-9)


# ----------------------------------------------------------------------------- checks: honest passes, oracles fail


def _estimate_J_results(inputs, kind: str, rng) -> list:
    mdp, theta = H.build_mdp(inputs["mdp"]), inputs["theta"]
    J, variance = H.return_moments(mdp, theta)
    out = []
    for case in inputs["cases"]:
        n, calls = case["n_episodes"], len(case["seeds"])
        if kind == "oracle":  # exact J + Gaussian noise of the right variance; stderr as for Gaussian returns
            sd = math.sqrt(variance / n)
            estimates = J + rng.normal(0, sd, calls)
            stderrs = sd * np.sqrt(rng.chisquare(n - 1, calls) / (n - 1))
        else:
            G = H.simulate(mdp, theta, n * calls, rng).reshape(calls, n)
            estimates, stderrs = G.mean(axis=1), G.std(axis=1, ddof=1 if kind == "honest" else 0) / math.sqrt(n)
        out += [record([e, s]) for e, s in zip(estimates, stderrs, strict=True)]
    return out


@pytest.mark.parametrize(("kind", "expected"), [("honest", 1.0), ("ddof0", 0.5), ("oracle", 0.0)])
def test_estimate_J_is_graded_as_an_estimator(kind, expected):
    """Monte Carlo passes; ddof=0 loses the standard-error part only; exact J plus calibrated noise gets nothing."""
    q = SPEC.question("estimate_J")
    inputs = inputs_of("estimate_J", 5)
    fraction, _, messages, _ = check_question(q, inputs, _estimate_J_results(inputs, kind, np.random.default_rng(6)))
    assert fraction == expected, messages


@pytest.mark.parametrize("kind", ["honest", "oracle"])
def test_score_function_estimates_must_lie_on_the_estimators_support(kind):
    q = SPEC.question("baseline")
    inputs = inputs_of("baseline", 1)
    rng = np.random.default_rng(7)
    p = H.policy_table(inputs["theta"])
    f = np.array(inputs["f"])
    raw = []
    for b in inputs["baselines"]:
        terms = (f - b)[:, None] * (np.eye(len(p)) - p)
        if kind == "honest":
            raw.append([record(terms[rng.choice(len(p), size=3, p=p)].mean(axis=0)) for _ in inputs["seeds"]])
        else:  # the exact gradient plus Gaussian noise with the estimator's exact covariance
            gradient = p @ terms
            cov = (p[:, None, None] * np.einsum("ki,kj->kij", terms - gradient, terms - gradient)).sum(axis=0) / 3
            raw.append([record(x) for x in rng.multivariate_normal(gradient, cov, size=len(inputs["seeds"]))])
    fraction, status, messages, _ = check_question(q, inputs, raw)
    assert fraction == (1.0 if kind == "honest" else 0.0), messages
    if kind == "oracle":
        assert "finitely many values" in messages[0]


def test_train_policy_needs_policy_gradient_steps():
    """Value iteration reaches J* but its single iterations are no gradient steps: no credit at all."""
    q = SPEC.question("train_policy")
    inputs = inputs_of("train_policy", 0)
    mdp = H.build_mdp(inputs["mdp"])
    Q, _ = H.value_iteration(mdp)
    theta = np.zeros((mdp.n_states, mdp.n_actions))
    theta[np.arange(mdp.n_states), Q.argmax(axis=1)] = 10.0
    packed = Helpers({}).arrays({"value": theta})
    steps = [record(theta) for _ in inputs["step"]["seeds"]]
    fraction, _, messages, _ = check_question(q, inputs, {"steps": steps, "trained": {"value": packed}})
    assert fraction == 0.0 and "not policy-gradient steps" in messages[1], messages
    honest = score_function_gradients(mdp, np.zeros_like(theta), 2 * len(steps), np.random.default_rng(8))
    lr = inputs["step"]["learning_rate"]
    steps = [record(lr * g) for g in honest.reshape(len(steps), 2, *theta.shape).mean(axis=1)]
    fraction, _, messages, _ = check_question(q, inputs, {"steps": steps, "trained": {"value": packed}})
    assert fraction == 1.0, messages
