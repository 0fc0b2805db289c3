"""The course's evaluation protocol: a greedy policy on fixed evaluation seeds.

Every trained agent in the course (REINFORCE, A2C, PPO, DQN) and the benchmark
against stable-baselines3 are scored the same way, so their numbers compare:

- the **greedy** action, ``argmax_a net(obs)[a]``: the most probable action for
  a policy that outputs logits, the highest-valued one for a Q-network;
- ``n_episodes`` episodes whose resets use the seeds ``seed, seed + 1, ...``:
  fixed initial states, disjoint from the seeds used in training (those start
  at 0), so two evaluations of the same network give the same number;
- the **undiscounted** return of each episode (CartPole-v1: steps survived, at
  most 500); the result is its mean and standard deviation over the episodes.

The episodes run side by side with one batched forward pass per step, under
``torch.no_grad()``. Introduced in notebook 03 and used from then on.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from torch import nn

from .vec import collect_episodes

__all__ = ["evaluate"]


def evaluate(
    net: nn.Module, env_id: str = "CartPole-v1", n_episodes: int = 10, seed: int = 10_000
) -> tuple[float, float]:
    """Mean and standard deviation (over episodes, ddof=0) of the greedy policy's undiscounted return.

    ``net`` maps observations (B, obs_dim) to one score per action (B,
    n_actions): policy logits or Q-values. It is put in eval mode for the
    evaluation (which matters for dropout) and restored afterwards. Episode k
    is reset with seed ``seed + k``.
    """
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, int) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive integer, got {n_episodes!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    envs = [gym.make(env_id) for _ in range(n_episodes)]
    was_training = net.training
    net.eval()
    try:
        episodes = collect_episodes(envs, net, seeds=[int(seed) + k for k in range(n_episodes)], greedy=True)
    finally:
        net.train(was_training)
        for env in envs:
            env.close()
    returns = episodes.episode_returns.double().cpu().numpy()
    return float(returns.mean()), float(returns.std())
