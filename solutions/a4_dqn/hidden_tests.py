"""Hidden checks for assignment 4, "DQN" (never released, never sandboxed).

How grading works is described in ``course_grader/spec.py``: for each question
``make_inputs`` draws fresh inputs here, ``DRIVER_*`` (public, no expected
values) calls the student's functions on them inside the sandbox, and
``check_*`` tests properties of the returned numbers here, in the grader's
process: TD targets against their closed form on minibatches mixing
terminated, truncated and ordinary transitions; the replay buffer's contents
after a wrap-around, the integrity of every sampled row and the uniformity of
its sampling (χ² test); the ε schedule against its formula; target updates as
exact arithmetic; and the trained agent by loading its weights into the
grader's own Q-network (``course_utils.dqn.make_q_network``) and evaluating it
with ``course_utils.evaluation.evaluate`` on start states the grader chooses.
Statistical tests have a false-alarm probability of about 1e-6 each
(``course_grader.checks.ALPHA``). Messages name the property that failed, never
the expected number.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from scipy.stats import chi2

from course_grader.checks import ALPHA, Rubric, Wrong, as_array, as_float, load_state_dict, value
from course_grader.spec import Assignment, Question
from course_utils.dqn import make_q_network
from course_utils.evaluation import evaluate

# ----------------------------------------------------------------------------- shared pieces


def _all_failed(result, name: str) -> None:
    """If every call raised (typically the stub's NotImplementedError), say just that."""
    entries = result if isinstance(result, list) else [result]
    if entries and all(isinstance(e, dict) and "error" in e for e in entries):
        value(entries[0], name)


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).astype(np.float64)


# ----------------------------------------------------------------------------- A.1 td_targets

KINDS = ("ordinary", "terminated", "truncated", "both")


def make_td_targets_inputs(rng):
    batches = []
    for gamma in [0.0, 1.0, *rng.uniform(0.8, 0.999, size=4).round(6).tolist()]:
        B, A = int(rng.integers(8, 40)), int(rng.integers(2, 6))
        kinds = np.concatenate([np.arange(4), rng.integers(0, 4, size=B - 4)])  # every kind at least once
        rng.shuffle(kinds)
        batches.append(
            {
                "gamma": gamma,
                "rewards": rng.normal(0, 2, size=B).round(4).tolist(),
                "next_q": rng.normal(3, 5, size=(B, A)).round(4).tolist(),
                "terminated": [float(k in (1, 3)) for k in kinds],
                "truncated": [float(k in (2, 3)) for k in kinds],
            }
        )
    return {"batches": batches}


DRIVER_TD_TARGETS = """
import torch

def drive(inputs, h):
    f = h.student.td_targets
    out = []
    for b in inputs["batches"]:
        next_q = torch.tensor(b["next_q"], dtype=torch.float32, requires_grad=True)
        y, error = h.run(f, torch.tensor(b["rewards"], dtype=torch.float32), next_q,
                         torch.tensor(b["terminated"], dtype=torch.float32),
                         torch.tensor(b["truncated"], dtype=torch.float32), b["gamma"])
        if error is not None:
            out.append(error)
            continue
        record = h.call(lambda: y)
        record["requires_grad"] = bool(getattr(y, "requires_grad", False))
        out.append(record)
    return out
"""


