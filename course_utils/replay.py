"""Experience replay: a fixed-size memory of transitions, sampled uniformly.

Explained in notebook 08 (section "Experience replay"), used by
:mod:`course_utils.algorithms.dqn`. The buffer is a ring: once ``capacity`` transitions
are stored, each new one overwrites the oldest. Memory is preallocated as
NumPy arrays, so adding a transition copies a few numbers and allocates nothing.
:meth:`ReplayBuffer.sample` draws a uniform minibatch; :meth:`ReplayBuffer.latest`
returns the newest transitions in time order (DQN's no-replay ablation).

One transition is ``(s_t, a_t, r_{t+1}, s_{t+1}, terminated)``:

============  ======================  ====================================================
name          stored shape            meaning
============  ======================  ====================================================
obs           (capacity, *obs_shape)  s_t, the state the action was taken in
action        (capacity,)             a_t, an integer (discrete actions)
reward        (capacity,)             r_{t+1}, the reward that followed a_t
next_obs      (capacity, *obs_shape)  s_{t+1}, the state after the step (for a truncated
                                      episode: the real last state, not the next reset)
terminated    (capacity,)             1.0 if s_{t+1} is terminal (the MDP ended), else 0.0
============  ======================  ====================================================

Only ``terminated`` is stored, never ``terminated or truncated``: a TD target
``r + γ (1 − terminated) max_a' Q(s', a')`` must still bootstrap from s_{t+1}
when a time limit cut the episode short, because the task would have gone on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class ReplayBuffer:
    """A ring buffer of transitions with uniform sampling (notebook 08).

    ``ReplayBuffer(capacity, obs_shape, obs_dtype=np.float32, seed=0)`` holds
    up to ``capacity`` transitions. ``seed`` (a non-negative int, or a
    ``numpy.random.SeedSequence``, e.g. one of ``SeedSequence(seed).spawn(2)``
    when the caller needs other streams from the same seed) fixes which
    transitions :meth:`sample` draws: the same seed and the same sequence of
    :meth:`add` calls give the same minibatches. ``device`` is where sampled tensors go.
    Use ``obs_dtype=np.uint8`` for image frames (4× less memory than float32).
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: Sequence[int] | int,
        obs_dtype: np.dtype | type = np.float32,
        *,
        seed: int | np.random.SeedSequence,
        device: torch.device | str = "cpu",
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        obs_shape = (obs_shape,) if isinstance(obs_shape, (int, np.integer)) else tuple(obs_shape)
        if not all(isinstance(n, (int, np.integer)) and n > 0 for n in obs_shape):
            raise ValueError(
                f"obs_shape must be a tuple of positive integers, e.g. (4,) for CartPole; got {obs_shape!r}"
            )
        if not isinstance(seed, np.random.SeedSequence) and (
            isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0
        ):
            raise ValueError(f"seed must be a non-negative integer or a numpy SeedSequence, got {seed!r}")
        self.capacity = int(capacity)
        self.obs_shape = tuple(int(n) for n in obs_shape)
        self.device = torch.device(device)
        self.obs = np.zeros((self.capacity, *self.obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros_like(self.obs)
        self.action = np.zeros(self.capacity, dtype=np.int64)
        self.reward = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(
            self.capacity, dtype=np.float32
        )  # 1.0 = terminal s_{t+1}; float for (1 − terminated)
        self.pos = 0  # where the next transition goes; once full, the oldest one
        self.size = 0
        self.rng = np.random.default_rng(seed if isinstance(seed, np.random.SeedSequence) else int(seed))

    def __len__(self) -> int:
        """How many transitions are stored (at most ``capacity``)."""
        return self.size

    def __repr__(self) -> str:
        return f"ReplayBuffer({self.size}/{self.capacity} transitions, obs_shape={self.obs_shape}, obs_dtype={self.obs.dtype})"

    def add(self, obs, action, reward, next_obs, terminated) -> None:
        """Store one transition, or a batch of ``n`` from a vector environment.

        Single: ``obs`` and ``next_obs`` have shape ``obs_shape``; ``action``,
        ``reward`` and ``terminated`` are scalars. Batched: ``obs`` and
        ``next_obs`` have shape ``(n, *obs_shape)`` and the others ``(n,)``;
        they are stored in order, as ``n`` single adds would.

        Pass gymnasium's ``terminated`` flag, not ``terminated or truncated``.
        """
        obs = np.asarray(obs)
        next_obs = np.asarray(next_obs)
        if obs.shape == self.obs_shape:
            n, batched = 1, False
        elif obs.ndim == len(self.obs_shape) + 1 and obs.shape[1:] == self.obs_shape:
            n, batched = obs.shape[0], True
        else:
            raise ValueError(
                f"obs has shape {obs.shape}; expected {self.obs_shape} for one transition "
                f"or (n, *{self.obs_shape}) for a batch from a vector environment"
            )
        if next_obs.shape != obs.shape:
            raise ValueError(f"next_obs has shape {next_obs.shape} but obs has shape {obs.shape}; they must match")
        action, reward, terminated = np.asarray(action), np.asarray(reward), np.asarray(terminated)
        expected = (n,) if batched else ()
        for name, value in (("action", action), ("reward", reward), ("terminated", terminated)):
            if value.shape != expected:
                what = f"shape ({n},), one per transition" if batched else "a scalar"
                raise ValueError(f"{name} has shape {value.shape}; for this obs it must be {what}")
        if action.dtype.kind not in "iub":
            raise ValueError(f"actions must be integers (discrete actions), got dtype {action.dtype}")
        if n > self.capacity:
            raise ValueError(f"cannot add {n} transitions at once to a buffer of capacity {self.capacity}")

        index = (self.pos + np.arange(n)) % self.capacity if batched else self.pos
        self.obs[index] = obs
        self.action[index] = action
        self.reward[index] = reward
        self.next_obs[index] = next_obs
        self.terminated[index] = terminated  # NOT terminated or truncated: truncated targets still bootstrap
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def latest(self, n: int) -> dict[str, torch.Tensor]:
        """The ``n`` most recent transitions in the order they were added, as in :meth:`sample`.

        DQN's no-replay ablation trains on these instead of a random minibatch.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= self.size:
            raise ValueError(f"can return the latest 1 to {self.size} stored transitions, asked for {n!r}")
        return self._gather((self.pos - n + np.arange(n)) % self.capacity)

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        """Draw ``batch_size`` stored transitions uniformly at random (with replacement).

        Returns a dict of tensors on ``device``: ``obs`` and ``next_obs``
        ``(B, *obs_shape)`` in the stored dtype, ``action`` ``(B,)`` int64,
        ``reward`` ``(B,)`` float32 and ``terminated`` ``(B,)`` float32 (1.0
        where s_{t+1} is terminal).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if batch_size > self.size:
            raise ValueError(
                f"cannot sample {batch_size} transitions: the buffer holds only {self.size}. "
                "Collect more experience first (DQN waits `learning_starts` steps before training)."
            )
        return self._gather(self.rng.integers(0, self.size, size=batch_size))

    def _gather(self, index: np.ndarray) -> dict[str, torch.Tensor]:
        batch = {
            "obs": self.obs[index],
            "action": self.action[index],
            "reward": self.reward[index],
            "next_obs": self.next_obs[index],
            "terminated": self.terminated[index],
        }
        return {key: torch.from_numpy(value).to(self.device) for key, value in batch.items()}
