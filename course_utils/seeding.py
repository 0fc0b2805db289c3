"""Seeding: one call for Python, NumPy and torch, and seeded gymnasium environments.

Explained in notebook 00 (section "Seeds and reproducibility").
"""

from __future__ import annotations

import random

import gymnasium as gym
import numpy as np
import torch


def seed_everything(seed: int) -> np.random.Generator:
    """Seed ``random``, NumPy's global RNG and torch (CPU and, if present, CUDA).

    Returns a fresh ``np.random.Generator`` seeded with ``seed`` for code that
    prefers an explicit generator over the global one.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return np.random.default_rng(seed)


def make_env(env_id: str, seed: int, **kwargs) -> gym.Env:
    """Create a gymnasium environment whose randomness is fixed by ``seed``.

    The environment's own RNG is seeded by a first ``reset(seed=seed)``; the
    action and observation spaces (used by ``action_space.sample()``) are
    seeded too. Later ``env.reset()`` calls without a seed continue the seeded
    stream, so a sequence of episodes is reproducible as a whole.
    ``kwargs`` go to ``gym.make`` (e.g. ``render_mode="rgb_array"``).
    """
    env = gym.make(env_id, **kwargs)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    env.observation_space.seed(seed)
    return env
