"""Drivers for assignment 4: public code that calls the student's functions inside the grading sandbox.

Each ``name(inputs, h)`` runs in the student's process after the notebook's cells, receives the
grader's inputs for one question (never its check-only keys) and returns plain data whose shape the
question's schema in ``hidden_tests.py`` fixes. No expected value and no check lives here.

``train_dqn`` runs the student's training twice, replacing CartPole while it runs (every CartPole, however it is
made): on a small task whose exact Q-values the grader knows (:func:`probe_task`), then on a *variant* of
CartPole drawn for each grading run, its observation's four coordinates reordered and sign-flipped and its two
actions possibly swapped (:func:`cartpole_variant`). Learning does not care (the Q-network's first and last layers
absorb the change); weights written by hand for the usual CartPole do. While it trains, the notebook's
``ReplayBuffer``, ``td_targets``, ``epsilon`` and ``update_target`` are wrapped to count their calls (:func:`spied`).
"""

from __future__ import annotations

import contextlib
import inspect

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from torch import nn

KEYS = ("obs", "action", "reward", "next_obs", "terminated", "truncated")  # a minibatch's fields


def q_network(obs_dim: int = 4, n_actions: int = 2, hidden: int = 64) -> nn.Sequential:
    """The notebook's ``q_network()`` architecture: Linear, ReLU, Linear, ReLU, Linear."""
    return nn.Sequential(
        nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_actions)
    )


# ----------------------------------------------------------------------------- A.1 td_targets


def _targets_and_grad(f, batch: dict):
    """Call ``f`` on one of the grader's minibatches; return its targets and whether they carry a gradient."""
    next_q = torch.tensor(batch["next_q"], dtype=torch.float32, requires_grad=True)
    y = f(
        torch.tensor(batch["rewards"], dtype=torch.float32),
        next_q,
        torch.tensor(batch["terminated"], dtype=torch.float32),
        torch.tensor(batch["truncated"], dtype=torch.float32),
        batch["gamma"],
    )
    return y, bool(getattr(y, "requires_grad", False))


def td_targets(inputs, h):
    f = h.student.td_targets
    out = []
    for batch in inputs["batches"]:
        result, error = h.run(_targets_and_grad, f, batch)
        if error is not None:
            out.append({"y": error, "requires_grad": {"value": False}})
        else:
            y, grad = result
            out.append({"y": h.call(lambda value=y: value), "requires_grad": {"value": grad}})
    return out


# ----------------------------------------------------------------------------- B ReplayBuffer


def _minibatch(buffer, n: int) -> np.ndarray:
    """``buffer.sample(n)`` as one (n, 2 obs_dim + 4) array: the columns of obs, action, reward, next_obs,
    terminated, truncated. A result of another form is a TypeError (a ValueError is the student's own refusal)."""
    batch = buffer.sample(n)
    if not hasattr(batch, "keys") or any(key not in batch for key in KEYS):
        raise TypeError(f"sample() should return a dict with the keys {', '.join(KEYS)}")
    columns = []
    for key in KEYS:
        value = batch[key]
        value = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        if value.dtype.kind not in "biuf" or value.shape[:1] != (n,) or value.ndim != (2 if key.endswith("obs") else 1):
            raise TypeError(f"sample({n})['{key}'] has shape {value.shape} and dtype {value.dtype}")
        columns.append(value.reshape(n, -1).astype(np.float64))
    return np.concatenate(columns, axis=1)


