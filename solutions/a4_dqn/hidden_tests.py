"""Hidden checks for assignment 4, "DQN" (never released, never sandboxed).

How grading works is described in ``course_grader/spec.py``: for each question
``make_*_inputs`` draws fresh inputs here, the function of the same name in
``drivers.py`` (public, no expected values) calls the student's functions on
them inside the sandbox, ``*_RESULT`` fixes the shape of what it returns, and
``check_*`` tests properties of the parsed values here, in the grader's
process: TD targets against their closed form on minibatches mixing
terminated, truncated and ordinary transitions; the replay buffer's contents
after a wrap-around, the integrity of every sampled row and the uniformity of
its sampling (χ² test); the ε schedule against its formula; target updates as
exact arithmetic; and the trained agent.

Training is graded as training. The driver runs ``train_dqn`` twice with the
notebook's ``ReplayBuffer``, ``td_targets``, ``epsilon`` and ``update_target``
wrapped to count their use (the counts, and whether the returned weights are
those of a network passed to ``update_target``, come back with the weights):
first on a small task in CartPole's clothes whose exact Q-values the grader
computes (two states, episodes of one or two steps, rewards drawn per run),
then on a variant of CartPole drawn per run (observation coordinates reordered
and sign-flipped, actions possibly swapped). The grader loads the returned
weights into its own Q-network; on the small task they must give the exact
Q-values, on CartPole they are evaluated on the same variant from start states
of check-only seeds (return, and values that are high at the start and low
where the pole is about to fall). Weights written by hand (with or without
calls of the pieces for show), another method that bypasses the pieces, and
the course's reference DQN (hidden in the sandbox) fail; see the corpus cases
in ``tests/grading_corpus/a4_dqn.py``. Statistical tests have a false-alarm
probability of about 1e-6 each (``course_grader.checks.ALPHA``). Messages name
the property that failed, never an expected number or a drawn input.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from scipy.stats import chi2
from torch import nn

from course_grader.checks import ALPHA, Rubric, Wrong
from course_grader.schema import Array, Call, Fields, Flag, ListOf, Number, Weights
from course_grader.spec import Assignment, Question, load_drivers
from course_utils.evaluation import evaluate

DRIVERS = load_drivers(__file__)
KEYS = DRIVERS.KEYS

# ----------------------------------------------------------------------------- shared pieces


def _same_failure_everywhere(outcomes, name: str, allowed: str | None = None) -> None:
    """If every call raised the same exception (typically the stub's NotImplementedError), say just that."""
    kinds = {o.exception for o in outcomes}
    if len(kinds) == 1 and None not in kinds and allowed not in kinds:
        outcomes[0].get(name)


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def values_of(outcomes, name: str) -> list:
    """The values of many calls; the first failed call becomes the check's message."""
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise Wrong(
            f"{name} {failed[0].failure}" + (f" (and {len(failed) - 1} more calls failed)" if len(failed) > 1 else "")
        )
    return [o.value for o in outcomes]


def _of(count: int, total: int, what: str) -> str:
    return f"in {count} of {total} {what}"


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


def TD_TARGETS_RESULT(inputs):  # noqa: N802 - a schema, named like a constant
    return ListOf(Fields({"y": Call(Array((None,))), "requires_grad": Call(Flag())}), len(inputs["batches"]))


def check_td_targets(inputs, result):
    _same_failure_everywhere([r["y"] for r in result], "td_targets")
    rubric = Rubric()
    n = len(inputs["batches"])
    wrong = {kind: 0 for kind in KINDS}  # minibatches in which transitions of that kind are wrong
    edge, grad, returned, first = 0, 0, 0, None
    for k, (b, record) in enumerate(zip(inputs["batches"], result, strict=True)):
        outcome = record["y"]
        r, q = _f32(b["rewards"]), _f32(b["next_q"])
        term, trunc = np.array(b["terminated"]), np.array(b["truncated"])
        expected = r + b["gamma"] * (1.0 - term) * q.max(axis=1)
        rubric.details[f"batch {k}"] = {"expected": expected.tolist(), "failure": outcome.failure}
        edge_batch = b["gamma"] in (0.0, 1.0)
        if not outcome.ok or outcome.value.shape != expected.shape:
            first = first or (
                f"td_targets {outcome.failure}"
                if not outcome.ok
                else "td_targets returned a different number of targets than the minibatch has transitions"
            )
            wrong = {kind: v + 1 for kind, v in wrong.items()}
            edge += edge_batch
            continue
        returned += 1
        grad += record["requires_grad"].value is not False  # True, or the driver's record was tampered with
        bad = ~np.isclose(outcome.value, expected, rtol=1e-5, atol=1e-4)
        kinds = np.where(term == 1, np.where(trunc == 1, 3, 1), np.where(trunc == 1, 2, 0))
        for i, kind in enumerate(KINDS):
            wrong[kind] += bool(bad[kinds == i].any())
        edge += edge_batch and bool(bad.any())
    where = "minibatches" + (f" ({first})" if first else "")
    bootstraps = wrong["ordinary"] == 0  # a function that never bootstraps gets no credit for terminal ones

    def terminal_message(count: int) -> str:
        messages = ["wrong " + _of(count, n, where)] if count else []
        if not bootstraps:
            messages.append("ordinary transitions are not bootstrapped either, so this shows nothing")
        return "; ".join(messages)

    rubric.part(
        "terminated transitions: the target is the reward alone",
        1.0,
        not wrong["terminated"] and bootstraps,
        terminal_message(wrong["terminated"]),
    )
    rubric.part(
        "terminated and truncated at once: terminal wins, no bootstrap",
        0.5,
        not wrong["both"] and bootstraps,
        terminal_message(wrong["both"]),
    )
    rubric.part(
        "truncated (time-out) transitions still bootstrap: r + γ max_a' Q(s', a'; θ⁻)",
        1.0,
        not wrong["truncated"],
        "wrong " + _of(wrong["truncated"], n, where),
    )
    rubric.part(
        "ordinary transitions: r + γ max_a' Q(s', a'; θ⁻)",
        0.5,
        not wrong["ordinary"],
        "wrong " + _of(wrong["ordinary"], n, where),
    )
    rubric.part("γ = 0 and γ = 1", 0.25, not edge, f"wrong in {edge} of the 2 minibatches with γ = 0 or γ = 1")
    rubric.part(
        "the target carries no gradient (it is a constant for the loss)",
        0.25,
        not grad and returned == n and bootstraps,
        f"y.requires_grad is True {_of(grad, n, 'minibatches')}" if grad else "the targets themselves are wrong",
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


def _minibatch(inputs, n: int) -> Call:
    """``ReplayBuffer.sample(n)`` as the driver packs it: one row per transition, the columns of obs, action,
    reward, next_obs, terminated, truncated."""
    return Call(Array((n, 2 * inputs["obs_dim"] + 4)))


def REPLAY_BUFFER_RESULT(inputs):  # noqa: N802
    return Fields(
        {
            "made": Call(Number()),
            "fill_first": Call(Number()),
            "len_first": Call(Number()),
            "sample_first": ListOf(_minibatch(inputs, inputs["first_batch"]), inputs["n_first_batches"]),
            "fill_rest": Call(Number()),
            "len_full": Call(Number()),
            "samples": ListOf(_minibatch(inputs, inputs["batch_size"]), inputs["n_batches"]),
            "too_many": _minibatch(inputs, inputs["capacity"] + 1),
            "zero": _minibatch(inputs, 0),
            "repeats": ListOf(
                Fields(
                    {
                        "made": Call(Number()),
                        "fill": Call(Number()),
                        "samples": ListOf(_minibatch(inputs, inputs["repeat_batch"]), 3),
                    }
                ),
                2,
            ),
        }
    )


def _identify(rows: dict, inputs) -> tuple[np.ndarray, int]:
    """For each sampled row, the index of the added transition it is, by its ``obs`` (−1 if none); and how many
    rows have fields that do not all belong to that transition."""
    lookup = {tuple(_f32(o)): i for i, o in enumerate(inputs["obs"])}
    ids = np.array([lookup.get(tuple(o), -1) for o in rows["obs"]], dtype=int)
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


def _stack(batches: list[np.ndarray], obs_dim: int) -> dict[str, np.ndarray]:
    """Sampled minibatches (rows as the driver packs them) as one dict of fields."""
    rows = np.concatenate(batches)
    d = obs_dim
    return {
        "obs": rows[:, :d],
        "action": rows[:, d],
        "reward": rows[:, d + 1],
        "next_obs": rows[:, d + 2 : 2 * d + 2],
        "terminated": rows[:, 2 * d + 2],
        "truncated": rows[:, 2 * d + 3],
    }


def check_replay_buffer(inputs, result):
    result["made"].get("ReplayBuffer(capacity, obs_dim, seed)")
    rubric = Rubric()
    C, n_add, n_first = inputs["capacity"], len(inputs["obs"]), inputs["n_first"]
    newest = set(range(n_add - C, n_add))

    # before the buffer is full
    message = ""
    try:
        result["fill_first"].get("ReplayBuffer.add")
        length = float(result["len_first"].get("len(buffer)"))
        ids, _ = _identify(
            _stack([o.get("ReplayBuffer.sample") for o in result["sample_first"]], inputs["obs_dim"]), inputs
        )
        if length != n_first:
            message = "len(buffer) does not count the additions"
        elif not set(ids.tolist()) <= set(range(n_first)):
            message = "it returned rows that were never added"
    except Wrong as err:
        message = str(err)
    rubric.part(
        "before it is full: len counts the additions and only added transitions are sampled", 0.5, not message, message
    )

    # after the wrap-around: contents, integrity, uniformity; then refused requests and reproducibility
    parts = {
        "contents": (
            "after more additions than its capacity it holds exactly the newest `capacity` transitions "
            "(ring overwrite of the oldest)",
            1.0,
        ),
        "intact": (
            "every sampled row is one transition exactly as added (obs, action, reward, next_obs, flags together)",
            1.0,
        ),
        "uniform": (f"sampling is uniform over the transitions it holds (χ² test on {N_BATCHES_RB} minibatches)", 1.0),
        "refused": (
            "asking for more transitions than it holds, or for 0, raises a ValueError (and valid requests do not)",
            0.25,
        ),
        "repeat": (
            "the same seed and the same additions give the same minibatches (and sampling is random and uniform)",
            0.25,
        ),
    }
    try:
        result["fill_rest"].get("ReplayBuffer.add")
        length = float(result["len_full"].get("len(buffer)"))
        rows = _stack(values_of(result["samples"], "ReplayBuffer.sample"), inputs["obs_dim"])
    except Wrong as err:  # nothing below can be checked
        for description, weight in parts.values():
            rubric.part(description, weight, False, str(err))
        return rubric.verdict()
    ids, mixed = _identify(rows, inputs)
    seen = set(ids.tolist())
    problems = []
    if length != C:
        problems.append("len(buffer) is not the capacity")
    if -1 in seen:
        problems.append(f"{int((ids == -1).sum())} sampled rows match no added transition")
    if seen - {-1} - newest:
        problems.append(f"{len(seen - {-1} - newest)} transitions that should have been overwritten are still sampled")
    if newest - seen:
        problems.append(f"{len(newest - seen)} of the newest transitions never appear in the grader's draws")
    n_distinct = len(seen - {-1})
    rubric.details["draws"] = f"{len(ids)} draws, {n_distinct} distinct"  # text: counts are not expected values
    rubric.part(*parts["contents"], not problems, "; ".join(problems))
    varied = n_distinct >= C // 2  # a sampler that returns a few rows over and over shows nothing below
    rubric.part(
        *parts["intact"],
        mixed == 0 and -1 not in seen and varied,
        f"{mixed} sampled rows mix fields of different transitions"
        if mixed
        else (
            "sampled observations do not match any added transition"
            if -1 in seen
            else "it samples only a few of the transitions it holds"
        ),
    )
    counts = np.bincount(ids[ids >= 0], minlength=n_add)
    held = np.sort(counts)[::-1][:C]  # the counts of the (at most C) transitions it samples
    expected = len(ids) / C
    stat = float(np.sum((held - expected) ** 2) / expected)
    p = float(chi2.sf(stat, C - 1))
    rubric.details.update(chi2=stat, p_value=p)
    uniform = p > ALPHA and -1 not in seen
    rubric.part(*parts["uniform"], uniform, f"the counts are far from uniform (χ² p-value {p:.1e})")

    # refused requests (valid ones were answered, above) and reproducibility
    refused = [
        text
        for name, text in (("too_many", "more transitions than it holds"), ("zero", "0 transitions"))
        if result[name].exception != "ValueError"
    ]
    rubric.part(*parts["refused"], not refused, "asking for " + " or ".join(refused) + " did not raise ValueError")
    same, message = False, "two buffers with the same seed and the same additions gave different minibatches"
    try:
        runs = []
        for repeat in result["repeats"]:
            repeat["made"].get("ReplayBuffer(capacity, obs_dim, seed)")
            repeat["fill"].get("ReplayBuffer.add")
            runs.append([o.get("ReplayBuffer.sample") for o in repeat["samples"]])
        same = all(np.array_equal(x, y) for x, y in zip(*runs, strict=True))
    except Wrong as err:
        message = str(err)
    rubric.part(*parts["repeat"], same and uniform, message if not same else "its sampling is not uniform")
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


def EPSILON_RESULT(inputs):  # noqa: N802
    n = sum(len(s["steps"]) for s in inputs["schedules"])
    return Fields({"values": ListOf(Call(Number()), n), "negative": Call(Number())})


def check_epsilon(inputs, result):
    _same_failure_everywhere(result["values"], "epsilon")
    rubric = Rubric()
    fails = {"ends": 0, "linear": 0, "after": 0, "monotone": 0}
    outcomes = iter(result["values"])
    answered = True  # every valid step returned a number
    for k, s in enumerate(inputs["schedules"]):
        entries = [next(outcomes) for _ in s["steps"]]
        steps = np.array(s["steps"])
        expected = s["start"] + np.minimum(steps / s["decay_steps"], 1.0) * (s["end"] - s["start"])
        rubric.details[f"schedule {k}"] = {"expected": expected.tolist()}
        if not all(o.ok for o in entries):
            answered = False
            fails = {key: v + 1 for key, v in fails.items()}
            continue
        got = np.array([float(o.value) for o in entries])
        ok = np.isclose(got, expected, rtol=1e-9, atol=1e-9)
        fails["ends"] += not (ok[0] and ok[steps == s["decay_steps"]].all())
        fails["linear"] += not ok[(steps > 0) & (steps < s["decay_steps"])].all()
        fails["after"] += not ok[steps > s["decay_steps"]].all()
        fails["monotone"] += bool(np.any(np.diff(got) > 1e-12))
    n = len(inputs["schedules"])
    ends = not fails["ends"]  # a constant ε is flat after the decay and never increases: no credit for that alone
    rubric.part("ε(0) = start and ε(decay_steps) = end", 0.25, ends, f"wrong on {fails['ends']} of {n} schedules")
    rubric.part(
        "in between, ε falls on the straight line from start to end",
        0.3,
        not fails["linear"],
        f"wrong on {fails['linear']} of {n} schedules",
    )
    rubric.part(
        "after decay_steps, ε stays at end (and starts at start)",
        0.15,
        not fails["after"] and ends,
        f"wrong on {fails['after']} of {n} schedules" if fails["after"] else "its endpoints are wrong",
    )
    rubric.part(
        "ε never increases (and falls from start to end)",
        0.1,
        not fails["monotone"] and ends,
        f"it increases in {fails['monotone']} of {n} schedules" if fails["monotone"] else "its endpoints are wrong",
    )
    rubric.part(
        "a negative step raises a ValueError (and valid steps do not)",
        0.2,
        result["negative"].exception == "ValueError" and answered and ends,
        "epsilon(-1, ...) did not"
        if result["negative"].exception != "ValueError"
        else ("valid steps fail too" if not answered else "its endpoints are wrong"),
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- D.1 update_target

N_REPEAT = 10


def _random_state(rng) -> dict:
    net = DRIVERS.q_network(*DRIVERS.SMALL_NETWORK)
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


def UPDATE_TARGET_RESULT(inputs):  # noqa: N802
    shapes = {k: tuple(np.shape(v)) for k, v in inputs["online"].items()}
    weights = Weights({f"{net}.{k}": shape for net in ("target", "online") for k, shape in shapes.items()})
    return ListOf(Call(weights), len(inputs["cases"]))


def check_update_target(inputs, outcomes):
    _same_failure_everywhere(outcomes, "update_target")
    rubric = Rubric()
    online = {k: _f32(v) for k, v in inputs["online"].items()}
    target0 = {k: _f32(v) for k, v in inputs["target"].items()}
    status = {"hard": None, "soft": None, "repeat": None, "online": None}
    for (tau, times), outcome in zip(inputs["cases"], outcomes, strict=True):
        kind = "hard" if tau == 1.0 else ("repeat" if times > 1 else "soft")
        if not outcome.ok:
            status[kind] = status[kind] or f"update_target {outcome.failure}"
            status["online"] = status["online"] or "could not be checked (update_target failed)"
            continue
        got = outcome.value
        bad = [
            key
            for key in online
            if not np.allclose(
                got[f"target.{key}"],
                online[key] + (1 - tau) ** times * (target0[key] - online[key]),
                rtol=1e-4,
                atol=1e-5,
            )
        ]
        if bad:
            status[kind] = status[kind] or f"{', '.join(bad)} wrong"
        changed = [key for key in online if not np.array_equal(got[f"online.{key}"], online[key])]
        if changed:
            status["online"] = status["online"] or f"the online network's {changed[0]} changed"
    moves = status["hard"] is None or status["soft"] is None  # a no-op leaves θ alone too: no credit for that alone
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
    rubric.part(
        "the online network θ is left unchanged (while θ⁻ moves)",
        0.25,
        status["online"] is None and moves,
        status["online"] or "the target network does not move either",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- E train_dqn

# The grader's settings: 1.5x the fast preset's budget of 8,192 steps (where single runs of DQNConfig.nature() still
# ranged from 27 to 188). Measured with the solution notebook's train_dqn (its HYPERPARAMETERS are those of
# DQNConfig.nature()), 20 training seeds at 12,288 steps on the usual CartPole, each evaluated on 20 fresh start states:
# mean return 84 to 500 (median 117), mean max_a Q(s_0, a) 45.5 to 53.7. On 54 grader variants (40 of them full
# gradings of this question, probe included, all passing): mean return 56 to 500 (median 120; the next lowest 86),
# start value 45 to 54, Q(s, a) before a fall 0.10 to 0.63 times the start value (mean 0.39; a network
# whose values are a constant plus a controller's preference: 1.0), probe error at most 3e-7 (tolerance 0.25; a
# network not trained on the probe is off by about 1 or more). A randomly initialised q_network(), 150 inits: greedy
# return median 9.4, 90th percentile 17, 99th 76 (max 152), values near 0.
# The variant (coordinates permuted and sign-flipped, actions swapped) changes nothing for learning: PyTorch's
# initialisation is symmetric under it, so the solution's results are the same in distribution. It does not stop a
# fixed controller on its own (CartPole is easy: the four-weight controller of the corpus, θ + θ̇, still balances
# on 224 of the 768 variants, and 30% of random linear controllers balance): the probe task does, since its
# Q-values must be learned. The solution learns them to float32 precision in 3,072 steps (also with soft updates,
# learning_starts = 2,000, γ = 0.99 or one gradient step per 4 environment steps).
TRAIN_STEPS, PROBE_STEPS, N_EVAL_EPISODES, N_TERMINAL = 12_288, 3_072, 20, 200
RETURN_THRESHOLD, VALUE_THRESHOLD, TERMINAL_FRACTION, PROBE_TOLERANCE = 50.0, 5.0, 0.85, 0.25
ENV_ID = "CartPole-v1"
USAGE = DRIVERS.USAGE  # the counts the driver reports, in this order


def make_train_dqn_inputs(rng):
    return {
        "probe": {
            "total_steps": PROBE_STEPS,
            "seed": int(rng.integers(2**31)),
            "obs": rng.normal(0, 1, size=(3, 4)).round(4).tolist(),
            "rewards": rng.uniform(-2, 2, size=(2, 2)).round(4).tolist(),
        },
        "cartpole": {
            "total_steps": TRAIN_STEPS,
            "seed": int(rng.integers(2**31)),
            "variant": {
                "perm": rng.permutation(4).tolist(),
                "signs": rng.choice([-1.0, 1.0], size=4).tolist(),
                "swap": bool(rng.random() < 0.5),
            },
        },
        "eval_seed": int(rng.integers(1_000_000, 100_000_000)),  # check-only: never in the sandbox
    }


def TRAIN_DQN_RESULT(inputs):  # noqa: N802
    shapes = {key: tuple(t.shape) for key, t in DRIVERS.q_network().state_dict().items()}
    run = Fields(
        {
            "weights": Call(Weights(shapes)),
            "usage": Call(Array((len(USAGE),))),
        }
    )
    return Fields({"probe": run, "cartpole": run})


class InCartPole(nn.Module):
    """A Q-network trained on the variant, seen from the usual CartPole: observations mapped into the variant, the
    two actions' values swapped back if the variant swaps them."""

    def __init__(self, net: nn.Module, variant: dict):
        super().__init__()
        self.net, self.variant = net, variant

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        q = self.net(DRIVERS.variant_observation(obs, self.variant))
        return q.flip(-1) if self.variant["swap"] else q


def start_states(seed: int, n: int) -> torch.Tensor:
    """The initial observations of the evaluation's episodes (episode k is reset with seed + k, as in evaluate)."""
    env = gym.make(ENV_ID)
    states = np.stack([env.reset(seed=seed + k)[0] for k in range(n)])
    env.close()
    return torch.as_tensor(states, dtype=torch.float32)


def terminal_transitions(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` (state, action) pairs after which the pole falls: the last step of episodes played at random."""
    env, rng = gym.make(ENV_ID), np.random.default_rng(seed)
    states, actions = [], []
    for k in range(n):
        obs, _ = env.reset(seed=seed + k)
        while True:
            action = int(rng.integers(2))
            next_obs, _, terminated, truncated, _ = env.step(action)
            if terminated:
                states.append(obs)
                actions.append(action)
            if terminated or truncated:
                break
            obs = next_obs
    env.close()
    return torch.as_tensor(np.stack(states), dtype=torch.float32), torch.as_tensor(actions)


def usage_problems(usage: dict, total_steps: int) -> list[str]:
    """What a training run did not do with the notebook's pieces."""
    problems = []
    if usage["env_steps"] < total_steps:
        problems.append("it did not take total_steps steps in the environment")
    if usage["buffers"] < 1 or usage["adds"] < 0.9 * total_steps:
        problems.append("it did not store its transitions in your ReplayBuffer")
    if usage["samples"] < 1 or usage["targets"] < 1 or not 0.0 < usage["gamma"] <= 1.0:
        problems.append("it did not learn from minibatches sampled from your ReplayBuffer with your td_targets")
    if usage["epsilons"] < 1:
        problems.append("it did not explore with your epsilon schedule")
    if usage["updates"] < 1:
        problems.append("it never called your update_target")
    elif not usage["returns_trained"]:
        problems.append("the returned weights are not those of the networks it trained (passed to update_target)")
    return problems


def _network(weights: dict) -> nn.Module:
    """The grader's own q_network with the returned weights (keys and shapes checked by the schema)."""
    net = DRIVERS.q_network()
    net.load_state_dict({k: torch.as_tensor(np.array(v), dtype=torch.float32) for k, v in weights.items()})
    return net.eval()


def probe_q_values(probe: dict, gamma: float) -> np.ndarray:
    """Q* of the probe task (states 0 and 1 × actions 0 and 1): state 1 ends the episode whatever the action."""
    r = np.asarray(probe["rewards"], dtype=np.float64)
    return np.array([[r[0, 0], r[0, 1] + gamma * r[1].max()], [r[1, 0], r[1, 1]]])


def check_train_dqn(inputs, result):
    rubric = Rubric()
    probe, main = inputs["probe"], inputs["cartpole"]
    runs = {name: result[name]["weights"].get("train_dqn") for name in ("probe", "cartpole")}
    usage = {
        name: dict(zip(USAGE, result[name]["usage"].get("the grader's record of the training").tolist(), strict=True))
        for name in ("probe", "cartpole")
    }
    rubric.details["usage"] = repr(usage)  # text: counts are not expected values (the leak test looks for numbers)

    # the probe: a task whose exact Q-values the grader knows
    problems = usage_problems(usage["probe"], probe["total_steps"])
    with torch.no_grad():
        q = _network(runs["probe"])(torch.tensor(probe["obs"][:2], dtype=torch.float32)).double().numpy()
    learns = False
    if not problems:  # γ is the one train_dqn gave td_targets
        q_star = probe_q_values(probe, usage["probe"]["gamma"])
        error = float(np.max(np.abs(q - q_star)))
        if np.isfinite(error):
            rubric.details.update(probe_q=q.tolist(), probe_q_star=q_star.tolist(), probe_error=error)
        learns = error <= PROBE_TOLERANCE
    rubric.part(
        f"on a small task of the grader's ({probe['total_steps']:,} steps, episodes of one or two steps), train_dqn "
        "learns with your ReplayBuffer, td_targets, epsilon and update_target, and its Q-values are the task's exact "
        "Q-values",
        1.0,
        learns,
        "; ".join(problems) if problems else "its Q-values are not those of the task",
    )

    # CartPole (the grader's variant), evaluated in the grader's own network from check-only start states
    problems = usage_problems(usage["cartpole"], main["total_steps"])
    seen = InCartPole(_network(runs["cartpole"]), main["variant"])
    eval_seed = inputs["eval_seed"]
    mean_return, std_return = evaluate(seen, ENV_ID, n_episodes=N_EVAL_EPISODES, seed=eval_seed)
    states, actions = terminal_transitions(eval_seed + N_EVAL_EPISODES, N_TERMINAL)
    with torch.no_grad():
        start_value = float(seen(start_states(eval_seed, N_EVAL_EPISODES)).max(dim=1).values.mean())
        terminal_value = float(seen(states).gather(1, actions[:, None]).mean())
    measured = dict(
        mean_return=mean_return, std_return=std_return, start_value=start_value, terminal_value=terminal_value
    )
    rubric.details.update({k: v for k, v in measured.items() if np.isfinite(v)})
    untrained = "; ".join(problems)  # why the agent is not graded as a DQN agent trained with the notebook's pieces
    if not untrained and not learns:
        untrained = "it does not learn the small task's Q-values (above), so its agent is not graded as a DQN agent"
    rubric.part(
        f"trained with your pieces on the grader's CartPole for {main['total_steps']:,} steps, the greedy policy of "
        f"the network (loaded into the grader's own Q-network) survives at least {RETURN_THRESHOLD:.0f} steps on "
        f"average over {N_EVAL_EPISODES} new episodes",
        1.5,
        not untrained and mean_return >= RETURN_THRESHOLD,
        untrained or f"it survived {mean_return:.0f} steps on average",
    )
    values_ok = start_value >= VALUE_THRESHOLD and terminal_value <= TERMINAL_FRACTION * start_value
    rubric.part(
        f"its values are those of a trained Q-function: max_a Q(s_0, a) averages at least {VALUE_THRESHOLD:.0f} over "
        "the start states, and Q(s, a) is well below that where action a lets the pole fall (the target there is "
        "the reward alone)",
        0.5,
        not untrained and values_ok,
        untrained
        or (
            f"max_a Q(s_0, a) averages {start_value:.1f}"
            if start_value < VALUE_THRESHOLD
            else "the values just before the pole falls are about as high as at the start"
        ),
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- the assignment

ASSIGNMENT = Assignment(
    notebook="a4_dqn.ipynb",
    cell_timeout=120,
    cell_budget=60,
    forbidden=("course_utils.algorithms.dqn", "course_utils.replay"),
    questions=[
        Question(
            "td_targets",
            DRIVERS.td_targets,
            make_td_targets_inputs,
            TD_TARGETS_RESULT,
            check_td_targets,
            timeout=20,
            title="A.1 td_targets",
        ),
        Question(
            "replay_buffer",
            DRIVERS.replay_buffer,
            make_replay_buffer_inputs,
            REPLAY_BUFFER_RESULT,
            check_replay_buffer,
            timeout=30,
            title="B ReplayBuffer",
        ),
        Question(
            "epsilon",
            DRIVERS.epsilon,
            make_epsilon_inputs,
            EPSILON_RESULT,
            check_epsilon,
            timeout=20,
            title="C epsilon",
        ),
        Question(
            "update_target",
            DRIVERS.update_target,
            make_update_target_inputs,
            UPDATE_TARGET_RESULT,
            check_update_target,
            timeout=20,
            title="D.1 update_target",
        ),
        Question(
            "train_dqn",
            DRIVERS.train_dqn,
            make_train_dqn_inputs,
            TRAIN_DQN_RESULT,
            check_train_dqn,
            timeout=120,
            check_only=("eval_seed",),
            title="E train_dqn",
        ),
    ],
)
