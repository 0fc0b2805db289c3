"""Hidden checks for assignment 2, "REINFORCE with baseline and A2C on CartPole" (never released, never sandboxed).

How grading works is described in ``course_grader/spec.py``: for each question
``make_inputs`` draws fresh inputs here, ``DRIVER_*`` (public, no expected
values) calls the student's functions on them inside the sandbox, and
``check_*`` tests properties of the returned numbers here, in the grader's
process: agreement of the losses and their gradients with closed forms
(the policy loss's gradient is minus the score-function estimate, and no
gradient may flow through ⊥), advantages against a brute-force double sum on
random batches with terminations, truncations and rollout cuts, and the
trained policy's greedy return, evaluated by the grader's own network on
seeds it chooses. Messages name the property that failed, never the expected
number.
"""

from __future__ import annotations

import numpy as np

from course_grader.checks import Rubric, Wrong, as_array, as_float, load_state_dict, value
from course_grader.spec import Assignment, Question

# ----------------------------------------------------------------------------- shared pieces

ATOL, RTOL = 1e-4, 1e-4  # float32 arithmetic inside a student's function must still pass


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _same_failure_everywhere(result, name: str) -> None:
    """If every call raised the same exception (typically the stub's NotImplementedError), say just that."""
    if not isinstance(result, list) or not result:
        raise Wrong(f"{name}: the grader's driver returned no results")
    kinds = {e.get("exception") if isinstance(e, dict) else None for e in result}
    if len(kinds) == 1 and None not in kinds:
        value(result[0], name)


def _linear_batch(rng, shape, n_features=3, n_actions=3) -> dict:
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


LINEAR_DRIVER_PRELUDE = """
import numpy as np
import torch

def linear_batch(b):
    obs = torch.tensor(b["obs"], dtype=torch.float64)
    W = torch.tensor(b["W"], dtype=torch.float64, requires_grad=True)
    u = torch.tensor(b["u"], dtype=torch.float64, requires_grad=True)
    return obs, W, u

def gradients(loss, params):
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
"""

# ----------------------------------------------------------------------------- A.1 policy_loss


def make_policy_loss_inputs(rng):
    shapes = [(int(rng.integers(20, 60)),) for _ in range(4)] + [(int(rng.integers(5, 12)), int(rng.integers(2, 6)))]
    return {"batches": [_linear_batch(rng, shape) for shape in shapes]}


DRIVER_POLICY_LOSS = (
    LINEAR_DRIVER_PRELUDE
    + """
def one(f, b):
    obs, W, u = linear_batch(b)
    actions = torch.tensor(b["actions"])
    log_probs = torch.log_softmax(obs @ W, dim=-1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    returns = torch.tensor(b["rewards"], dtype=torch.float64)
    advantages = returns - obs @ u          # A_t = G_t - V(s_t): depends on the critic's u
    loss = f(log_probs, advantages)
    g_W, g_u = gradients(loss, (W, u))
    return {"loss": loss, "grad_W": g_W, "grad_u": g_u}

def drive(inputs, h):
    f = h.student.policy_loss
    return [h.call(one, f, b) for b in inputs["batches"]]
"""
)