def replay_buffer(inputs, h):
    Buffer = h.student.ReplayBuffer  # noqa: N806 - the notebook's class
    C, d = inputs["capacity"], inputs["obs_dim"]
    obs = np.array(inputs["obs"], dtype=np.float32)
    next_obs = np.array(inputs["next_obs"], dtype=np.float32)

    def fill(buffer, start: int, stop: int) -> int:
        for i in range(start, stop):
            buffer.add(
                obs[i].copy(),
                int(inputs["action"][i]),
                float(inputs["reward"][i]),
                next_obs[i].copy(),
                bool(inputs["terminated"][i]),
                bool(inputs["truncated"][i]),
            )
        return stop - start

    def calls(buffer, error, fn, *args, n: int | None = None):
        """One call record (or ``n``), each the construction's error if the buffer could not be made."""
        if n is None:
            return error if error is not None else h.call(fn, buffer, *args)
        return [error if error is not None else h.call(fn, buffer, *args) for _ in range(n)]

    buffer, error = h.run(Buffer, C, d, seed=inputs["seed"])
    out = {
        "made": error if error is not None else {"value": 1},
        "fill_first": calls(buffer, error, fill, 0, inputs["n_first"]),
        "len_first": calls(buffer, error, len),
        "sample_first": calls(buffer, error, _minibatch, inputs["first_batch"], n=inputs["n_first_batches"]),
        "fill_rest": calls(buffer, error, fill, inputs["n_first"], len(obs)),
        "len_full": calls(buffer, error, len),
        "samples": calls(buffer, error, _minibatch, inputs["batch_size"], n=inputs["n_batches"]),
        "too_many": calls(buffer, error, _minibatch, C + 1),
        "zero": calls(buffer, error, _minibatch, 0),
    }
    repeats = []
    for _ in range(2):
        other, error = h.run(Buffer, C, d, seed=inputs["repeat_seed"])
        repeats.append(
            {
                "made": error if error is not None else {"value": 1},
                "fill": calls(other, error, fill, 0, C // 2),
                "samples": calls(other, error, _minibatch, inputs["repeat_batch"], n=3),
            }
        )
    out["repeats"] = repeats
    return out


# ----------------------------------------------------------------------------- C epsilon


def epsilon(inputs, h):
    f = h.student.epsilon
    values = [h.call(f, t, s["start"], s["end"], s["decay_steps"]) for s in inputs["schedules"] for t in s["steps"]]
    s = inputs["schedules"][0]
    return {"values": values, "negative": h.call(f, -1, s["start"], s["end"], s["decay_steps"])}


# ----------------------------------------------------------------------------- D.1 update_target


def small_network(state: dict) -> nn.Sequential:
    """A small ``q_network`` (3 inputs, 6 hidden units, 2 outputs) holding the grader's parameters ``state``."""
    module = q_network(*SMALL_NETWORK)
    module.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in state.items()})
    return module


SMALL_NETWORK = (3, 2, 6)  # obs_dim, n_actions, hidden


def _update(f, online_state: dict, target_state: dict, tau: float, times: int) -> dict:
    online, target = small_network(online_state), small_network(target_state)
    for _ in range(times):
        f(target, online, tau)
    return {
        **{f"target.{k}": v for k, v in target.state_dict().items()},
        **{f"online.{k}": v for k, v in online.state_dict().items()},
    }


def update_target(inputs, h):
    f = h.student.update_target
    return [h.call_arrays(_update, f, inputs["online"], inputs["target"], tau, times) for tau, times in inputs["cases"]]


# ----------------------------------------------------------------------------- E train_dqn


def variant_observation(obs, variant: dict):
    """What the variant shows for CartPole's observation(s) ``obs`` (..., 4): coordinates reordered, signs flipped."""
    perm, signs = list(variant["perm"]), variant["signs"]
    if isinstance(obs, torch.Tensor):
        return obs[..., perm] * torch.tensor(signs, dtype=obs.dtype)
    return (np.asarray(obs, dtype=np.float32)[..., perm] * np.asarray(signs, dtype=np.float32)).astype(np.float32)


