"""Trajectories as data, the discounted return, and Monte Carlo error bars.

Derived in notebook 00 ("A trajectory as data", "Estimating J by Monte Carlo");
the notebook writes each piece out and checks it agrees with these.

Symbols (lecture notation)::

    τ = s_0, a_0, r_1, s_1, a_1, r_2, ..., a_{T-1}, r_T, s_T
    R_γ = r_1 + γ r_2 + ... + γ^{T-1} r_T

Arrays (T = number of steps)::

    obs       (T + 1, *obs_shape)   s_0 ... s_T
    actions   (T, *action_shape)    a_0 ... a_{T-1}
    rewards   (T,)                  r_1 ... r_T   (rewards[t] follows actions[t])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class Trajectory:
    """One episode τ. ``terminated``: s_T is terminal (the MDP ended);
    ``truncated``: a time limit cut the episode short and s_T is not terminal."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool
    truncated: bool

    def __len__(self) -> int:
        return len(self.rewards)

    def discounted_return(self, gamma: float) -> float:
        """R_γ of this trajectory (see :func:`discounted_return`)."""
        return discounted_return(self.rewards, gamma)


def rollout(
    env: gym.Env,
    policy: Callable[[np.ndarray], object],
    *,
    seed: int | None = None,
    max_steps: int | None = None,
) -> Trajectory:
    """Run one episode of ``policy`` (observation -> action) in ``env``.

    ``seed`` is passed to ``env.reset``; ``None`` continues the environment's
    seeded stream (see :func:`course_utils.make_env`). The episode ends when
    the environment terminates or truncates it, or after ``max_steps`` steps
    (then ``truncated`` is True, as a time limit would set it).
    """
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards = [obs], [], []
    terminated = truncated = False
    while not (terminated or truncated):
        action = policy(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(float(reward))
        if max_steps is not None and len(rewards) >= max_steps and not terminated:
            truncated = True
    return Trajectory(
        obs=np.asarray(observations),
        actions=np.asarray(actions),
        rewards=np.asarray(rewards, dtype=float),
        terminated=bool(terminated),
        truncated=bool(truncated),
    )


def discounted_return(rewards: Sequence[float] | np.ndarray, gamma: float) -> float:
    """R_γ = Σ_{t=1}^{T} γ^{t-1} r_t for ``rewards = [r_1, ..., r_T]``; γ = 1 gives the total reward."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"the discount γ must lie in [0, 1], got {gamma}")
    r = np.asarray(rewards, dtype=float)
    if r.ndim != 1:
        raise ValueError(f"rewards must be 1-D (one per step), got shape {r.shape}")
    return float(np.sum(gamma ** np.arange(r.size) * r))


def mean_and_stderr(samples: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Monte Carlo estimate of an expectation and its standard error s / √N.

    The standard error uses the sample standard deviation (ddof=1), so it
    needs at least two samples.
    """
    x = np.asarray(samples, dtype=float).ravel()
    if x.size < 2:
        raise ValueError(f"a standard error needs at least 2 samples, got {x.size}")
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))