def check_td_targets(inputs, result):
    _all_failed(result, "td_targets")
    rubric = Rubric()
    wrong = {kind: [] for kind in KINDS}
    edge, grad = [], []
    for k, (b, entry) in enumerate(zip(inputs["batches"], result)):
        r, q = _f32(b["rewards"]), _f32(b["next_q"])
        term, trunc = np.array(b["terminated"]), np.array(b["truncated"])
        expected = r + b["gamma"] * (1.0 - term) * q.max(axis=1)
        rubric.details[f"batch {k}"] = {"expected": expected.tolist()}
        label = f"γ={b['gamma']:.3g}, B={len(r)}"
        try:
            got = as_array(value(entry, "td_targets"), "td_targets", (len(r),))
        except Wrong as err:
            for kind in KINDS:
                wrong[kind].append(f"{label}: {err}")
            continue
        if entry.get("requires_grad"):
            grad.append(label)
        bad = ~np.isclose(got, expected, rtol=1e-5, atol=1e-4)
        kinds = np.where(term == 1, np.where(trunc == 1, 3, 1), np.where(trunc == 1, 2, 0))
        for i, kind in enumerate(KINDS):
            n_bad = int(bad[kinds == i].sum())
            if n_bad:
                wrong[kind].append(f"{label}: {n_bad} of {int((kinds == i).sum())} wrong")
        if b["gamma"] in (0.0, 1.0) and bad.any():
            edge.append(label)
    rubric.part(
        "terminated transitions: the target is the reward alone",
        1.0,
        not wrong["terminated"],
        "; ".join(wrong["terminated"][:2]),
    )
    rubric.part(
        "terminated and truncated at once: terminal wins, no bootstrap",
        0.5,
        not wrong["both"],
        "; ".join(wrong["both"][:2]),
    )
    rubric.part(
        "truncated (time-out) transitions still bootstrap: r + γ max_a' Q(s', a'; θ⁻)",
        1.0,
        not wrong["truncated"],
        "; ".join(wrong["truncated"][:2]),
    )
    rubric.part(
        "ordinary transitions: r + γ max_a' Q(s', a'; θ⁻)", 0.5, not wrong["ordinary"], "; ".join(wrong["ordinary"][:2])
    )
    rubric.part("γ = 0 and γ = 1", 0.25, not edge, "wrong for " + "; ".join(edge[:2]))
    rubric.part(
        "the target carries no gradient (it is a constant for the loss)",
        0.25,
        not grad,
        f"y.requires_grad is True ({len(grad)} of {len(result)} batches)",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- B ReplayBuffer

N_BATCHES_RB, N_FIRST_BATCHES, REPEAT_BATCH = 200, 4, 8  # batches of capacity // 2: ~100 draws per slot


def make_replay_buffer_inputs(rng):
    capacity, obs_dim = int(rng.integers(30, 61)), int(rng.integers(2, 6))
    n_add = capacity + int(rng.integers(capacity // 2, 2 * capacity))
    flags = rng.random(size=(n_add, 2))
    return {
        "capacity": capacity,
        "obs_dim": obs_dim,
        "n_first": capacity // 2,
        "obs": rng.normal(0, 1, size=(n_add, obs_dim)).round(4).tolist(),
        "action": rng.integers(0, 4, size=n_add).tolist(),
        "reward": rng.normal(0, 1, size=n_add).round(4).tolist(),
        "next_obs": rng.normal(0, 1, size=(n_add, obs_dim)).round(4).tolist(),
        "terminated": (flags[:, 0] < 0.2).tolist(),
        "truncated": (flags[:, 1] < 0.2).tolist(),
        "batch_size": capacity // 2,
        "n_batches": N_BATCHES_RB,
        "repeat_batch": REPEAT_BATCH,
        "first_batch": capacity // 4,
        "n_first_batches": N_FIRST_BATCHES,
        "seed": int(rng.integers(2**31)),
        "repeat_seed": int(rng.integers(2**31)),
    }


DRIVER_REPLAY_BUFFER = """
import numpy as np

def drive(inputs, h):
    Buffer = h.student.ReplayBuffer
    C, d = inputs["capacity"], inputs["obs_dim"]
    obs = np.array(inputs["obs"], dtype=np.float32)
    next_obs = np.array(inputs["next_obs"], dtype=np.float32)

    def add(buffer, i):
        buffer.add(obs[i].copy(), int(inputs["action"][i]), float(inputs["reward"][i]), next_obs[i].copy(),
                   bool(inputs["terminated"][i]), bool(inputs["truncated"][i]))

    def fill(buffer, start, stop):
        for i in range(start, stop):
            add(buffer, i)

    out = {}
    buffer, error = h.run(Buffer, C, d, seed=inputs["seed"])
    if error is not None:
        return {"error": error}
    out["fill_first"] = h.call(fill, buffer, 0, inputs["n_first"])
    out["len_first"] = h.call(len, buffer)
    out["sample_first"] = [h.call(buffer.sample, inputs["first_batch"]) for _ in range(inputs["n_first_batches"])]
    out["fill_rest"] = h.call(fill, buffer, inputs["n_first"], len(obs))
    out["len_full"] = h.call(len, buffer)
    out["samples"] = [h.call(buffer.sample, inputs["batch_size"]) for _ in range(inputs["n_batches"])]
    out["too_many"] = h.call(buffer.sample, C + 1)
    out["zero"] = h.call(buffer.sample, 0)
    repeats = []
    for _ in range(2):
        other, error = h.run(Buffer, C, d, seed=inputs["repeat_seed"])
        if error is not None:
            repeats.append(error)
            continue
        h.call(fill, other, 0, C // 2)
        repeats.append([h.call(other.sample, inputs["repeat_batch"]) for _ in range(3)])
    out["repeats"] = repeats
    return out
"""

KEYS = ("obs", "action", "reward", "next_obs", "terminated", "truncated")


def _rows(entry, n: int, obs_dim: int) -> dict[str, np.ndarray]:
    """One sampled minibatch as arrays of the right shapes, or :class:`Wrong`."""
    batch = value(entry, "ReplayBuffer.sample")
    if not isinstance(batch, dict) or set(KEYS) - set(batch):
        raise Wrong(f"ReplayBuffer.sample should return a dict with the keys {', '.join(KEYS)}")
    return {
        key: as_array(batch[key], f"sample()['{key}']", (n, obs_dim) if key.endswith("obs") else (n,)) for key in KEYS
    }


def _identify(rows: dict, inputs) -> tuple[np.ndarray, int]:
    """For each sampled row, the index of the added transition it is, by its ``obs`` (−1 if none); and how many
    rows have fields that do not all belong to that transition."""
    lookup = {tuple(_f32(o)): i for i, o in enumerate(inputs["obs"])}
    ids = np.array([lookup.get(tuple(o), -1) for o in rows["obs"]])
    mixed = 0
    for row, i in enumerate(ids):
        if i < 0:
            continue
        same = (
            np.array_equal(rows["next_obs"][row], _f32(inputs["next_obs"][i]))
            and rows["action"][row] == inputs["action"][i]
            and rows["reward"][row] == float(np.float32(inputs["reward"][i]))
            and rows["terminated"][row] == float(inputs["terminated"][i])
            and rows["truncated"][row] == float(inputs["truncated"][i])
        )
        mixed += not same
    return ids, mixed


def check_replay_buffer(inputs, result):
    if isinstance(result, dict) and isinstance(result.get("error"), dict):
        value(result["error"], "ReplayBuffer(capacity, obs_dim, seed)")
    rubric = Rubric()
    C, d, n_add, n_first = inputs["capacity"], inputs["obs_dim"], len(inputs["obs"]), inputs["n_first"]
    value(result["fill_rest"], "ReplayBuffer.add")
    newest = set(range(n_add - C, n_add))

    # before the buffer is full
    message = ""
    try:
        value(result["fill_first"], "ReplayBuffer.add")
        length = as_float(value(result["len_first"], "len(buffer)"), "len(buffer)")
        first = [_rows(e, inputs["first_batch"], d) for e in result["sample_first"]]
        ids, _ = _identify({key: np.concatenate([r[key] for r in first]) for key in KEYS}, inputs)
        if length != n_first:
            message = f"after {n_first} additions len(buffer) is {length:g}"
        elif not set(ids.tolist()) <= set(range(n_first)):
            message = "it returned rows that were never added"
    except Wrong as err:
        message = str(err)
    rubric.part(
        "before it is full: len counts the additions and only added transitions are sampled", 0.5, not message, message
    )

    # after the wrap-around: contents, integrity, uniformity
    try:
        length = as_float(value(result["len_full"], "len(buffer)"), "len(buffer)")
        rows = [_rows(e, inputs["batch_size"], d) for e in result["samples"]]
        rows = {key: np.concatenate([r[key] for r in rows]) for key in KEYS}
    except Wrong as err:
        rubric.part(f"after {n_add} additions it holds exactly the newest {C} (the capacity)", 1.0, False, str(err))
        return rubric.verdict()
    ids, mixed = _identify(rows, inputs)
    seen = set(ids.tolist())
    problems = []
    if length != C:
        problems.append(f"len(buffer) is {length:g}")
    if -1 in seen:
        problems.append(f"{int((ids == -1).sum())} sampled rows match no added transition")
    if seen - {-1} - newest:
        problems.append(f"{len(seen - {-1} - newest)} transitions that should have been overwritten are still sampled")
    if newest - seen:
        problems.append(f"{len(newest - seen)} of the newest {C} transitions never appear in {len(ids)} draws")
    rubric.details.update(n_draws=len(ids), n_distinct=len(seen - {-1}))
    rubric.part(
        f"after {n_add} additions it holds exactly the newest {C} transitions (ring overwrite of the oldest)",
        1.0,
        not problems,
        "; ".join(problems),
    )
    rubric.part(
        "every sampled row is one transition exactly as added (obs, action, reward, next_obs, flags together)",
        1.0,
        mixed == 0 and -1 not in seen,
        f"{mixed} of {len(ids)} sampled rows mix fields of different transitions"
        if mixed
        else "sampled observations do not match any added transition",
    )
    counts = np.bincount(ids[ids >= 0], minlength=n_add)
    held = np.sort(counts)[::-1][:C]  # the counts of the (at most C) transitions it samples
    expected = len(ids) / C
    stat = float(np.sum((held - expected) ** 2) / expected)
    p = float(chi2.sf(stat, C - 1))
    rubric.details.update(chi2=stat, p_value=p)
    rubric.part(
        f"sampling is uniform over the {C} held transitions (χ² test on {len(ids)} draws)",
        1.0,
        p > ALPHA and -1 not in seen,
        f"the counts are far from uniform (χ² p-value {p:.1e})",
    )

    # refused requests and reproducibility
    refused = [
        name
        for name in ("too_many", "zero")
        if not (isinstance(result[name], dict) and result[name].get("exception") == "ValueError")
    ]
    rubric.part(
        "asking for more transitions than it holds, or for 0, raises a ValueError",
        0.25,
        not refused,
        f"sample({C + 1 if 'too_many' in refused else 0}) did not raise ValueError",
    )
    same, message = False, "two buffers with the same seed and the same additions gave different minibatches"
    try:
        runs = []
        for rep in result["repeats"]:
            if isinstance(rep, dict):
                value(rep, "ReplayBuffer(capacity, obs_dim, seed)")
            runs.append([_rows(e, REPEAT_BATCH, d) for e in rep])
        same = all(np.array_equal(x[key], y[key]) for x, y in zip(*runs) for key in KEYS)
    except Wrong as err:
        message = str(err)
    rubric.part("the same seed and the same additions give the same minibatches", 0.25, same, message)
    return rubric.verdict()


# ----------------------------------------------------------------------------- C epsilon


def make_epsilon_inputs(rng):
    schedules = []
    for _ in range(4):
        start, end = round(float(rng.uniform(0.5, 1.0)), 4), round(float(rng.uniform(0.0, 0.2)), 4)
        decay = int(rng.integers(100, 10_000))
        between = sorted(rng.integers(1, decay, size=10).tolist())
        after = [decay + int(rng.integers(1, 5 * decay)), 10 * decay]
        schedules.append({"start": start, "end": end, "decay_steps": decay, "steps": [0, *between, decay, *after]})
    return {"schedules": schedules}


DRIVER_EPSILON = """
def drive(inputs, h):
    f = h.student.epsilon
    out = [[h.call(f, t, s["start"], s["end"], s["decay_steps"]) for t in s["steps"]] for s in inputs["schedules"]]
    s = inputs["schedules"][0]
    return {"values": out, "negative": h.call(f, -1, s["start"], s["end"], s["decay_steps"])}
"""


def check_epsilon(inputs, result):
    _all_failed([e for row in result["values"] for e in row], "epsilon")
    rubric = Rubric()
    fails = {"ends": 0, "linear": 0, "after": 0, "monotone": 0}
    for k, (s, entries) in enumerate(zip(inputs["schedules"], result["values"])):
        steps = np.array(s["steps"])
        expected = s["start"] + np.minimum(steps / s["decay_steps"], 1.0) * (s["end"] - s["start"])
        rubric.details[f"schedule {k}"] = {"expected": expected.tolist()}
        try:
            got = np.array([as_float(value(e, "epsilon"), "epsilon") for e in entries])
        except Wrong:
            fails = {key: v + 1 for key, v in fails.items()}
            continue
        ok = np.isclose(got, expected, rtol=1e-9, atol=1e-9)
        fails["ends"] += not (ok[0] and ok[steps == s["decay_steps"]].all())
        fails["linear"] += not ok[(steps > 0) & (steps < s["decay_steps"])].all()
        fails["after"] += not ok[steps > s["decay_steps"]].all()
        fails["monotone"] += bool(np.any(np.diff(got) > 1e-12))
    n = len(inputs["schedules"])
    rubric.part(
        "ε(0) = start and ε(decay_steps) = end", 0.25, not fails["ends"], f"wrong on {fails['ends']} of {n} schedules"
    )
    rubric.part(
        "in between, ε falls on the straight line from start to end",
        0.3,
        not fails["linear"],
        f"wrong on {fails['linear']} of {n} schedules",
    )
    rubric.part(
        "after decay_steps, ε stays at end", 0.15, not fails["after"], f"wrong on {fails['after']} of {n} schedules"
    )
    rubric.part(
        "ε never increases", 0.1, not fails["monotone"], f"it increases in {fails['monotone']} of {n} schedules"
    )
    negative = result["negative"]
    rubric.part(
        "a negative step raises a ValueError",
        0.2,
        isinstance(negative, dict) and negative.get("exception") == "ValueError",
        "epsilon(-1, ...) did not",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- D.1 update_target

NET_SHAPE = (3, 2, (6,))  # obs_dim, n_actions, hidden sizes of the grader's small networks
N_REPEAT = 10


def _random_state(rng) -> dict:
    net = make_q_network(*NET_SHAPE)
    return {key: rng.normal(0, 1, size=tuple(t.shape)).round(4).tolist() for key, t in net.state_dict().items()}


def make_update_target_inputs(rng):
    return {
        "online": _random_state(rng),
        "target": _random_state(rng),
        "cases": [
            [1.0, 1],
            [round(float(rng.uniform(0.001, 0.05)), 5), 1],
            [round(float(rng.uniform(0.2, 0.8)), 4), 1],
            [round(float(rng.uniform(0.05, 0.3)), 4), N_REPEAT],
        ],
    }


DRIVER_UPDATE_TARGET = """
import torch
from course_utils.dqn import make_q_network

def drive(inputs, h):
    f = h.student.update_target

    def net(state):
        module = make_q_network(3, 2, (6,))
        module.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in state.items()})
        return module

    out = []
    for tau, times in inputs["cases"]:
        online, target = net(inputs["online"]), net(inputs["target"])

        def update():
            for _ in range(times):
                f(target, online, tau)
            return {"target": target.state_dict(), "online": online.state_dict()}

        out.append(h.call(update))
    return out
"""


def check_update_target(inputs, result):
    _all_failed(result, "update_target")
    rubric = Rubric()
    online = {k: _f32(v) for k, v in inputs["online"].items()}
    target0 = {k: _f32(v) for k, v in inputs["target"].items()}
    status = {"hard": None, "soft": None, "repeat": None, "online": None}
    for (tau, times), entry in zip(inputs["cases"], result):
        kind = "hard" if tau == 1.0 else ("repeat" if times > 1 else "soft")
        try:
            got = value(entry, "update_target")
            if not isinstance(got, dict) or set(got) != {"target", "online"}:
                raise Wrong("update_target: the grader's driver returned no networks")
            bad = []
            for key in online:
                new = as_array(got["target"].get(key), f"target {key}", online[key].shape)
                expected = online[key] + (1 - tau) ** times * (target0[key] - online[key])
                if not np.allclose(new, expected, rtol=1e-4, atol=1e-5):
                    bad.append(key)
                if not np.array_equal(
                    as_array(got["online"].get(key), f"online {key}", online[key].shape), online[key]
                ):
                    status["online"] = f"the online network's {key} changed (τ = {tau})"
            status[kind] = status[kind] or (f"{', '.join(bad)} wrong" if bad else None)
        except Wrong as err:
            status[kind] = status[kind] or str(err)
            status["online"] = status["online"] or "could not be checked"
    rubric.part("τ = 1: θ⁻ becomes an exact copy of θ", 0.5, status["hard"] is None, status["hard"] or "")
    rubric.part(
        "soft update: θ⁻ ← τ θ + (1 − τ) θ⁻ for every parameter", 0.75, status["soft"] is None, status["soft"] or ""
    )
    rubric.part(
        f"{N_REPEAT} soft updates in a row: θ⁻ = θ + (1 − τ)^{N_REPEAT} (θ⁻₀ − θ) (the update is in place)",
        0.5,
        status["repeat"] is None,
        status["repeat"] or "",
    )
    rubric.part("the online network θ is left unchanged", 0.25, status["online"] is None, status["online"] or "")
    return rubric.verdict()


# ----------------------------------------------------------------------------- E train_dqn

# The grader's settings: 1.5x the fast preset's budget (DQNConfig.fast() stops at 8,192 steps, where single runs
# still ranged from 27 to 188). Measured with the solution notebook's train_dqn (its HYPERPARAMETERS are
# DQNConfig's), 20 training seeds at 12,288 steps, each evaluated on 20 fresh start states: mean return 84 to 500
# (median 117), mean max_a Q(s_0, a) 45.5 to 53.7. course_utils.dqn.train on 10 more seeds at 12,288 steps: 103 to
# 500. A randomly initialised make_q_network(4, 2, (64, 64)), 150 inits: greedy return median 9.4, 90th percentile
# 17, 99th 76 (max 152), values near 0 -- so the value part, not the return part, is what no untrained network passes.
TRAIN_STEPS, N_EVAL_EPISODES = 12_288, 20
RETURN_THRESHOLD, VALUE_THRESHOLD = 50.0, 5.0
ENV_ID = "CartPole-v1"


def make_train_dqn_inputs(rng):
    return {
        "total_steps": TRAIN_STEPS,
        "seed": int(rng.integers(2**31)),
        "eval_seed": int(rng.integers(1_000_000, 100_000_000)),
    }


DRIVER_TRAIN_DQN = """
def drive(inputs, h):
    state_dict, error = h.run(h.student.train_dqn, inputs["total_steps"], inputs["seed"])
    if error is not None:
        return {"weights": error}
    if hasattr(state_dict, "state_dict"):  # a module instead of its state_dict: take its weights
        state_dict = state_dict.state_dict()
    packed, error = h.run(h.arrays, state_dict)
    return {"weights": error if error is not None else packed}  # an .npz of the weights, loaded without pickle
"""


def start_states(seed: int, n: int) -> torch.Tensor:
    """The initial observations of the evaluation's episodes (episode k is reset with seed + k, as in evaluate)."""
    env = gym.make(ENV_ID)
    states = np.stack([env.reset(seed=seed + k)[0] for k in range(n)])
    env.close()
    return torch.as_tensor(states, dtype=torch.float32)


def check_train_dqn(inputs, result):
    rubric = Rubric()
    weights = result.get("weights") if isinstance(result, dict) else None
    if isinstance(weights, dict) and "error" in weights:
        value(weights, "train_dqn")  # raises Wrong with the student's exception
    net = load_state_dict(weights, make_q_network(4, 2, (64, 64)), "train_dqn's state_dict")
    mean_return, std_return = evaluate(net, ENV_ID, n_episodes=N_EVAL_EPISODES, seed=inputs["eval_seed"])
    with torch.no_grad():
        start_value = float(net(start_states(inputs["eval_seed"], N_EVAL_EPISODES)).max(dim=1).values.mean())
    rubric.details.update(mean_return=mean_return, std_return=std_return, start_value=start_value)
    rubric.part(
        f"the greedy policy of the trained network (loaded into the grader's own Q-network) survives at least "
        f"{RETURN_THRESHOLD:.0f} steps on average over {N_EVAL_EPISODES} new CartPole-v1 episodes",
        2.0,
        mean_return >= RETURN_THRESHOLD,
        f"it survived {mean_return:.0f} steps on average",
    )
    rubric.part(
        f"its values are those of a trained Q-function: max_a Q(s_0, a) averages at least {VALUE_THRESHOLD:.0f} "
        f"over the start states",
        1.0,
        start_value >= VALUE_THRESHOLD,
        f"it averages {start_value:.1f}",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- the assignment

ASSIGNMENT = Assignment(
    notebook="a4_dqn.ipynb",
    cell_timeout=120,
    questions=[
        Question(
            "td_targets",
            DRIVER_TD_TARGETS,
            make_td_targets_inputs,
            check_td_targets,
            timeout=20,
            title="A.1 td_targets",
        ),
        Question(
            "replay_buffer",
            DRIVER_REPLAY_BUFFER,
            make_replay_buffer_inputs,
            check_replay_buffer,
            timeout=30,
            title="B ReplayBuffer",
        ),
        Question("epsilon", DRIVER_EPSILON, make_epsilon_inputs, check_epsilon, timeout=20, title="C epsilon"),
        Question(
            "update_target",
            DRIVER_UPDATE_TARGET,
            make_update_target_inputs,
            check_update_target,
            timeout=20,
            title="D.1 update_target",
        ),
        Question(
            "train_dqn", DRIVER_TRAIN_DQN, make_train_dqn_inputs, check_train_dqn, timeout=120, title="E train_dqn"
        ),
    ],
)
