"""Hidden checks for assignment 2, "REINFORCE with baseline and A2C on CartPole" (never released, never sandboxed).

How grading works is described in ``course_grader/spec.py``: for each question
``make_*_inputs`` draws fresh inputs here, the function of the same name in
``drivers.py`` (public, no expected values) calls the student's functions on
them inside the sandbox, ``*_RESULT`` fixes the shape of what it returns, and
``check_*`` tests properties of the parsed values here, in the grader's
process: agreement of the losses and their gradients with closed forms (the
policy loss's gradient is minus the score-function estimate, and no gradient
may flow through ⊥), advantages against a brute-force double sum on random
batches with terminations, truncations and rollout cuts, and training as
training: the trained policy's greedy return on a CartPole variant drawn per
run, evaluated by the grader's own network on seeds it keeps, and a second
run with the policy loss's gradient reversed, which a loop that learns
through ``policy_loss`` must fail. Messages name the property that failed,
never an expected number, a seed or a drawn input.
"""

from __future__ import annotations

import numpy as np

from course_grader.checks import Rubric, Verdict
from course_grader.schema import Array, Call, Fields, ListOf, Number, Weights
from course_grader.spec import Assignment, Question, load_drivers
from course_utils.networks import CategoricalPolicy

DRIVERS = load_drivers(__file__)

# ----------------------------------------------------------------------------- shared pieces

ATOL, RTOL = 1e-4, 1e-4  # float32 arithmetic inside a student's function must still pass


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _same_failure_everywhere(outcomes, name: str) -> None:
    """If every call raised the same exception (typically the stub's NotImplementedError), say just that."""
    kinds = {o.exception for o in outcomes}
    if len(kinds) == 1 and None not in kinds:
        outcomes[0].get(name)


def _close(got: np.ndarray, expected) -> bool:
    """Same shape and equal within the tolerances (never broadcast)."""
    expected = np.asarray(expected, dtype=np.float64)
    return got.shape == expected.shape and bool(np.allclose(got, expected, rtol=RTOL, atol=ATOL))


N_FEATURES, N_ACTIONS = 3, 3  # the linear actor's W is (N_FEATURES, N_ACTIONS), the critic's u (N_FEATURES,)


def _linear_batch(rng, shape, n_features=N_FEATURES, n_actions=N_ACTIONS) -> dict:
    """A batch for a linear actor (logits = obs @ W) and a linear critic (V = obs @ u), as plain data."""
    return {
        "obs": rng.normal(0, 1, size=(*shape, n_features)).round(4).tolist(),
        "next_obs": rng.normal(0, 1, size=(*shape, n_features)).round(4).tolist(),
        "W": rng.normal(0, 1, size=(n_features, n_actions)).round(4).tolist(),
        "u": rng.normal(0, 1, size=n_features).round(4).tolist(),
        "actions": rng.integers(0, n_actions, size=shape).tolist(),
        "rewards": rng.normal(1, 2, size=shape).round(4).tolist(),
        "gamma": float(rng.uniform(0.8, 0.99)),
    }


# ----------------------------------------------------------------------------- A.1 policy_loss


def make_policy_loss_inputs(rng):
    shapes = [(int(rng.integers(20, 60)),) for _ in range(4)] + [(int(rng.integers(5, 12)), int(rng.integers(2, 6)))]
    return {"batches": [_linear_batch(rng, shape) for shape in shapes]}


def POLICY_LOSS_RESULT(inputs):  # noqa: N802 - a schema, named like the constants below
    return ListOf(
        Call(Fields({"loss": Number(), "grad_W": Array((N_FEATURES, N_ACTIONS)), "grad_u": Array((N_FEATURES,))})),
        len(inputs["batches"]),
    )


