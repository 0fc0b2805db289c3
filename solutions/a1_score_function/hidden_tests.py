"""Hidden checks for assignment 1, "Returns and the score function" (never released, never sandboxed).

How grading works is described in ``course_grader/spec.py``: for each question
``make_*_inputs`` draws fresh inputs here, the function of the same name in
``drivers.py`` (public, no expected values) calls the student's functions on
them inside the sandbox, ``*_RESULT`` fixes the shape of what it returns, and
``check_*`` tests properties of the parsed values here, in the grader's
process: agreement with the definitions (returns), unbiasedness against exact
gradients from enumeration or autograd through the exact J(θ), and the
variance a correct estimator must have. Any correct implementation passes,
whatever order it draws its random numbers in; statistical tests have a
false-alarm probability of about 1e-6 each (``course_grader.checks.ALPHA``).
Messages name the property that failed, never the expected number.
"""

from __future__ import annotations

import numpy as np
import torch

from course_grader.checks import Rubric, Verdict, mean_matches, means_agree, same_variance, variance_matches
from course_grader.schema import Array, Call, ListOf, Number, Weights, values
from course_grader.spec import Assignment, Question, load_drivers
from course_utils.tabular import TabularMDP, exact_J, score_function_gradients, value_iteration

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


def _seeds(rng: np.random.Generator, n: int) -> list[int]:
    return [int(x) for x in rng.integers(0, 2**62, size=n)]


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
            failures[kind].append(f"it returned {got.shape[0]} returns for an episode of {len(expected)} rewards")
            continue
        bad = ~np.isclose(got, expected, rtol=1e-6, atol=1e-8)
        if bad.any():
            failures[kind].append(
                f"disagrees with the definition at {int(bad.sum())} of the episode's {len(bad)} steps "
                f"(first at t={int(np.argmax(bad))})"
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

N_EPISODES_J, N_CALLS_J = 20, 200


def make_estimate_J_inputs(rng):
    # A small γ and long episodes make discounting matter: an undiscounted estimate is visibly biased.
    return {
        "mdp": random_mdp(rng, n_live=3, n_actions=2, gamma=float(rng.uniform(0.5, 0.7)), stay=(0.8, 0.9)),
        "theta": rng.normal(0, 1, size=(5, 2)).round(4).tolist(),
        "n_episodes": N_EPISODES_J,
        "seeds": _seeds(rng, N_CALLS_J),
    }


def ESTIMATE_J_RESULT(inputs):  # noqa: N802
    return ListOf(Call(Array((2,))), len(inputs["seeds"]))  # (estimate, standard error) per call


def check_estimate_J(inputs, outcomes):
    rubric = Rubric()
    mdp = build_mdp(inputs["mdp"])
    J = float(exact_J(mdp, torch.tensor(inputs["theta"], dtype=torch.float64)))
    pairs = values(outcomes, "estimate_J")  # (calls, 2): estimate, standard error
    J_hat, stderr = pairs[:, 0], pairs[:, 1]
    rubric.details.update(exact_J=J, mean_estimate=float(J_hat.mean()))
    test = mean_matches(J_hat[:, None], np.array([J]))
    rubric.part(
        f"unbiased: over {len(J_hat)} independent calls the estimates average to the exact J(θ)",
        1.0,
        test.passed,
        f"their average is {test.worst_z:.1f} standard errors away (a correct estimator stays within {test.threshold:.1f})",
    )
    if np.any(stderr < 0):
        rubric.part(
            "the standard error matches the actual spread of the estimates across calls",
            1.0,
            False,
            "some standard errors are negative",
        )
    else:
        # E[(Ĵ − J)²] = Var(Ĵ) = σ²/N and E[SE²] = E[s²]/N = σ²/N: two samples with the same mean.
        ok, spread, reported, z = means_agree((J_hat - J) ** 2, stderr**2)
        rubric.details.update(spread=spread, reported=reported)
        rubric.part(
            "the standard error matches the actual spread of the estimates across calls",
            1.0,
            ok,
            f"the squared standard errors average {reported / max(spread, 1e-300):.2f} times the "
            f"estimates' variance ({z:.1f} standard errors from agreement)",
        )
    return rubric.verdict()


# ----------------------------------------------------------------------------- B.1 / B.2 score_function_estimate

N_SAMPLES_SF, N_CALLS_SF = 3, 2000


def _categorical_problem(rng):
    K = int(rng.integers(3, 6))
    return rng.normal(0, 1, size=K).round(4).tolist(), rng.uniform(-3, 5, size=K).round(4).tolist()


def sf_exact(theta, f, baseline: float = 0.0, n_samples: int = 1):
    """Exact gradient p ⊙ (f − p·f) and exact total variance of the n-sample score-function estimator."""
    theta, f = np.asarray(theta, dtype=np.float64), np.asarray(f, dtype=np.float64)
    p = np.exp(theta - theta.max())
    p /= p.sum()
    gradient = p * (f - p @ f)
    score_sq = ((np.eye(len(p)) - p) ** 2).sum(axis=1)  # ||e_k − p||² = ||∇ log p(k)||²
    second_moment = np.sum(p * (f - baseline) ** 2 * score_sq)
    return gradient, (second_moment - gradient @ gradient) / n_samples


def make_score_function_inputs(rng):
    theta, f = _categorical_problem(rng)
    return {"theta": theta, "f": f, "n_samples": N_SAMPLES_SF, "baselines": [None], "seeds": _seeds(rng, N_CALLS_SF)}


def make_baseline_inputs(rng):
    theta, f = _categorical_problem(rng)
    baselines = [float(np.round(rng.uniform(0, 3), 4)), float(np.round(rng.uniform(15, 25), 4))]
    return {"theta": theta, "f": f, "n_samples": N_SAMPLES_SF, "baselines": baselines, "seeds": _seeds(rng, N_CALLS_SF)}


def SCORE_FUNCTION_RESULT(inputs):  # noqa: N802
    return ListOf(ListOf(Call(Array((len(inputs["theta"]),))), len(inputs["seeds"])), len(inputs["baselines"]))


def _check_sf(inputs, result, rubric: Rubric, weight_bias: float, weight_var: float) -> None:
    for b, outcomes in zip(inputs["baselines"], result, strict=True):
        estimates = values(outcomes, "score_function_estimate")
        gradient, variance = sf_exact(inputs["theta"], inputs["f"], b or 0.0, inputs["n_samples"])
        where = "" if b is None else f" with baseline b = {b}"
        rubric.details[f"baseline {b}"] = {"exact_gradient": gradient.tolist(), "exact_variance": variance}
        test = mean_matches(estimates, gradient)
        rubric.part(
            f"unbiased{where}: over {len(estimates)} calls the estimates average to the exact gradient",
            weight_bias,
            test.passed,
            f"coordinate {test.worst_index} of the average is {test.worst_z:.1f} standard errors "
            f"away (a correct estimator stays within {test.threshold:.1f})",
        )
        ok, measured, z = variance_matches(estimates, gradient, variance)
        rubric.part(
            f"the variance{where} is that of the score-function estimator with {inputs['n_samples']} samples",
            weight_var,
            ok,
            f"the measured total variance is {measured / variance:.2f} times that ({z:.1f} standard errors away)"
            if variance > 0
            else "",
        )


def check_score_function(inputs, result):
    rubric = Rubric()
    _check_sf(inputs, result, rubric, weight_bias=2.0, weight_var=1.0)
    return rubric.verdict()


def check_baseline(inputs, result):
    rubric = Rubric()
    _check_sf(inputs, result, rubric, weight_bias=1.0, weight_var=1.0)
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


def check_policy_gradient(inputs, result):
    rubric = Rubric()
    mdp = build_mdp(inputs["mdp"])
    theta = np.array(inputs["theta"])
    gradient = exact_gradient(mdp, theta)
    rubric.details["exact_gradient"] = gradient.tolist()
    reference_rng = np.random.default_rng(inputs["reference_seed"])
    variance_ok, variance_msgs = True, []
    weights = {("total", False): 1.0, ("reward_to_go", False): 1.0, ("reward_to_go", True): 0.5}
    n = inputs["n_episodes"]
    for (weighting, baseline), outcomes in zip(inputs["configs"], result, strict=True):
        estimates = values(outcomes, "estimate_policy_gradient")
        test = mean_matches(estimates.reshape(len(estimates), -1), gradient.reshape(-1))
        where = f"weighting='{weighting}'" + (f", baseline={baseline}" if baseline else "")
        rubric.part(
            f"{where}: unbiased, the average of {len(estimates)} calls matches the exact ∇J(θ) (autograd through "
            "the exact J)",
            weights[(weighting, bool(baseline))],
            test.passed,
            f"entry {np.unravel_index(test.worst_index, theta.shape)} is {test.worst_z:.1f} standard errors "
            f"away (a correct estimator stays within {test.threshold:.1f})",
        )
        per_episode = score_function_gradients(
            mdp, theta, N_REFERENCE_PG * n, reference_rng, weighting=weighting, baseline=baseline or None
        )
        reference = per_episode.reshape(N_REFERENCE_PG, n, -1).mean(axis=1)
        ok, mine, ref, z = same_variance(estimates.reshape(len(estimates), -1), reference, gradient.reshape(-1))
        rubric.details[where] = {"variance": mine, "reference_variance": ref}
        if not ok:
            variance_ok = False
            variance_msgs.append(
                f"{where}: {mine / ref:.2f} times the variance of the estimator as defined "
                f"({z:.1f} standard errors away)"
            )
    rubric.part(
        "the variance of each estimate is that of the estimator as defined (γ^t G_t weights, causality, "
        "baseline subtracted)",
        0.5,
        variance_ok,
        "; ".join(variance_msgs[:2]),
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- C.3 train_policy


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
    return {"mdp": data, "n_iterations": 150, "n_episodes": 10, "learning_rate": 1.0, "seed": int(rng.integers(2**62))}


def TRAIN_POLICY_RESULT(inputs):  # noqa: N802
    return Call(Weights({"value": (len(inputs["mdp"]["R"]), len(inputs["mdp"]["R"][0]))}))


def check_train_policy(inputs, outcome):
    rubric = Rubric()
    mdp = build_mdp(inputs["mdp"])
    theta = outcome.get("train_policy")["value"].astype(np.float64)
    J_start = float(exact_J(mdp, torch.zeros(mdp.n_states, mdp.n_actions, dtype=torch.float64)))
    J_trained = float(exact_J(mdp, torch.tensor(theta)))
    J_star = optimal_J(mdp)
    rubric.details.update(J_start=J_start, J_trained=J_trained, J_star=J_star)
    closed = (J_trained - J_start) / (J_star - J_start) if J_star > J_start else 1.0
    rubric.part(
        "gradient ascent from θ = 0 closes at least half of the gap between the uniform policy's J and the "
        "optimal J* (both computed exactly on a new MDP)",
        1.0,
        closed >= 0.5,
        f"it closed {100 * closed:.0f}% of the gap",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- the assignment

ASSIGNMENT = Assignment(
    notebook="a1_score_function.ipynb",
    cell_timeout=120,
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
            title="C.3 train_policy",
        ),
    ],
)
