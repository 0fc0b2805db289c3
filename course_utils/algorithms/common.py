"""What every training loop of the course returns and shares (notebooks 03-05, and DQN's).

``train(config, *, on_update=None, progress_bar=True) -> TrainResult`` is the
signature of every reference algorithm. ``on_update(steps, policy)`` is called
after every parameter update with the number of environment steps so far and
the network that maps observations to action scores; returning True stops
training there (the benchmark uses it to stop once the evaluation return
reaches its target, notebooks to record learning curves).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
from torch import nn

from ..progress import progress

__all__ = ["OnUpdate", "TrainResult", "Timer", "check_config", "env_dims", "training_bar"]

OnUpdate = Callable[[int, nn.Module], bool]
"""``on_update(steps, policy) -> stop``: called after every update; return True to stop training."""


@dataclass
class TrainResult:
    """The outcome of one training run.

    - ``policy``: the trained network, observations (B, obs_dim) -> action scores
      (B, n_actions): logits for policy-gradient methods, Q-values for DQN. Its
      greedy action is what :func:`course_utils.evaluation.evaluate` scores.
    - ``episode_returns``: undiscounted return of every training episode, in the order they ended.
    - ``episode_end_steps``: total environment steps when each of those episodes ended
      (same length; the x axis of a learning curve in env steps).
    - ``steps``: environment steps taken in all; ``seconds``: wall-clock time of
      ``train``, including time spent in ``on_update``.
    - ``value``: the learned V_φ(s), for methods that have one (else None).
    - ``extras``: per-update logs, each a list with one entry per update, e.g.
      ``extras["update_steps"]`` (env steps at each update) and PPO's
      ``extras["approx_kl"]``.
    """

    policy: nn.Module
    episode_returns: list[float]
    episode_end_steps: list[int]
    steps: int
    seconds: float
    value: nn.Module | None = None
    extras: dict[str, list[float]] = field(default_factory=dict)

    def log(self, **values: float) -> None:
        """Append one entry per keyword to ``extras`` (one call per update)."""
        for key, value in values.items():
            self.extras.setdefault(key, []).append(float(value))


class Timer:
    """Wall-clock seconds since creation (``time.perf_counter``)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start


def training_bar(total_steps: int, desc: str, enabled: bool):
    """A progress bar over environment steps (``bar.update(n)`` after each update)."""
    return progress(total=total_steps, desc=desc, unit="step", disable=not enabled)


def env_dims(env_id: str) -> tuple[int, int]:
    """(obs_dim, n_actions) of a gymnasium environment with a flat observation and discrete actions."""
    env = gym.make(env_id)
    try:
        obs_space, action_space = env.observation_space, env.action_space
    finally:
        env.close()
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(f"{env_id} has action space {action_space}; these algorithms need discrete actions")
    if obs_space.shape is None or len(obs_space.shape) != 1:
        raise ValueError(f"{env_id} has observation space {obs_space}; these algorithms need flat (1-D) observations")
    return int(obs_space.shape[0]), int(action_space.n)


def check_config(
    config,
    positive_ints: tuple[str, ...] = (),
    positive: tuple[str, ...] = (),
    unit_interval: tuple[str, ...] = (),
    non_negative: tuple[str, ...] = (),
) -> None:
    """Raise a ValueError naming the first field of ``config`` whose value is out of range."""
    name = type(config).__name__
    for key in positive_ints:
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}.{key} must be a positive integer, got {value!r}")
    for key in positive:
        if not getattr(config, key) > 0:
            raise ValueError(f"{name}.{key} must be positive, got {getattr(config, key)!r}")
    for key in non_negative:
        if not getattr(config, key) >= 0:
            raise ValueError(f"{name}.{key} must be non-negative, got {getattr(config, key)!r}")
    for key in unit_interval:
        if not 0.0 <= getattr(config, key) <= 1.0:
            raise ValueError(f"{name}.{key} must lie in [0, 1], got {getattr(config, key)!r}")
    seed = config.seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{name}.seed must be a non-negative integer, got {seed!r}")