def check_policy_loss(inputs, outcomes):
    _same_failure_everywhere(outcomes, "policy_loss")
    rubric = Rubric()
    wrong = {"loss": 0, "grad_W": 0, "grad_u": 0}
    first = None
    for k, (b, outcome) in enumerate(zip(inputs["batches"], outcomes, strict=True)):
        obs, W, u = np.array(b["obs"]), np.array(b["W"]), np.array(b["u"])
        actions = np.array(b["actions"])
        log_pi = _log_softmax(obs @ W)
        log_probs = np.take_along_axis(log_pi, actions[..., None], -1)[..., 0]
        A = np.array(b["rewards"]) - obs @ u
        M = A.size
        loss = float(-(A * log_probs).mean())
        onehot = np.eye(W.shape[1])[actions]
        # Minus the score-function estimate: -(1/M) Σ_m ⊥A_m ∇_W log π(a_m|s_m), ∇ log π = obs (e_a - p)^T.
        weighted_obs = (A[..., None] * obs).reshape(M, -1)
        grad_W = -weighted_obs.T @ (onehot - np.exp(log_pi)).reshape(M, -1) / M
        rubric.details[f"batch {k}"] = {"loss": loss}
        if not outcome.ok:
            first = first or f"policy_loss {outcome.failure}"
            for key in wrong:
                wrong[key] += 1
            continue
        got = outcome.value
        wrong["loss"] += not _close(got["loss"], loss)
        wrong["grad_W"] += not _close(got["grad_W"], grad_W)
        wrong["grad_u"] += got["grad_u"].shape != u.shape or not np.allclose(got["grad_u"], 0.0, atol=1e-9)
    n = len(outcomes)
    note = f" ({first})" if first else ""
    rubric.part(
        "the loss is -mean(A_t log π_θ(a_t|s_t)) on the grader's batches (shapes (M,) and (T, N))",
        1.0,
        wrong["loss"] == 0,
        f"wrong on {wrong['loss']} of {n} batches{note}",
    )
    rubric.part(
        "its gradient with respect to the actor is minus the score-function estimate -(1/M) Σ A_t ∇_θ log π_θ(a_t|s_t)",
        1.0,
        wrong["grad_W"] == 0,
        f"wrong on {wrong['grad_W']} of {n} batches{note}",
    )
    # A loss without any gradient sends none to the critic either: this part needs the actor's gradient right.
    rubric.part(
        "no gradient reaches the critic through the advantages (⊥A_t), while the actor gets its gradient",
        1.0,
        wrong["grad_u"] == 0 and wrong["grad_W"] == 0,
        f"the critic's parameters received a gradient on {wrong['grad_u']} of {n} batches"
        if wrong["grad_u"]
        else "not credited while the actor's gradient is wrong",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- A.2 value_loss


def make_value_loss_inputs(rng):
    shapes = [(int(rng.integers(20, 60)),) for _ in range(3)] + [(int(rng.integers(5, 12)), int(rng.integers(2, 6)))]
    return {"batches": [_linear_batch(rng, shape) for shape in shapes]}


def VALUE_LOSS_RESULT(inputs):  # noqa: N802
    return ListOf(
        Call(Fields({"loss": Number(), "grad_u": Array((N_FEATURES,))})),
        len(inputs["batches"]),
    )


def check_value_loss(inputs, outcomes):
    _same_failure_everywhere(outcomes, "value_loss")
    rubric = Rubric()
    wrong = {"loss": 0, "grad": 0}
    first = None
    for k, (b, outcome) in enumerate(zip(inputs["batches"], outcomes, strict=True)):
        obs, next_obs, u = np.array(b["obs"]), np.array(b["next_obs"]), np.array(b["u"])
        V = obs @ u
        G = np.array(b["rewards"]) + b["gamma"] * (next_obs @ u)
        loss = float(((V - G) ** 2).mean())
        grad = 2 * (V - G).reshape(-1) @ obs.reshape(V.size, -1) / V.size  # the target ⊥G is a constant
        rubric.details[f"batch {k}"] = {"loss": loss}
        if not outcome.ok:
            first = first or f"value_loss {outcome.failure}"
            wrong["loss"] += 1
            wrong["grad"] += 1
            continue
        wrong["loss"] += not _close(outcome.value["loss"], loss)
        wrong["grad"] += not _close(outcome.value["grad_u"], grad)
    n = len(outcomes)
    note = f" ({first})" if first else ""
    rubric.part(
        "the loss is mean((V_φ(s_t) - Ĝ_t)²)", 1.0, wrong["loss"] == 0, f"wrong on {wrong['loss']} of {n} batches{note}"
    )
    rubric.part(
        "its gradient treats the target as a constant (⊥Ĝ_t), even when the target was computed with the critic",
        1.0,
        wrong["grad"] == 0,
        f"wrong on {wrong['grad']} of {n} batches{note}",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- A.3 policy_entropy


def make_entropy_inputs(rng):
    cases = []
    for _ in range(4):
        M, K = int(rng.integers(5, 30)), int(rng.integers(2, 6))
        cases.append({"kind": "ordinary", "logits": rng.normal(0, 2, size=(M, K)).round(4).tolist()})
    M, K = int(rng.integers(5, 12)), int(rng.integers(3, 6))
    logits = rng.normal(0, 1, size=(M, K))
    logits[:, 0] += rng.uniform(800, 1200, size=M)  # a very confident policy: exp underflows for the other actions
    cases.append({"kind": "confident", "logits": logits.round(4).tolist()})
    return {"cases": cases}


def ENTROPY_RESULT(inputs):  # noqa: N802
    return ListOf(
        Call(Fields({"entropy": Number(), "grad": Array((None, None))})),
        len(inputs["cases"]),
    )


def check_entropy(inputs, outcomes):
    _same_failure_everywhere(outcomes, "policy_entropy")
    rubric = Rubric()
    failures = {"value": 0, "grad": 0, "confident": []}
    ordinary, first = 0, None
    for k, (case, outcome) in enumerate(zip(inputs["cases"], outcomes, strict=True)):
        z = np.array(case["logits"])
        log_p = _log_softmax(z)
        p = np.exp(log_p)
        H_rows = -(p * log_p).sum(-1)
        H = float(H_rows.mean())
        grad = -p * (log_p + H_rows[:, None]) / len(z)  # ∂ mean H / ∂z_k = -p_k (log p_k + H) / M
        rubric.details[f"case {k}"] = {"entropy": H}
        if case["kind"] == "confident":
            if not outcome.ok:
                failures["confident"].append(f"policy_entropy {outcome.failure}")
            elif not (_close(outcome.value["entropy"], H) and _close(outcome.value["grad"], grad)):
                failures["confident"].append("wrong value or gradient")
            continue
        ordinary += 1
        if not outcome.ok:
            first = first or f"policy_entropy {outcome.failure}"
            failures["value"] += 1
            failures["grad"] += 1
            continue
        failures["value"] += not _close(outcome.value["entropy"], H)
        failures["grad"] += not _close(outcome.value["grad"], grad)
    note = f" ({first})" if first else ""
    rubric.part(
        "the mean over states of H[π(·|s)] = -Σ_a π(a|s) log π(a|s)",
        0.5,
        failures["value"] == 0,
        f"wrong on {failures['value']} of {ordinary} batches of logits{note}",
    )
    rubric.part(
        "its gradient with respect to the logits",
        0.25,
        failures["grad"] == 0,
        f"wrong on {failures['grad']} of {ordinary} batches of logits{note}",
    )
    # A nearly deterministic policy has entropy and gradient close to 0: a function returning 0 would pass
    # this case alone, so it counts only when the ordinary cases are right.
    ordinary_right = failures["value"] == 0 and failures["grad"] == 0
    rubric.part(
        "finite and correct for a nearly deterministic policy (some probabilities underflow to 0)",
        0.25,
        not failures["confident"] and ordinary_right,
        "; ".join(failures["confident"][:1]) or "not credited while the ordinary cases are wrong",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- B.1 advantages

ADVANTAGE_KINDS = {
    "cut": "on a batch where no episode ends",
    "terminated": "on a batch with terminations",
    "truncated": "on a batch with truncations",
    "mixed": "on a batch with terminations and truncations",
    "lambda": "at a limit of λ (0 or 1, once with γ = 1)",
}


def _advantage_case(rng, kind: str, p_term: float, p_trunc: float, lam=None, gamma=None) -> dict:
    T, N = int(rng.integers(10, 30)), int(rng.integers(2, 6))
    u = rng.uniform(0, 1, size=(T, N))
    terminated = u < p_term
    truncated = (u >= p_term) & (u < p_term + p_trunc)
    values = rng.normal(5, 3, size=(T, N))
    # Inside an episode s_{t+1} is the next row's state; at an episode end (and after the last row) it is the
    # state the episode really stopped in, whose value nothing else in the batch holds.
    next_values = np.empty((T, N))
    next_values[:-1] = values[1:]
    ended = terminated | truncated
    fresh = rng.normal(5, 3, size=(T, N))
    next_values[ended] = fresh[ended]
    next_values[-1] = fresh[-1]
    return {
        "kind": kind,
        "rewards": rng.normal(1, 1, size=(T, N)).round(4).tolist(),
        "values": values.round(4).tolist(),
        "next_values": next_values.round(4).tolist(),
        "terminated": terminated.tolist(),
        "truncated": truncated.tolist(),
        "gamma": float(rng.uniform(0.8, 0.99)) if gamma is None else gamma,
        "lam": float(rng.uniform(0.5, 0.99)) if lam is None else lam,
    }


def make_advantages_inputs(rng):
    cases = [_advantage_case(rng, "cut", 0.0, 0.0) for _ in range(2)]  # no episode ends: the rollout is cut
    cases += [_advantage_case(rng, "terminated", 0.12, 0.0) for _ in range(2)]
    cases += [_advantage_case(rng, "truncated", 0.0, 0.12) for _ in range(2)]
    cases += [_advantage_case(rng, "mixed", 0.1, 0.1)]
    cases += [
        _advantage_case(rng, "lambda", 0.12, 0.0, lam=0.0),
        _advantage_case(rng, "lambda", 0.12, 0.0, lam=1.0),
        _advantage_case(rng, "lambda", 0.0, 0.0, lam=1.0, gamma=1.0),
    ]
    return {"cases": cases}


def ADVANTAGES_RESULT(inputs):  # noqa: N802
    return ListOf(Call(Array((None, None))), len(inputs["cases"]))


def advantages_brute_force(case: dict) -> np.ndarray:
    """A_t = Σ_{k=t}^{end(t)} (γλ)^{k-t} δ_k by a double loop, end(t) the first episode end or cut at or after t."""
    r, V, V_next = (np.array(case[k]) for k in ("rewards", "values", "next_values"))
    term, trunc = np.array(case["terminated"]), np.array(case["truncated"])
    gamma, lam = case["gamma"], case["lam"]
    T, N = r.shape
    delta = r + gamma * np.where(term, 0.0, V_next) - V
    A = np.zeros((T, N))
    for i in range(N):
        for t in range(T):
            for k in range(t, T):
                A[t, i] += (gamma * lam) ** (k - t) * delta[k, i]
                if term[k, i] or trunc[k, i]:
                    break
    return A


def check_advantages(inputs, outcomes):
    _same_failure_everywhere(outcomes, "advantages")
    rubric = Rubric()
    failures = {kind: [] for kind in ADVANTAGE_KINDS}
    for k, (case, outcome) in enumerate(zip(inputs["cases"], outcomes, strict=True)):
        expected = advantages_brute_force(case)
        rubric.details[f"case {k}"] = {"expected": expected.tolist()}
        where = ADVANTAGE_KINDS[case["kind"]]
        if not outcome.ok:
            failures[case["kind"]].append(f"{where}, advantages {outcome.failure}")
            continue
        got = outcome.value
        if got.shape != expected.shape:
            failures[case["kind"]].append(f"{where}, it returned an array whose shape is not the rewards' (T, N)")
            continue
        bad = ~np.isclose(got, expected, rtol=RTOL, atol=ATOL)
        if bad.any():
            failures[case["kind"]].append(
                f"{where}, it disagrees with the definition at {max(1, round(100 * bad.mean()))}% of the entries"
            )
    rubric.part(
        "no episode ends in the batch: the sum of TD errors stops at the last step, whose δ bootstraps "
        "from next_values",
        1.0,
        not failures["cut"],
        "; ".join(failures["cut"][:1]),
    )
    rubric.part(
        "terminations: δ_t = r_{t+1} - V(s_t) (a terminal state is worth 0) and the sum stops there",
        1.0,
        not failures["terminated"],
        "; ".join(failures["terminated"][:1]),
    )
    rubric.part(
        "truncations: δ_t bootstraps from V(s_{t+1}) of the real final state (next_values), and the sum stops there",
        1.5,
        not failures["truncated"],
        "; ".join(failures["truncated"][:1]),
    )
    rubric.part(
        "terminations and truncations in one batch", 0.5, not failures["mixed"], "; ".join(failures["mixed"][:1])
    )
    rubric.part(
        "λ = 0 (one-step TD errors) and λ = 1 (Monte Carlo returns minus the baseline, also with γ = 1)",
        0.5,
        not failures["lambda"],
        "; ".join(failures["lambda"][:1]),
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- C.1 train_a2c

TOTAL_STEPS = 20_000  # the training budget in environment steps, stated in the notebook
N_EVAL_EPISODES = 20
THRESHOLD = 100.0  # mean greedy return over the grader's evaluation episodes, stated in the notebook
POLICY_SHAPES = {key: tuple(w.shape) for key, w in CategoricalPolicy(4, 2).state_dict().items()}
POLE = (2, 3)  # CartPole's observation: cart position, cart velocity, pole angle, pole angular velocity


def make_train_inputs(rng):
    # The variant: a signed permutation of the observation's coordinates, never one that leaves the pole's angle
    # and angular velocity where and as they were (a controller written for CartPole-v1 reads those two).
    while True:
        permutation = [int(i) for i in rng.permutation(4)]
        signs = [int(s) for s in rng.choice([-1, 1], size=4)]
        if not all(permutation[i] == i and signs[i] == 1 for i in POLE):
            break
    return {
        "total_steps": TOTAL_STEPS,
        "seed": int(rng.integers(0, 10_000)),
        "permutation": permutation,
        "signs": signs,
        "reversed_seed": int(rng.integers(0, 10_000)),
        "eval_seed": int(rng.integers(100_000, 2**31 - 1_000)),
    }


def TRAIN_RESULT(inputs):  # noqa: N802
    return Fields({"trained": Call(Weights(POLICY_SHAPES)), "reversed": Call(Weights(POLICY_SHAPES))})


def policy_on_cartpole(weights: dict, permutation, signs) -> CategoricalPolicy:
    """The grader's own CategoricalPolicy(4, 2) with weights learned on the variant, acting on CartPole-v1 itself.

    The variant shows coordinate i as signs[i] · s[permutation[i]]; the first layer's column i moves to column
    permutation[i], times signs[i], so the network computes exactly what it computed on the variant.
    """
    import torch

    tensors = {key: torch.as_tensor(np.array(weights[key]), dtype=torch.float32) for key in POLICY_SHAPES}
    first = tensors["net.0.weight"].clone()
    first[:, list(permutation)] = tensors["net.0.weight"] * torch.tensor(signs, dtype=torch.float32)
    tensors["net.0.weight"] = first
    policy = CategoricalPolicy(4, 2)
    policy.load_state_dict(tensors, strict=True)
    return policy.eval()


def _greedy_return(weights: dict, inputs) -> float:
    from course_utils.evaluation import evaluate

    policy = policy_on_cartpole(weights, inputs["permutation"], inputs["signs"])
    mean, _ = evaluate(policy, "CartPole-v1", n_episodes=N_EVAL_EPISODES, seed=inputs["eval_seed"])
    return mean


def check_train(inputs, result):
    trained = result["trained"].get("train_a2c")  # the student's exception, if it raised
    mean = _greedy_return(trained, inputs)
    learned = mean >= THRESHOLD
    details = {"mean_return": mean}
    messages = [
        ("✓ " if learned else "✗ ")
        + f"the trained policy, loaded into the grader's own CategoricalPolicy(4, 2), reaches a mean greedy return of "
        f"at least {THRESHOLD:.0f} over {N_EVAL_EPISODES} episodes of a CartPole-v1 variant drawn for this run "
        "(its observation coordinates reordered, some negated), on new seeds"
        + ("" if learned else f": its mean return was {mean:.0f}")
    ]
    reversed_check = (
        "it learns through your policy_loss: trained again with policy_loss replaced by one of the same value and "
        "the opposite gradient, the loop must not reach the pass mark"
    )
    if not learned:  # weights that do not balance would pass the second part whatever made them
        messages.append(f"✗ {reversed_check}: not checked while the trained policy falls short of the pass mark")
        return Verdict(0.0, messages, details)
    reversed_run = result["reversed"]
    if not reversed_run.ok:
        messages.append(f"✗ {reversed_check}: with policy_loss's gradient reversed, train_a2c {reversed_run.failure}")
        return Verdict(0.0, messages, details)
    details["mean_return_reversed"] = mean_reversed = _greedy_return(reversed_run.value, inputs)
    if mean_reversed >= THRESHOLD:
        messages.append(
            f"✗ {reversed_check}: with the reversed gradient it still produced a policy that reaches the pass mark, "
            "so its weights do not come from gradient steps on policy_loss (does train_a2c call policy_loss by that "
            "name?); the points need both parts"
        )
        return Verdict(0.0, messages, details)
    messages.append(f"✓ {reversed_check}")
    return Verdict(1.0, messages, details)


# ----------------------------------------------------------------------------- the assignment

ASSIGNMENT = Assignment(
    notebook="a2_policy_gradients.ipynb",
    cell_timeout=120,
    cell_budget=60,
    # The notebook forbids the course's reference code in answers: the sandbox hides it.
    forbidden=("course_utils.algorithms", "course_utils.returns"),
    questions=[
        Question(
            "policy_loss",
            DRIVERS.policy_loss,
            make_policy_loss_inputs,
            POLICY_LOSS_RESULT,
            check_policy_loss,
            timeout=20,
            title="A.1 policy_loss",
        ),
        Question(
            "value_loss",
            DRIVERS.value_loss,
            make_value_loss_inputs,
            VALUE_LOSS_RESULT,
            check_value_loss,
            timeout=20,
            title="A.2 value_loss",
        ),
        Question(
            "policy_entropy",
            DRIVERS.policy_entropy,
            make_entropy_inputs,
            ENTROPY_RESULT,
            check_entropy,
            timeout=20,
            title="A.3 policy_entropy",
        ),
        Question(
            "advantages",
            DRIVERS.advantages,
            make_advantages_inputs,
            ADVANTAGES_RESULT,
            check_advantages,
            timeout=20,
            title="B.1 advantages",
        ),
        Question(
            "train_a2c",
            DRIVERS.train_a2c,
            make_train_inputs,
            TRAIN_RESULT,
            check_train,
            timeout=120,
            check_only=("eval_seed",),
            title="C.1 train_a2c",
        ),
    ],
)