@contextlib.contextmanager
def replaced_cartpole(reset, step, observation_space):
    """While active, every CartPole (made by ``make_env``, ``gym.make`` or the class) resets and steps with
    ``reset(env, reset0, **kwargs)`` and ``step(env, step0, action)`` (``reset0``/``step0``: CartPole's own) and
    has the ``observation_space(env)``."""
    init0, reset0, step0 = CartPoleEnv.__init__, CartPoleEnv.reset, CartPoleEnv.step

    def patched_init(self, *args, **kwargs):
        init0(self, *args, **kwargs)
        self.observation_space = observation_space(self)

    def patched_reset(self, *, seed=None, options=None):
        return reset(self, reset0, seed=seed, options=options)

    def patched_step(self, action):
        return step(self, step0, action)

    CartPoleEnv.__init__, CartPoleEnv.reset, CartPoleEnv.step = patched_init, patched_reset, patched_step
    try:
        yield
    finally:
        CartPoleEnv.__init__, CartPoleEnv.reset, CartPoleEnv.step = init0, reset0, step0


def cartpole_variant(variant: dict, usage):
    """CartPole whose observation is :func:`variant_observation` of the usual one and whose action ``a`` pushes the
    cart the way action ``1 - a`` does in CartPole if ``variant["swap"]``; steps are counted in ``usage``."""
    swap = bool(variant["swap"])

    def reset(env, reset0, **kwargs):
        obs, info = reset0(env, **kwargs)
        return variant_observation(obs, variant), info

    def step(env, step0, action):
        if not env.action_space.contains(action):  # CartPole's own message, about the action given
            raise AssertionError(f"{action!r} ({type(action)}) invalid")
        obs, reward, terminated, truncated, info = step0(env, 1 - action if swap else action)
        usage.env_steps += 1
        return variant_observation(obs, variant), reward, terminated, truncated, info

    def space(env):
        high = env.observation_space.high[list(variant["perm"])]  # CartPole's bounds are symmetric
        return spaces.Box(-high, high, dtype=np.float32)

    return replaced_cartpole(reset, step, space)


def probe_task(probe: dict, usage):
    """A tiny episodic task in CartPole's clothes (4 numbers observed, 2 actions), whose exact Q-values the grader
    knows: every episode starts in state 0; there action 0 ends it and action 1 leads to state 1; in state 1 either
    action ends it. ``probe["obs"]`` (3 × 4: states 0, 1 and the end) and ``probe["rewards"]`` (2 × 2) are the
    grader's; steps are counted in ``usage``."""
    obs = np.array(probe["obs"], dtype=np.float32)
    rewards = probe["rewards"]

    def reset(env, reset0, **kwargs):
        reset0(env, **kwargs)  # seeds the environment as CartPole would
        env.probe_state = 0
        return obs[0].copy(), {}

    def step(env, step0, action):
        if not env.action_space.contains(action):
            raise AssertionError(f"{action!r} ({type(action)}) invalid")
        state, action = env.probe_state, int(action)
        usage.env_steps += 1
        if state == 2:  # stepped after the episode ended: like CartPole, nothing more happens
            return obs[2].copy(), 0.0, True, False, {}
        env.probe_state = 1 if (state == 0 and action == 1) else 2
        return obs[env.probe_state].copy(), float(rewards[state][action]), env.probe_state == 2, False, {}

    return replaced_cartpole(reset, step, lambda env: spaces.Box(-np.inf, np.inf, (4,), np.float32))


PIECES = ("ReplayBuffer", "td_targets", "epsilon", "update_target")
USAGE = ("env_steps", "buffers", "adds", "samples", "targets", "gamma", "epsilons", "updates", "returns_trained")


class Usage:
    """What ``train_dqn`` did with the notebook's pieces while the grader watched (a plain class: the sandbox
    imports this file without registering it as a module, which dataclasses need)."""

    def __init__(self):
        self.env_steps = 0
        self.buffers = 0
        self.adds = 0
        self.samples = 0
        self.targets = 0
        self.gamma = -1.0  # the discount of the last td_targets call
        self.epsilons = 0
        self.updates = 0
        self.returns_trained = False  # the returned weights are those of a network passed to update_target

    def as_list(self) -> list[float]:
        """The counts in the order of :data:`USAGE`."""
        return [float(getattr(self, name)) for name in USAGE]