def check_policy_loss(inputs, result):
    _same_failure_everywhere(result, "policy_loss")
    rubric = Rubric()
    wrong = {"loss": 0, "grad_W": 0, "grad_u": 0}
    for k, (b, entry) in enumerate(zip(inputs["batches"], result)):
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
        got = value(entry, "policy_loss")
        if not isinstance(got, dict):
            raise Wrong("policy_loss: the grader's driver returned no result")
        wrong["loss"] += not np.isclose(as_float(got.get("loss"), "the loss"), loss, rtol=RTOL, atol=ATOL)
        wrong["grad_W"] += not np.allclose(
            as_array(got.get("grad_W"), "∇_W loss", W.shape), grad_W, rtol=RTOL, atol=ATOL
        )
        wrong["grad_u"] += not np.allclose(as_array(got.get("grad_u"), "∇_u loss", u.shape), 0.0, atol=1e-9)
    n = len(result)
    rubric.part(
        "the loss is -mean(A_t log π_θ(a_t|s_t)) on the grader's batches (shapes (M,) and (T, N))",
        1.0,
        wrong["loss"] == 0,
        f"wrong on {wrong['loss']} of {n} batches",
    )
    rubric.part(
        "its gradient with respect to the actor is minus the score-function estimate -(1/M) Σ A_t ∇_θ log π_θ(a_t|s_t)",
        1.0,
        wrong["grad_W"] == 0,
        f"wrong on {wrong['grad_W']} of {n} batches",
    )
    rubric.part(
        "no gradient reaches the critic through the advantages (⊥A_t)",
        1.0,
        wrong["grad_u"] == 0,
        f"the critic's parameters received a gradient on {wrong['grad_u']} of {n} batches",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- A.2 value_loss


def make_value_loss_inputs(rng):
    shapes = [(int(rng.integers(20, 60)),) for _ in range(3)] + [(int(rng.integers(5, 12)), int(rng.integers(2, 6)))]
    return {"batches": [_linear_batch(rng, shape) for shape in shapes]}


DRIVER_VALUE_LOSS = (
    LINEAR_DRIVER_PRELUDE
    + """
def one(f, b):
    obs, W, u = linear_batch(b)
    next_obs = torch.tensor(b["next_obs"], dtype=torch.float64)
    values = obs @ u
    returns = torch.tensor(b["rewards"], dtype=torch.float64) + b["gamma"] * (next_obs @ u)  # a target built with the critic
    loss = f(values, returns)
    (g_u,) = gradients(loss, (u,))
    return {"loss": loss, "grad_u": g_u}

def drive(inputs, h):
    f = h.student.value_loss
    return [h.call(one, f, b) for b in inputs["batches"]]
"""
)


def check_value_loss(inputs, result):
    _same_failure_everywhere(result, "value_loss")
    rubric = Rubric()
    wrong = {"loss": 0, "grad": 0}
    for k, (b, entry) in enumerate(zip(inputs["batches"], result)):
        obs, next_obs, u = np.array(b["obs"]), np.array(b["next_obs"]), np.array(b["u"])
        V = obs @ u
        G = np.array(b["rewards"]) + b["gamma"] * (next_obs @ u)
        loss = float(((V - G) ** 2).mean())
        grad = 2 * (V - G).reshape(-1) @ obs.reshape(V.size, -1) / V.size  # the target ⊥G is a constant
        rubric.details[f"batch {k}"] = {"loss": loss}
        got = value(entry, "value_loss")
        if not isinstance(got, dict):
            raise Wrong("value_loss: the grader's driver returned no result")
        wrong["loss"] += not np.isclose(as_float(got.get("loss"), "the loss"), loss, rtol=RTOL, atol=ATOL)
        wrong["grad"] += not np.allclose(as_array(got.get("grad_u"), "∇_φ loss", u.shape), grad, rtol=RTOL, atol=ATOL)
    n = len(result)
    rubric.part(
        "the loss is mean((V_φ(s_t) - Ĝ_t)²)", 1.0, wrong["loss"] == 0, f"wrong on {wrong['loss']} of {n} batches"
    )
    rubric.part(
        "its gradient treats the target as a constant (⊥Ĝ_t), even when the target was computed with the critic",
        1.0,
        wrong["grad"] == 0,
        f"wrong on {wrong['grad']} of {n} batches",
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


DRIVER_ENTROPY = """
import torch

def one(f, logits):
    logits = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    H = f(logits)
    (g,) = torch.autograd.grad(H, logits)
    return {"entropy": H, "grad": g}

def drive(inputs, h):
    f = h.student.policy_entropy
    return [h.call(one, f, c["logits"]) for c in inputs["cases"]]
"""


def check_entropy(inputs, result):
    _same_failure_everywhere(result, "policy_entropy")
    rubric = Rubric()
    failures = {"value": 0, "grad": 0, "confident": []}
    ordinary = 0
    for k, (case, entry) in enumerate(zip(inputs["cases"], result)):
        z = np.array(case["logits"])
        log_p = _log_softmax(z)
        p = np.exp(log_p)
        H_rows = -(p * log_p).sum(-1)
        H = float(H_rows.mean())
        grad = -p * (log_p + H_rows[:, None]) / len(z)  # ∂ mean H / ∂z_k = -p_k (log p_k + H) / M
        rubric.details[f"case {k}"] = {"entropy": H}
        if case["kind"] == "confident":
            try:
                got = value(entry, "policy_entropy")
                ok = (
                    isinstance(got, dict)
                    and np.isclose(as_float(got.get("entropy"), "the entropy"), H, rtol=RTOL, atol=ATOL)
                    and np.allclose(as_array(got.get("grad"), "its gradient", z.shape), grad, rtol=RTOL, atol=ATOL)
                )
                if not ok:
                    failures["confident"].append("wrong value or gradient")
            except Wrong as err:
                failures["confident"].append(str(err))
            continue
        ordinary += 1
        got = value(entry, "policy_entropy")
        if not isinstance(got, dict):
            raise Wrong("policy_entropy: the grader's driver returned no result")
        failures["value"] += not np.isclose(as_float(got.get("entropy"), "the entropy"), H, rtol=RTOL, atol=ATOL)
        failures["grad"] += not np.allclose(
            as_array(got.get("grad"), "its gradient", z.shape), grad, rtol=RTOL, atol=ATOL
        )
    rubric.part(
        "the mean over states of H[π(·|s)] = -Σ_a π(a|s) log π(a|s)",
        0.5,
        failures["value"] == 0,
        f"wrong on {failures['value']} of {ordinary} batches of logits",
    )
    rubric.part(
        "its gradient with respect to the logits",
        0.25,
        failures["grad"] == 0,
        f"wrong on {failures['grad']} of {ordinary} batches of logits",
    )
    rubric.part(
        "finite and correct for a nearly deterministic policy (some probabilities underflow to 0)",
        0.25,
        not failures["confident"],
        "; ".join(failures["confident"][:1]),
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- B.1 advantages


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


DRIVER_ADVANTAGES = """
import torch

def drive(inputs, h):
    f = h.student.advantages
    out = []
    for c in inputs["cases"]:
        args = [torch.tensor(c[k], dtype=torch.float64) for k in ("rewards", "values", "next_values")]
        flags = [torch.tensor(c[k], dtype=torch.bool) for k in ("terminated", "truncated")]
        out.append(h.call(f, *args, *flags, c["gamma"], c["lam"]))
    return out
"""


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


def check_advantages(inputs, result):
    _same_failure_everywhere(result, "advantages")
    rubric = Rubric()
    failures = {kind: [] for kind in ("cut", "terminated", "truncated", "mixed", "lambda")}
    for k, (case, entry) in enumerate(zip(inputs["cases"], result)):
        expected = advantages_brute_force(case)
        rubric.details[f"case {k}"] = {"expected": expected.tolist()}
        label = f"T, N = {expected.shape}, γ = {case['gamma']:.3g}, λ = {case['lam']:.3g}"
        try:
            got = as_array(value(entry, "advantages"), "advantages", expected.shape)
        except Wrong as err:
            failures[case["kind"]].append(f"{label}: {err}")
            continue
        bad = ~np.isclose(got, expected, rtol=RTOL, atol=ATOL)
        if bad.any():
            failures[case["kind"]].append(
                f"{label}: disagrees with the definition at {int(bad.sum())} of {bad.size} entries"
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


# ----------------------------------------------------------------------------- B.2 train_a2c

TOTAL_STEPS = 20_000  # the training budget in environment steps, stated in the notebook
N_EVAL_EPISODES = 20
THRESHOLD = 100.0  # mean greedy return over the grader's evaluation episodes, stated in the notebook


def make_train_inputs(rng):
    return {
        "total_steps": TOTAL_STEPS,
        "seed": int(rng.integers(0, 10_000)),
        "eval_seed": int(rng.integers(100_000, 2**31 - 1_000)),
    }


DRIVER_TRAIN = """
def drive(inputs, h):
    weights, error = h.run(h.student.train_a2c, inputs["total_steps"], inputs["seed"])
    if error is not None:
        return {"weights": error}
    if hasattr(weights, "state_dict"):   # a network instead of its state_dict: take its weights
        weights = weights.state_dict()
    packed, error = h.run(h.arrays, weights)  # an .npz of the weights, loaded without pickle
    return {"weights": error if error is not None else packed}
"""


def check_train(inputs, result):
    from course_utils.evaluation import evaluate
    from course_utils.networks import CategoricalPolicy

    rubric = Rubric()
    weights = result.get("weights") if isinstance(result, dict) else None
    if isinstance(weights, dict) and "error" in weights:
        value(weights, "train_a2c")  # raises Wrong with the student's exception
    policy = load_state_dict(weights, CategoricalPolicy(4, 2), "train_a2c's state_dict")
    mean, std = evaluate(policy, "CartPole-v1", n_episodes=N_EVAL_EPISODES, seed=inputs["eval_seed"])
    rubric.details.update(mean_return=mean, std_return=std)
    rubric.part(
        f"the trained policy, loaded into the grader's own CategoricalPolicy(4, 2), reaches a mean greedy return "
        f"of at least {THRESHOLD:.0f} over {N_EVAL_EPISODES} CartPole-v1 episodes on new seeds",
        1.0,
        mean >= THRESHOLD,
        f"its mean return was {mean:.0f}",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- the assignment

ASSIGNMENT = Assignment(
    notebook="a2_policy_gradients.ipynb",
    cell_timeout=120,
    questions=[
        Question(
            "policy_loss",
            DRIVER_POLICY_LOSS,
            make_policy_loss_inputs,
            check_policy_loss,
            timeout=20,
            title="A.1 policy_loss",
        ),
        Question(
            "value_loss",
            DRIVER_VALUE_LOSS,
            make_value_loss_inputs,
            check_value_loss,
            timeout=20,
            title="A.2 value_loss",
        ),
        Question(
            "policy_entropy", DRIVER_ENTROPY, make_entropy_inputs, check_entropy, timeout=20, title="A.3 policy_entropy"
        ),
        Question(
            "advantages",
            DRIVER_ADVANTAGES,
            make_advantages_inputs,
            check_advantages,
            timeout=20,
            title="B.1 advantages",
        ),
        Question("train_a2c", DRIVER_TRAIN, make_train_inputs, check_train, timeout=120, title="C.1 train_a2c"),
    ],
)
