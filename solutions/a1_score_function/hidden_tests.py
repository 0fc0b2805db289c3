"""Hidden checks for assignment 1, "Returns and the score function" (never released, never sandboxed).

How grading works is described in ``course_grader/spec.py``: for each question
``make_*_inputs`` draws fresh inputs here, the function of the same name in
``drivers.py`` (public, no expected values) calls the student's functions on
them inside the sandbox, ``*_RESULT`` fixes the shape of what it returns, and
``check_*`` tests properties of the parsed values here, in the grader's
process: agreement with the definitions (returns), unbiasedness against exact
gradients from enumeration or autograd through the exact J(θ), the variance a
correct estimator has (computed exactly, or from the grader's own simulation),
and the estimator's whole DISTRIBUTION, so that an oracle (the exact value plus
calibrated noise, value iteration instead of gradient ascent) fails:

- a score-function estimate from n samples of a K-category distribution takes
  one of finitely many values, each with a multinomial probability: every
  returned estimate must be one of them, with those frequencies;
- with two episodes, J_hat ∓ stderr are the two sampled returns: they must be
  returns the MDP produces, as often as it produces them;
- policy-gradient estimates and one step of ``train_policy`` are compared with
  the grader's own simulation of the estimator (Kolmogorov-Smirnov, and how
  often each value the estimator takes with positive probability occurs).

Any correct implementation passes, whatever order it draws its random numbers
in; statistical tests have a false-alarm probability of about 1e-6 each
(``course_grader.checks.ALPHA``). Messages name the property that failed,
never the expected number nor a drawn input.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from scipy import stats

from course_grader.checks import (
    ALPHA,
    Rubric,
    Verdict,
    Wrong,
    mean_matches,
    same_variance,
    variance_matches,
    z_threshold,
)
from course_grader.schema import Array, Call, Fields, ListOf, Number, Weights, values
from course_grader.spec import Assignment, Question, load_drivers
from course_utils.tabular import TabularMDP, exact_J, value_iteration

DRIVERS = load_drivers(__file__)
build_mdp = DRIVERS.build_mdp

# ----------------------------------------------------------------------------- shared pieces


def random_mdp(
    rng: np.random.Generator,
    n_live: int = 3,
    n_actions: int = 2,
    gamma: float | None = None,
    stay: tuple[float, float] = (0.3, 0.8),
    unit_rewards: bool = False,
) -> dict:
    """A random episodic MDP as plain data: ``n_live`` ordinary states, then 2 terminal ones.

    Every (s, a) stays among the ordinary states with a probability drawn from
    ``stay`` (so it ends the episode with probability at least 1 − stay[1]):
    episodes last a few steps on average and J(θ) is finite for every policy,
    also at γ = 1. Rewards are integers in [-2, 5], or uniform in [-1, 1] with
    ``unit_rewards``.
    """
    S = n_live + 2
    P = np.zeros((S, n_actions, S))
    for s in range(n_live):
        for a in range(n_actions):
            live = rng.dirichlet(np.ones(n_live)) * rng.uniform(*stay)
            end = rng.dirichlet(np.ones(2)) * (1 - live.sum())
            P[s, a, :n_live], P[s, a, n_live:] = live, end
    for s in range(n_live, S):
        P[s, :, s] = 1.0
    R = np.zeros((S, n_actions))
    if unit_rewards:
        R[:n_live] = rng.uniform(-1, 1, size=(n_live, n_actions)).round(4)
    else:
        R[:n_live] = rng.integers(-2, 6, size=(n_live, n_actions)).astype(float)
    p0 = np.zeros(S)
    p0[:n_live] = rng.dirichlet(np.ones(n_live))
    terminal = [False] * n_live + [True, True]
    gamma = float(rng.uniform(0.5, 0.8)) if gamma is None else gamma
    return {"P": P.tolist(), "R": R.tolist(), "p0": p0.tolist(), "terminal": terminal, "gamma": gamma}


def exact_gradient(mdp: TabularMDP, theta) -> np.ndarray:
    """∇_θ J(θ) by autograd through the exact J (Bellman linear solve): the ground truth."""
    theta = torch.tensor(np.asarray(theta, dtype=np.float64), requires_grad=True)
    exact_J(mdp, theta).backward()
    return theta.grad.numpy()


def _ratio(a: float, b: float) -> str:
    """a / b for a message ("inf" when b is 0)."""
    return f"{a / b:.2f}" if b > 0 else "inf"


def _seeds(rng: np.random.Generator, n: int) -> list[int]:
    return [int(x) for x in rng.integers(0, 2**62, size=n)]


def policy_table(theta) -> np.ndarray:
    """π_θ(a|s) = softmax(θ[s])[a] as a float64 (S, A) array."""
    theta = np.asarray(theta, dtype=np.float64)
    pi = np.exp(theta - theta.max(axis=-1, keepdims=True))
    return pi / pi.sum(axis=-1, keepdims=True)


def return_moments(mdp: TabularMDP, theta) -> tuple[float, float]:
    """J(θ) = E[G_0] and the exact variance Var(G_0) of the discounted return under π_θ.

    With V(s) = E[G | s] and M(s) = E[G² | s] (both 0 on terminal states) and G = r + γ G' after (s, a):
    M(s) = Σ_a π(a|s) [R(s,a)² + 2γ R(s,a) Σ_s' P(s'|s,a) V(s')] + γ² Σ_s' P_π(s'|s) M(s'), a linear
    system like the Bellman equation for V. Var(G_0) = Σ_s p0(s) M(s) − J².
    """
    pi = policy_table(theta)
    live = ~np.asarray(mdp.terminal)
    S = mdp.n_states
    P_pi = np.einsum("sa,sat->st", pi, mdp.P) * live[:, None] * live[None, :]
    V = np.linalg.solve(np.eye(S) - mdp.gamma * P_pi, (pi * mdp.R).sum(axis=1) * live)
    PV = mdp.P @ (V * live)  # (S, A): Σ_s' P(s'|s,a) V(s')
    c = (pi * (mdp.R**2 + 2 * mdp.gamma * mdp.R * PV)).sum(axis=1) * live
    M = np.linalg.solve(np.eye(S) - mdp.gamma**2 * P_pi, c)
    J = float(mdp.p0 @ V)
    return J, max(float(mdp.p0 @ M) - J * J, 0.0)


def _cdf(p: np.ndarray) -> np.ndarray:
    """Cumulative probabilities along the last axis, exactly 1 from the last possible outcome on."""
    cdf = np.cumsum(p, axis=-1)
    n = p.shape[-1]
    last = n - 1 - np.argmax(p[..., ::-1] > 0, axis=-1)
    cdf[np.arange(n) >= np.asarray(last)[..., None]] = 1.0
    return cdf


def _draw(cdf_rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One inverse-CDF draw per row of ``cdf_rows`` (n, K)."""
    return (rng.random(len(cdf_rows))[:, None] >= cdf_rows).sum(axis=1)


def simulate(mdp: TabularMDP, theta, n: int, rng: np.random.Generator, weighting=None, baseline: float = 0.0):
    """The grader's own vectorised simulation of ``n`` episodes under π_θ (a reference, never the student's code).

    ``weighting=None``: the discounted returns G_0, shape (n,). ``"total"`` or ``"reward_to_go"``: each
    episode's score-function estimate of ∇_θ J(θ) with a constant ``baseline``, shape (n, S, A), as
    ``course_utils.tabular.score_function_gradients`` defines it: (R_γ − b) Σ_t ∇log π(a_t|s_t), or
    Σ_t γ^t (G_t − b) ∇log π(a_t|s_t) = Σ_t γ^t r_{t+1} Σ_{t'≤t} ∇log π(a_t'|s_t') − b Σ_t γ^t ∇log π(a_t|s_t).
    """
    pi = policy_table(theta)
    S, A = pi.shape
    p0_cdf, P_cdf, pi_cdf = _cdf(np.asarray(mdp.p0)), _cdf(np.asarray(mdp.P)), _cdf(pi)
    R, terminal, gamma = np.asarray(mdp.R), np.asarray(mdp.terminal), mdp.gamma
    s = _draw(np.broadcast_to(p0_cdf, (n, S)), rng)
    G, discount, alive = np.zeros(n), np.ones(n), np.ones(n, dtype=bool)
    if weighting is not None:
        scores = np.zeros((n, S, A))  # Σ_{t'≤t} ∇ log π(a_t'|s_t') so far
        grads = np.zeros((n, S, A))
    for _ in range(1000):  # sample_episode's time limit
        idx = np.flatnonzero(alive)
        if len(idx) == 0:
            break
        here = s[idx]
        a = _draw(pi_cdf[here], rng)
        r = R[here, a]
        G[idx] += discount[idx] * r
        if weighting is not None:
            score = -pi[here]
            score[np.arange(len(idx)), a] += 1.0
            scores[idx, here] += score
            if weighting == "reward_to_go":
                grads[idx] += (discount[idx] * r)[:, None, None] * scores[idx]
                grads[idx, here] -= (baseline * discount[idx])[:, None] * score
        discount[idx] *= gamma
        s[idx] = _draw(P_cdf[here, a], rng)
        alive[idx] = ~terminal[s[idx]]
    if weighting is None:
        return G
    if weighting == "total":
        grads = (G - baseline)[:, None, None] * scores
    return grads


# Pearson's chi-square overstates its p-values a little in the far tail (measured on the score-function
# supports: 1.3 times as many p-values below 1e-5 as nominal), so chi-square tests use a tenth of ALPHA.
CHI2_ALPHA = ALPHA / 10
ATOM_TOL = 1e-5  # relative: values this close are the same value (float32 arithmetic stays well inside)


def atoms(reference: np.ndarray, tol: float = ATOM_TOL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The values ``reference`` (1-d) takes repeatedly: (lower ends, upper ends, counts) of runs of equal values.

    Estimators built from sampled episodes or categories have atoms (an unvisited state's row is exactly 0, a
    one-step episode's return is one reward, ...); noise added to an exact value has none.
    """
    ref = np.sort(np.asarray(reference, dtype=np.float64))
    width = tol * (1.0 + np.abs(ref))
    starts = np.flatnonzero(np.r_[True, np.diff(ref) > width[1:]])
    ends = np.r_[starts[1:], len(ref)] - 1
    counts = ends - starts + 1
    keep = counts >= 2
    return ref[starts[keep]] - width[starts[keep]], ref[ends[keep]] + width[ends[keep]], counts[keep]


def atom_index(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """For each of ``x``, the index of the atom [lo, hi] it falls in, or -1."""
    k = np.searchsorted(lo, x, side="right") - 1
    inside = (k >= 0) & (x <= hi[np.maximum(k, 0)])
    return np.where(inside, k, -1)


def atoms_agree(sample: np.ndarray, reference: np.ndarray, min_expected: float = 20.0) -> float:
    """p-value of a two-sample chi-square test: does ``sample`` hit the reference's frequent atoms as often?"""
    lo, hi, counts = atoms(reference)
    frequent = counts / len(reference) * len(sample) >= min_expected
    if not frequent.any():
        return 1.0
    lo, hi, counts = lo[frequent], hi[frequent], counts[frequent]
    k = atom_index(np.asarray(sample, dtype=np.float64), lo, hi)
    hits = np.bincount(k[k >= 0], minlength=len(lo))
    table = np.array([np.r_[hits, len(sample) - hits.sum()], np.r_[counts, len(reference) - counts.sum()]])
    table = table[:, table.sum(axis=0) > 0]
    return 1.0 if table.shape[1] < 2 else float(stats.chi2_contingency(table, correction=False).pvalue)


def same_distribution(samples: np.ndarray, reference: np.ndarray, alpha: float = ALPHA) -> tuple[bool, str]:
    """Could ``samples`` (M, D) and the grader's ``reference`` (R, D) come from the same distribution?

    Per coordinate: where the reference never varies, every sample must equal its constant; elsewhere a
    two-sample Kolmogorov-Smirnov test (conservative for the atoms of discrete estimators), after values within
    rounding of an atom are set to it, and a chi-square test of how often each frequent atom is hit (a KS test
    misses an atom of a few percent; noise never hits one). Bonferroni over the coordinates and both tests.
    Returns (passed, what failed).
    """
    samples = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    reference = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    varying = []
    for i in range(reference.shape[1]):
        constant = reference[0, i]
        if np.all(reference[:, i] == constant):
            if np.any(np.abs(samples[:, i] - constant) > ATOM_TOL * (1.0 + abs(constant))):
                return False, "an entry that the estimator never changes varies"
        else:
            varying.append(i)
    n_tests = 2 * max(len(varying), 1)
    worst_ks, worst_atoms = 1.0, 1.0
    for i in varying:
        lo, hi, _ = atoms(reference[:, i])
        snapped = []
        for x in (samples[:, i], reference[:, i]):
            k = atom_index(x, lo, hi)
            snapped.append(np.where(k >= 0, lo[np.maximum(k, 0)], x))
        worst_ks = min(worst_ks, stats.ks_2samp(*snapped).pvalue)
        worst_atoms = min(worst_atoms, atoms_agree(samples[:, i], reference[:, i]))
    if worst_atoms * n_tests < CHI2_ALPHA:
        return (
            False,
            f"values the estimator takes with positive probability occur with other frequencies (chi-square p = {worst_atoms * n_tests:.1e} after Bonferroni)",
        )
    if worst_ks * n_tests < alpha:
        return False, f"Kolmogorov-Smirnov p = {worst_ks * n_tests:.1e} after Bonferroni"
    return True, ""


def pooled_chisquare(counts: np.ndarray, probs: np.ndarray, min_expected: float = 20.0) -> float:
    """p-value of Pearson's chi-square test of ``counts`` against cell probabilities ``probs``.

    Cells expected fewer than ``min_expected`` times are pooled into one cell (merged into the smallest other
    cell if the pool is still too small), so that the chi-square approximation holds in its far tail.
    """
    counts, probs = np.asarray(counts, dtype=np.float64), np.asarray(probs, dtype=np.float64)
    expected = probs / probs.sum() * counts.sum()
    big = expected >= min_expected
    cells_o, cells_e = list(counts[big]), list(expected[big])
    if (~big).any():
        pool_o, pool_e = counts[~big].sum(), expected[~big].sum()
        if pool_e >= min_expected or not cells_e:
            cells_o.append(pool_o)
            cells_e.append(pool_e)
        else:
            k = int(np.argmin(cells_e))
            cells_o[k] += pool_o
            cells_e[k] += pool_e
    if len(cells_e) < 2:
        return 1.0
    o, e = np.array(cells_o), np.array(cells_e)
    return float(stats.chi2.sf(((o - e) ** 2 / e).sum(), len(e) - 1))


def clusters(points: np.ndarray, tol: float) -> np.ndarray:
    """Label each of ``points`` (C, D) so that points closer than ``tol`` (max-norm) share a label."""
    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    labels = np.arange(len(points))
    for i in range(len(points)):
        close = np.flatnonzero(np.abs(points - points[i]).max(axis=1) <= tol)
        root = labels[close].min()
        labels[np.isin(labels, labels[close])] = root
    return np.unique(labels, return_inverse=True)[1]


def nearest(samples: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest of ``points`` (C, D) to each of ``samples`` (M, D), and the max-norm distance."""
    samples = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    index = np.empty(len(samples), dtype=np.int64)
    distance = np.empty(len(samples))
    for start in range(0, len(samples), 500):
        block = np.abs(samples[start : start + 500, None, :] - points[None, :, :]).max(axis=2)
        index[start : start + 500] = block.argmin(axis=1)
        distance[start : start + 500] = block.min(axis=1)
    return index, distance


# ----------------------------------------------------------------------------- A.1 discounted_return


def make_discounted_return_inputs(rng):
    gammas = [0.0, 1.0, *rng.uniform(0.5, 0.999, size=6).round(6).tolist()]
    episodes = []
    for gamma in gammas:
        length = int(rng.integers(1, 40))
        episodes.append({"rewards": rng.normal(0, 2, size=length).round(4).tolist(), "gamma": gamma})
    return {"episodes": episodes}


def DISCOUNTED_RETURN_RESULT(inputs):  # noqa: N802 - a schema, named like the constants below
    return ListOf(Call(Number()), len(inputs["episodes"]))


def check_discounted_return(inputs, outcomes) -> Verdict:
    rubric = Rubric()
    wrong, first = 0, None
    for k, (episode, outcome) in enumerate(zip(inputs["episodes"], outcomes, strict=True)):
        r, gamma = np.array(episode["rewards"]), episode["gamma"]
        expected = float(np.sum(gamma ** np.arange(len(r)) * r))
        rubric.details[f"episode {k}"] = {"expected": expected, "got": outcome.value, "failure": outcome.failure}
        if not outcome.ok or not np.isclose(float(outcome.value), expected, rtol=1e-6, atol=1e-8):
            wrong += 1
            first = first or (f"discounted_return {outcome.failure}" if not outcome.ok else None)
    rubric.part(
        "R_γ = r_1 + γ r_2 + ... + γ^{T-1} r_T on the grader's episodes (including γ = 0 and γ = 1)",
        1,
        not wrong,
        f"wrong on {wrong} of {len(outcomes)} episodes" + (f" ({first})" if first else ""),
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- A.2 returns_to_go


def make_returns_to_go_inputs(rng):
    cases = []

    def episode(kind, gamma, terminated, truncated, last_value):
        length = int(rng.integers(1, 30))
        cases.append(
            {
                "kind": kind,
                "rewards": rng.normal(0, 2, size=length).round(4).tolist(),
                "gamma": gamma,
                "terminated": terminated,
                "truncated": truncated,
                "last_value": last_value,
            }
        )

    for _ in range(3):  # terminated: whatever last_value says, nothing follows a terminal state
        episode("terminated", float(rng.uniform(0.5, 0.99)), True, False, float(rng.uniform(1, 5)))
    episode("terminated", float(rng.uniform(0.5, 0.99)), True, True, float(rng.uniform(1, 5)))  # both flags
    for _ in range(3):  # truncated: bootstrap from last_value = V(s_T)
        episode("truncated", float(rng.uniform(0.5, 0.99)), False, True, float(rng.uniform(-5, 5)))
    episode("truncated", float(rng.uniform(0.5, 0.99)), False, True, None)  # default: no bootstrap value
    episode("edge", 0.0, False, True, float(rng.uniform(1, 5)))
    episode("edge", 1.0, True, False, None)
    episode("edge", 1.0, False, True, float(rng.uniform(1, 5)))
    episode("neither", float(rng.uniform(0.5, 0.99)), False, False, None)
    return {"cases": cases}


def _returns_to_go_closed_form(rewards, gamma, tail) -> np.ndarray:
    """G_t = Σ_{k≥t} γ^{k-t} r_{k+1} + γ^{T-t} tail, as one matrix product (no recursion)."""
    T = len(rewards)
    t, k = np.arange(T)[:, None], np.arange(T)[None, :]
    weights = np.where(k >= t, np.power(float(gamma), np.maximum(k - t, 0)), 0.0)
    return weights @ np.asarray(rewards) + np.power(float(gamma), T - np.arange(T)) * tail


def RETURNS_TO_GO_RESULT(inputs):  # noqa: N802
    return ListOf(Call(Array((None,))), len(inputs["cases"]))


def _same_failure_everywhere(outcomes, name: str) -> None:
    """If every call raised the same exception (typically the stub's NotImplementedError), say just that."""
    kinds = {o.exception for o in outcomes}
    if len(kinds) == 1 and None not in kinds and "ValueError" not in kinds:
        outcomes[0].get(name)


def check_returns_to_go(inputs, outcomes):
    _same_failure_everywhere(outcomes, "returns_to_go")
    rubric = Rubric()
    failures = {"terminated": [], "truncated": [], "edge": [], "neither": []}
    returned = 0  # valid episodes for which the function returned a value
    for k, (case, outcome) in enumerate(zip(inputs["cases"], outcomes, strict=True)):
        kind = case["kind"]
        if kind == "neither":
            if outcome.exception != "ValueError":
                failures[kind].append("it returned a value" if outcome.ok else f"it {outcome.failure[:120]}")
            continue
        tail = 0.0 if case["terminated"] else (case["last_value"] or 0.0)
        expected = _returns_to_go_closed_form(case["rewards"], case["gamma"], tail)
        rubric.details[f"case {k}"] = {"expected": expected.tolist()}
        if not outcome.ok:
            failures[kind].append(f"returns_to_go {outcome.failure}")
            continue
        returned += 1
        got = outcome.value
        if got.shape != expected.shape:
            failures[kind].append("it returned a different number of returns than the episode has rewards")
            continue
        bad = ~np.isclose(got, expected, rtol=1e-6, atol=1e-8)
        if bad.any():
            failures[kind].append(
                "disagrees with the definition at every step"
                if bad.all()
                else f"disagrees with the definition at some steps (the first at t={int(np.argmax(bad))})"
            )
    rubric.part(
        "terminated episodes: G_t sums the discounted rewards to the end and nothing after (last_value is ignored)",
        1.0,
        not failures["terminated"],
        "; ".join(failures["terminated"][:2]),
    )
    rubric.part(
        "truncated episodes: the tail after s_T is bootstrapped with γ^{T-t} · last_value (default 0)",
        1.0,
        not failures["truncated"],
        "; ".join(failures["truncated"][:2]),
    )
    rubric.part("γ = 0 and γ = 1", 0.5, not failures["edge"], "; ".join(failures["edge"][:2]))
    rubric.part(
        "an episode that neither terminated nor was truncated is refused with a ValueError (and valid ones are not)",
        0.5,
        not failures["neither"] and returned > 0,
        "; ".join(failures["neither"][:1]) or "it refuses the valid episodes too",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- A.3 estimate_J

# (n_episodes, calls): with 2 episodes J_hat ∓ stderr are the two sampled returns (their distribution is
# checked); 20 episodes is the usual regime (and tells s/√N apart from s, which coincide for N = 2 with ddof=0).
CASES_J = ((2, 1000), (20, 200))
N_REFERENCE_J = 40_000  # returns the grader samples itself
# The standard-error conventions under which J_hat ∓ c·stderr recovers the two returns of a 2-episode estimate:
# s/√N (ddof=1, the one asked), s/√N with ddof=0, and s without dividing by √N. Any of them shows the
# estimates are Monte Carlo averages of sampled returns; the standard-error part then tells them apart.
SE_CONVENTIONS = (1.0, math.sqrt(2.0), 1 / math.sqrt(2.0))


def make_estimate_J_inputs(rng):
    # A small γ and long episodes make discounting matter: an undiscounted estimate is visibly biased.
    return {
        "mdp": random_mdp(rng, n_live=3, n_actions=2, gamma=float(rng.uniform(0.5, 0.7)), stay=(0.8, 0.9)),
        "theta": rng.normal(0, 1, size=(5, 2)).round(4).tolist(),
        "cases": [{"n_episodes": n, "seeds": _seeds(rng, calls)} for n, calls in CASES_J],
        "reference_seed": int(rng.integers(2**62)),
    }


def ESTIMATE_J_RESULT(inputs):  # noqa: N802
    # (estimate, standard error) per call, the cases one after the other
    return ListOf(Call(Array((2,))), sum(len(c["seeds"]) for c in inputs["cases"]))


def returns_recovered(pairs: np.ndarray, reference: np.ndarray) -> tuple[bool, float]:
    """Are J_hat ∓ c·stderr of 2-episode estimates pairs of returns of the MDP, for one convention c?

    The grader's ``reference`` returns give the atoms of the return's distribution (the values that short
    episodes produce with positive probability). The recovered values must hit each frequent atom as often
    as the reference does (:func:`atoms_agree`): noise added to an exact J never lands on an atom.
    Returns (passed, best p-value over the conventions).
    """
    best = max(
        atoms_agree(np.concatenate([pairs[:, 0] - c * pairs[:, 1], pairs[:, 0] + c * pairs[:, 1]]), reference)
        for c in SE_CONVENTIONS
    )
    return best >= CHI2_ALPHA, best


def check_estimate_J(inputs, result):
    rubric = Rubric()
    mdp = build_mdp(inputs["mdp"])
    J, sigma2 = return_moments(mdp, inputs["theta"])
    pairs = values(result, "estimate_J")  # (calls, 2): estimate, standard error
    bounds = np.cumsum([0] + [len(c["seeds"]) for c in inputs["cases"]])
    cases = [(c["n_episodes"], pairs[a:b]) for c, a, b in zip(inputs["cases"], bounds[:-1], bounds[1:], strict=True)]
    rubric.details.update(exact_J=J, exact_return_variance=sigma2)

    # Gate: are these Monte Carlo averages of sampled returns at all? (exact J plus noise is not)
    reference = simulate(mdp, inputs["theta"], N_REFERENCE_J, np.random.default_rng(inputs["reference_seed"]))
    two = next(case for n, case in cases if n == 2)
    recovered, p = returns_recovered(two, reference)
    rubric.details["returns_recovered_p"] = p
    if not recovered:
        raise Wrong(
            "estimate_J does not behave like a Monte Carlo estimate: with 2 episodes, J_hat ∓ stderr should be "
            "the two sampled discounted returns (stderr = s/√N with the sample standard deviation s), but they "
            "are not returns this MDP produces, or not as often as it produces them"
        )

    threshold = z_threshold(len(cases))
    bias_msgs, se_msgs = [], []
    for n, case in cases:
        J_hat, stderr = case[:, 0], case[:, 1]
        m, variance = len(J_hat), sigma2 / n  # Var(J_hat) = σ²/N exactly; E[stderr²] = E[s²]/N = σ²/N too
        z = (
            abs(J_hat.mean() - J) / math.sqrt(variance / m)
            if variance > 0
            else (0.0 if np.allclose(J_hat, J) else math.inf)
        )
        rubric.details[f"{n} episodes"] = {"mean_estimate": float(J_hat.mean()), "bias_z": z}
        if z > threshold:
            bias_msgs.append(f"with {n} episodes the average is {z:.1f} standard errors away")
        # two tests per case (the reported standard errors, the spread), ALPHA for the family
        spread_ok, spread, _ = variance_matches(J_hat[:, None], np.array([J]), variance, alpha=ALPHA / (2 * len(cases)))
        sq = stderr**2
        se = float(sq.std(ddof=1) / math.sqrt(m))
        reported = float(sq.mean())
        z_se = (
            abs(reported - variance) / se
            if se > 0
            else (0.0 if math.isclose(reported, variance, rel_tol=1e-9) else math.inf)
        )
        se_ok = z_se <= z_threshold(len(cases) * 2) and bool(np.all(stderr >= 0))
        rubric.details[f"{n} episodes"].update(stderr_sq_mean=reported, spread=spread, true_variance=variance)
        if not se_ok:
            what = (
                "some are negative"
                if np.any(stderr < 0)
                else f"their squares average {_ratio(reported, variance)} times it"
            )
            se_msgs.append(f"with {n} episodes {what} ({z_se:.1f} standard errors from agreement)")
        if not spread_ok:
            se_msgs.append(
                f"with {n} episodes the estimates spread {_ratio(spread, variance)} times as much as they should"
            )
    rubric.part(
        f"unbiased: over {sum(len(p) for _, p in cases)} independent calls the estimates average to the exact J(θ)",
        1.0,
        not bias_msgs,
        "; ".join(bias_msgs) + (f" (a correct estimator stays within {threshold:.1f})" if bias_msgs else ""),
    )
    rubric.part(
        "the standard error is honest: its square averages to the estimator's true variance σ²/N (σ² the exact "
        "variance of the discounted return, from a second-moment Bellman equation), and the estimates spread "
        "that much",
        1.0,
        not se_msgs,
        "; ".join(se_msgs[:2]),
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- B.1 / B.2 score_function_estimate

N_SAMPLES_SF, N_CALLS_SF = 3, 2000
SUPPORT_TOL = 1e-5  # relative to the largest term: float32 arithmetic stays well inside


def _categorical_problem(rng):
    K = int(rng.integers(3, 6))
    return rng.normal(0, 1, size=K).round(4).tolist(), rng.uniform(-3, 5, size=K).round(4).tolist()


def sf_exact(theta, f, baseline: float = 0.0, n_samples: int = 1):
    """Exact gradient p ⊙ (f − p·f) and exact total variance of the n-sample score-function estimator."""
    theta, f = np.asarray(theta, dtype=np.float64), np.asarray(f, dtype=np.float64)
    p = policy_table(theta)
    gradient = p * (f - p @ f)
    score_sq = ((np.eye(len(p)) - p) ** 2).sum(axis=1)  # ||e_k − p||² = ||∇ log p(k)||²
    second_moment = np.sum(p * (f - baseline) ** 2 * score_sq)
    return gradient, (second_moment - gradient @ gradient) / n_samples


def sf_support(theta, f, baseline: float, n_samples: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Every value the n-sample estimator (1/n) Σ_j (f(z_j) − b) ∇log p(z_j) can take, with its probability.

    The estimate depends only on how often each category was drawn (counts c, Σ c = n): it is
    (1/n) Σ_k c_k (f_k − b)(e_k − p), with the multinomial probability n!/Π c_k! Π p_k^c_k. Values closer than
    the tolerance are merged (their probabilities added). Returns (values (C, K), probabilities (C,), tol).
    """
    p = policy_table(theta)
    K = len(p)
    terms = (np.asarray(f, dtype=np.float64) - baseline)[:, None] * (np.eye(K) - p)  # row k: (f_k − b) ∇log p(k)
    counts = np.array(
        [np.bincount(c, minlength=K) for c in itertools.combinations_with_replacement(range(K), n_samples)]
    )
    points = counts @ terms / n_samples
    log_prob = (
        math.lgamma(n_samples + 1)
        - np.array([sum(math.lgamma(c + 1) for c in row) for row in counts])
        + counts @ np.log(np.maximum(p, 1e-300))
    )
    tol = SUPPORT_TOL * (1.0 + float(np.abs(terms).max()))
    labels = clusters(points, 2 * tol)
    merged = np.array([points[labels == k][0] for k in range(labels.max() + 1)])
    probs = np.bincount(labels, weights=np.exp(log_prob))
    return merged, probs, tol


def sf_distribution(estimates: np.ndarray, theta, f, baseline: float, n_samples: int) -> tuple[int, float]:
    """How many ``estimates`` are NOT values of the n-sample estimator, and the p-value of their frequencies."""
    points, probs, tol = sf_support(theta, f, baseline, n_samples)
    index, distance = nearest(estimates, points)
    off = int(np.sum(distance > tol))
    if off:
        return off, 0.0
    return 0, pooled_chisquare(np.bincount(index, minlength=len(points)), probs)


def _passes(estimates, theta, f, baseline, n_samples) -> bool:
    off, p = sf_distribution(estimates, theta, f, baseline, n_samples)
    return off == 0 and p >= CHI2_ALPHA


def make_score_function_inputs(rng):
    theta, f = _categorical_problem(rng)
    return {"theta": theta, "f": f, "n_samples": N_SAMPLES_SF, "baselines": [None], "seeds": _seeds(rng, N_CALLS_SF)}


def make_baseline_inputs(rng):
    # One baseline near the values of f, one far above them (messages call them "the smaller" and "the larger").
    theta, f = _categorical_problem(rng)
    baselines = [float(np.round(rng.uniform(0, 3), 4)), float(np.round(rng.uniform(15, 25), 4))]
    return {"theta": theta, "f": f, "n_samples": N_SAMPLES_SF, "baselines": baselines, "seeds": _seeds(rng, N_CALLS_SF)}


def SCORE_FUNCTION_RESULT(inputs):  # noqa: N802
    return ListOf(ListOf(Call(Array((len(inputs["theta"]),))), len(inputs["seeds"])), len(inputs["baselines"]))


def _check_sf(inputs, result, rubric: Rubric, weights: tuple[float, float, float]) -> None:
    theta, f, n = inputs["theta"], inputs["f"], inputs["n_samples"]
    names = {0: "", 1: " with the smaller baseline", 2: " with the larger baseline"}
    several = len(inputs["baselines"]) > 1
    checked = []
    for k, (b, outcomes) in enumerate(zip(inputs["baselines"], result, strict=True)):
        estimates = values(outcomes, "score_function_estimate")
        where = names[k + 1] if several else names[0]
        if not any(_passes(estimates, theta, f, c, m) for m, c in _gate_candidates(b, n)):
            raise Wrong(
                f"score_function_estimate{where} does not return score-function estimates: each estimate should "
                f"be an average of {n} terms (f(z_j) − b) ∇log p(z_j) over sampled outcomes z_j, which can take "
                "only finitely many values, but the returned estimates are not among them (or not as often as "
                "sampling makes them)"
            )
        checked.append((b, estimates, where))
    for b, estimates, where in checked:
        gradient, variance = sf_exact(theta, f, b or 0.0, n)
        rubric.details[f"baseline {b}"] = {"exact_gradient": gradient.tolist(), "exact_variance": variance}
        test = mean_matches(estimates, gradient)
        rubric.part(
            f"unbiased{where}: over {len(estimates)} calls the estimates average to the exact gradient",
            weights[0],
            test.passed,
            f"coordinate {test.worst_index} of the average is {test.worst_z:.1f} standard errors "
            f"away (a correct estimator stays within {test.threshold:.1f})",
        )
        ok, measured, z = variance_matches(estimates, gradient, variance)
        rubric.part(
            f"the variance{where} is that of the score-function estimator with {n} samples",
            weights[1],
            ok,
            f"the measured total variance is {measured / variance:.2f} times that ({z:.1f} standard errors away)"
            if variance > 0
            else "",
        )
        off, p = sf_distribution(estimates, theta, f, b or 0.0, n)
        rubric.details[f"baseline {b}"].update(off_support=off, frequencies_p=p)
        rubric.part(
            f"the distribution{where}: every estimate is an average of {n} terms (f(z_j) − b) ∇log p(z_j), and each "
            f"possible value occurs as often as {n} independent draws from p_θ make it",
            weights[2],
            off == 0 and p >= CHI2_ALPHA,
            f"{off} of the {len(estimates)} estimates are not such an average"
            if off
            else f"the values occur with other frequencies (chi-square p = {p:.1e})",
        )


def _gate_candidates(baseline, n_samples):
    """The estimators the gate accepts: the one asked first, then m ≤ 2n samples with the baseline or none."""
    bs = list(dict.fromkeys([baseline or 0.0, 0.0]))
    return [(n_samples, bs[0])] + [
        (m, c) for c in bs for m in range(1, 2 * n_samples + 1) if (m, c) != (n_samples, bs[0])
    ]


def check_score_function(inputs, result):
    rubric = Rubric()
    _check_sf(inputs, result, rubric, weights=(2.0, 1.0, 1.0))
    return rubric.verdict()


def check_baseline(inputs, result):
    rubric = Rubric()
    _check_sf(inputs, result, rubric, weights=(1.0, 1.0, 1.0))
    return rubric.verdict()


# ----------------------------------------------------------------------------- B.4 optimal_baseline


def make_optimal_baseline_inputs(rng):
    return {"problems": [dict(zip(("theta", "f"), _categorical_problem(rng))) for _ in range(6)]}


def OPTIMAL_BASELINE_RESULT(inputs):  # noqa: N802
    return ListOf(Call(Number()), len(inputs["problems"]))


def check_optimal_baseline(inputs, outcomes):
    rubric = Rubric()
    wrong = 0
    for k, (problem, outcome) in enumerate(zip(inputs["problems"], outcomes, strict=True)):
        theta, f = np.array(problem["theta"]), np.array(problem["f"])
        p = np.exp(theta - theta.max())
        p /= p.sum()
        score_sq = ((np.eye(len(p)) - p) ** 2).sum(axis=1)
        best = float(np.sum(p * f * score_sq) / np.sum(p * score_sq))  # minimiser of the total variance
        got = float(outcome.get("optimal_baseline"))
        rubric.details[f"problem {k}"] = {"expected": best, "got": got}
        wrong += not np.isclose(got, best, rtol=1e-6, atol=1e-9)
    rubric.part(
        "b* minimises the total variance E||(f(z) − b) ∇ log p(z)||² − ||∇J||² (closed form by enumeration)",
        1.0,
        wrong == 0,
        f"wrong on {wrong} of {len(outcomes)} grader problems",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- C.2 estimate_policy_gradient

N_EPISODES_PG, N_CALLS_PG, N_REFERENCE_PG = 2, 1000, 4000
PG_CONFIGS = [("total", 0.0), ("reward_to_go", 0.0), ("reward_to_go", "b")]


def make_policy_gradient_inputs(rng):
    # Long episodes and a small γ make the γ^t factor and causality matter; a baseline far from the
    # returns changes the variance a lot, so an ignored baseline shows.
    baseline = float(np.round(rng.uniform(8, 12), 4))
    return {
        "mdp": random_mdp(rng, gamma=float(rng.uniform(0.4, 0.7)), stay=(0.8, 0.9)),
        "theta": rng.normal(0, 1, size=(5, 2)).round(4).tolist(),
        "n_episodes": N_EPISODES_PG,
        "configs": [[w, baseline if b == "b" else b] for w, b in PG_CONFIGS],
        "seeds": _seeds(rng, N_CALLS_PG),
        "reference_seed": int(rng.integers(2**62)),
    }


def POLICY_GRADIENT_RESULT(inputs):  # noqa: N802
    shape = (len(inputs["mdp"]["R"]), len(inputs["mdp"]["R"][0]))
    return ListOf(ListOf(Call(Array(shape)), len(inputs["seeds"])), len(inputs["configs"]))


def reference_estimates(mdp, theta, n_episodes: int, n_estimates: int, rng, weighting: str, baseline: float):
    """``n_estimates`` estimates of ∇J(θ), each the average over ``n_episodes`` episodes of the grader's simulation."""
    per_episode = simulate(mdp, theta, n_estimates * n_episodes, rng, weighting, baseline)
    return per_episode.reshape(n_estimates, n_episodes, -1).mean(axis=1)


def estimator_problems(estimates: np.ndarray, gradient: np.ndarray, reference: np.ndarray) -> list[str]:
    """What distinguishes ``estimates`` (M, S, A) from the grader's ``reference`` sample of the estimator."""
    flat, exact = estimates.reshape(len(estimates), -1), gradient.reshape(-1)
    problems = []
    test = mean_matches(flat, exact)
    if not test.passed:
        entry = np.unravel_index(test.worst_index, gradient.shape)
        problems.append(
            f"biased: the average's entry {tuple(int(i) for i in entry)} is {test.worst_z:.1f} standard errors from the "
            f"exact gradient (a correct estimator stays within {test.threshold:.1f})"
        )
    ok, mine, ref, z = same_variance(flat, reference, exact)
    if not ok:
        problems.append(f"{_ratio(mine, ref)} times the estimator's variance ({z:.1f} standard errors away)")
    ok, why = same_distribution(flat, reference)
    if not ok:
        problems.append(f"not distributed like the grader's simulation of the estimator ({why})")
    return problems


def check_policy_gradient(inputs, result):
    rubric = Rubric()
    mdp = build_mdp(inputs["mdp"])
    theta = np.array(inputs["theta"])
    gradient = exact_gradient(mdp, theta)
    rubric.details["exact_gradient"] = gradient.tolist()
    reference_rng = np.random.default_rng(inputs["reference_seed"])
    n = inputs["n_episodes"]
    for (weighting, baseline), outcomes in zip(inputs["configs"], result, strict=True):
        estimates = values(outcomes, "estimate_policy_gradient")
        reference = reference_estimates(mdp, theta, n, N_REFERENCE_PG, reference_rng, weighting, baseline)
        problems = estimator_problems(estimates, gradient, reference)
        where = f"weighting='{weighting}'" + (" with a baseline" if baseline else "")
        rubric.details[where] = {"problems": problems}
        rubric.part(
            f"{where}: the estimates are the estimator's: unbiased (the average of {len(estimates)} calls matches "
            "the exact ∇J(θ), autograd through the exact J), with its variance and its distribution (compared with "
            "the grader's own simulation: γ^t G_t weights, causality, baseline subtracted)",
            1.0,
            not problems,
            "; ".join(problems),
        )
    return rubric.verdict()


# ----------------------------------------------------------------------------- C.3 train_policy

N_STEP_CALLS, N_STEP_EPISODES, N_REFERENCE_STEP = 400, 2, 4000


def optimal_J(mdp: TabularMDP) -> float:
    Q_star, _ = value_iteration(mdp)
    return float(mdp.p0 @ np.where(mdp.terminal, 0.0, Q_star.max(axis=1)))


def make_train_policy_inputs(rng):
    # Rewards of order 1 and only MDPs where choosing well matters (J* exceeds the uniform policy's J by
    # at least 0.3), so that "closes half of the gap" measures learning, not luck. Measured on 400 runs
    # (200 such MDPs, 2 seeds each), the reference solution closed at least 82% of the gap every time
    # (and an implementation using the total-return weighting at least 68%).
    while True:
        data = random_mdp(rng, gamma=float(rng.uniform(0.85, 0.95)), unit_rewards=True)
        mdp = build_mdp(data)
        if optimal_J(mdp) - float(exact_J(mdp, torch.zeros(mdp.n_states, mdp.n_actions, dtype=torch.float64))) >= 0.3:
            break
    return {
        "mdp": data,
        "n_iterations": 150,
        "n_episodes": 10,
        "learning_rate": 1.0,
        "seed": int(rng.integers(2**62)),
        # One iteration from θ = 0, many times: θ_1 / α must be a policy-gradient estimate at θ = 0.
        "step": {
            "n_episodes": N_STEP_EPISODES,
            "learning_rate": float(np.round(rng.uniform(0.2, 2.0), 4)),
            "seeds": _seeds(rng, N_STEP_CALLS),
        },
        "reference_seed": int(rng.integers(2**62)),
    }


def TRAIN_POLICY_RESULT(inputs):  # noqa: N802
    shape = (len(inputs["mdp"]["R"]), len(inputs["mdp"]["R"][0]))
    return Fields(
        {
            "steps": ListOf(Call(Array(shape)), len(inputs["step"]["seeds"])),
            "trained": Call(Weights({"value": shape})),
        }
    )


def check_train_policy(inputs, result):
    rubric = Rubric()
    mdp = build_mdp(inputs["mdp"])
    zeros = np.zeros((mdp.n_states, mdp.n_actions))
    step = inputs["step"]
    estimates = values(result["steps"], "train_policy") / step["learning_rate"]
    gradient = exact_gradient(mdp, zeros)
    rng = np.random.default_rng(inputs["reference_seed"])
    problems = {}
    for weighting in ("reward_to_go", "total"):  # the notebook asks for reward-to-go; the simple estimator is a PG too
        reference = reference_estimates(mdp, zeros, step["n_episodes"], N_REFERENCE_STEP, rng, weighting, 0.0)
        problems[weighting] = estimator_problems(estimates, gradient, reference)
    is_pg = not all(problems.values())
    rubric.details["one_step_problems"] = problems
    rubric.part(
        "one iteration from θ = 0 is a policy-gradient step: θ_1 / α is distributed as an estimate of ∇J(0) from "
        "the given number of episodes (unbiased against the exact gradient, with the estimator's variance and "
        "distribution)",
        1.0,
        is_pg,
        "; ".join(problems["reward_to_go"][:2]),
    )
    theta = result["trained"].get("train_policy")["value"].astype(np.float64)
    J_start = float(exact_J(mdp, torch.zeros(mdp.n_states, mdp.n_actions, dtype=torch.float64)))
    J_trained = float(exact_J(mdp, torch.tensor(theta)))
    J_star = optimal_J(mdp)
    rubric.details.update(J_start=J_start, J_trained=J_trained, J_star=J_star)
    closed = (J_trained - J_start) / (J_star - J_start) if J_star > J_start else 1.0
    rubric.part(
        "gradient ascent from θ = 0 closes at least half of the gap between the uniform policy's J and the "
        "optimal J* (both computed exactly on a new MDP; credited when the iterations are policy-gradient steps)",
        1.0,
        closed >= 0.5 and is_pg,
        f"it closed {100 * closed:.0f}% of the gap" if closed < 0.5 else "its iterations are not policy-gradient steps",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- the assignment

ASSIGNMENT = Assignment(
    notebook="a1_score_function.ipynb",
    cell_timeout=120,
    cell_budget=60,  # the solution's cells take about 3 s
    # the notebook's rules: the course's reference estimator (course_utils.tabular.score_function_gradients,
    # kept in course_utils.tabular_gradients) and return helpers are not answers
    forbidden=("course_utils.returns", "course_utils.tabular_gradients"),
    questions=[
        Question(
            "discounted_return",
            DRIVERS.discounted_return,
            make_discounted_return_inputs,
            DISCOUNTED_RETURN_RESULT,
            check_discounted_return,
            timeout=20,
            title="A.1 discounted_return",
        ),
        Question(
            "returns_to_go",
            DRIVERS.returns_to_go,
            make_returns_to_go_inputs,
            RETURNS_TO_GO_RESULT,
            check_returns_to_go,
            timeout=20,
            title="A.2 returns_to_go",
        ),
        Question(
            "estimate_J",
            DRIVERS.estimate_J,
            make_estimate_J_inputs,
            ESTIMATE_J_RESULT,
            check_estimate_J,
            timeout=120,
            check_only=("reference_seed",),
            title="A.3 estimate_J",
        ),
        Question(
            "score_function",
            DRIVERS.score_function,
            make_score_function_inputs,
            SCORE_FUNCTION_RESULT,
            check_score_function,
            timeout=120,
            title="B.1 score_function_estimate",
        ),
        Question(
            "baseline",
            DRIVERS.score_function,
            make_baseline_inputs,
            SCORE_FUNCTION_RESULT,
            check_baseline,
            timeout=120,
            title="B.2 a baseline adds no bias",
        ),
        Question(
            "optimal_baseline",
            DRIVERS.optimal_baseline,
            make_optimal_baseline_inputs,
            OPTIMAL_BASELINE_RESULT,
            check_optimal_baseline,
            timeout=20,
            title="B.4 optimal_baseline",
        ),
        Question(
            "policy_gradient",
            DRIVERS.policy_gradient,
            make_policy_gradient_inputs,
            POLICY_GRADIENT_RESULT,
            check_policy_gradient,
            timeout=180,
            check_only=("reference_seed",),
            title="C.2 estimate_policy_gradient",
        ),
        Question(
            "train_policy",
            DRIVERS.train_policy,
            make_train_policy_inputs,
            TRAIN_POLICY_RESULT,
            check_train_policy,
            timeout=180,
            check_only=("reference_seed",),
            title="C.3 train_policy",
        ),
    ],
)