@contextlib.contextmanager
def spied(namespace: dict, usage: Usage, networks: list):
    """Replace the notebook's ReplayBuffer, td_targets, epsilon and update_target by wrappers that count their use.

    The last two modules passed to ``update_target`` (target and online) are kept in ``networks``.
    """
    saved = {name: namespace[name] for name in PIECES if name in namespace}
    if set(saved) != set(PIECES):  # not the notebook's namespace: nothing to watch (every count stays 0)
        yield
        return
    replaced = dict(saved)
    if isinstance(saved["ReplayBuffer"], type):

        class CountedBuffer(saved["ReplayBuffer"]):
            def __init__(self, *args, **kwargs):
                usage.buffers += 1
                super().__init__(*args, **kwargs)

            def add(self, *args, **kwargs):
                usage.adds += 1
                return super().add(*args, **kwargs)

            def sample(self, *args, **kwargs):
                usage.samples += 1
                return super().sample(*args, **kwargs)

        CountedBuffer.__name__ = CountedBuffer.__qualname__ = "ReplayBuffer"
        replaced["ReplayBuffer"] = CountedBuffer

    def td_targets(*args, **kwargs):
        usage.targets += 1
        try:
            usage.gamma = float(_argument(saved["td_targets"], 4, args, kwargs))  # the fifth parameter: γ
        except Exception:  # noqa: BLE001 - an odd call: the count says what happened
            usage.gamma = -1.0
        return saved["td_targets"](*args, **kwargs)

    def epsilon(*args, **kwargs):
        usage.epsilons += 1
        return saved["epsilon"](*args, **kwargs)

    def update_target(*args, **kwargs):
        usage.updates += 1
        try:
            networks[:] = [_argument(saved["update_target"], k, args, kwargs) for k in (0, 1)]  # target, online
        except Exception:  # noqa: BLE001
            networks[:] = []
        return saved["update_target"](*args, **kwargs)

    replaced.update(td_targets=td_targets, epsilon=epsilon, update_target=update_target)
    namespace.update(replaced)
    try:
        yield
    finally:
        namespace.update(saved)


def _argument(fn, position: int, args: tuple, kwargs: dict):
    """The value of ``fn``'s parameter number ``position`` in the call ``fn(*args, **kwargs)``."""
    if len(args) > position:
        return args[position]
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return list(bound.arguments.values())[position]


def _same_weights(state_dict, module) -> bool:
    try:
        reference = module.state_dict()
        return set(reference) == set(state_dict) and all(
            torch.equal(torch.as_tensor(state_dict[k]).detach().cpu(), reference[k].detach().cpu()) for k in reference
        )
    except Exception:  # noqa: BLE001 - anything odd is "not the same"
        return False


def _watched_training(h, total_steps: int, seed: int, task) -> dict:
    """``train_dqn(total_steps, seed)`` on ``task(usage)`` (a CartPole replacement) with the pieces watched."""
    train = h.student.train_dqn
    usage, networks = Usage(), []

    def run():
        state_dict = train(total_steps, seed)
        if hasattr(state_dict, "state_dict"):  # a module instead of its state_dict: take its weights
            state_dict = state_dict.state_dict()
        usage.returns_trained = any(_same_weights(state_dict, net) for net in networks)
        return state_dict

    namespace = getattr(train, "__globals__", {})  # the notebook's variables, where train_dqn finds the pieces
    with task(usage), spied(namespace, usage, networks):
        record = h.call_arrays(run)
    return {"weights": record, "usage": {"value": usage.as_list()}}


def train_dqn(inputs, h):
    for name in ("train_dqn", *PIECES):
        getattr(h.student, name)  # a clear message if the notebook lacks one
    probe, main = inputs["probe"], inputs["cartpole"]
    return {
        "probe": _watched_training(h, probe["total_steps"], probe["seed"], lambda usage: probe_task(probe, usage)),
        "cartpole": _watched_training(
            h, main["total_steps"], main["seed"], lambda usage: cartpole_variant(main["variant"], usage)
        ),
    }
