"""Experience replay: a fixed-size memory of transitions, sampled uniformly or by priority.

Explained in notebook 08 (section "Experience replay"), used by
:mod:`course_utils.algorithms.dqn`. The buffer is a ring: once ``capacity`` transitions
are stored, each new one overwrites the oldest. Memory is preallocated as
NumPy arrays, so adding a transition copies a few numbers and allocates nothing.
:meth:`ReplayBuffer.sample` draws a uniform minibatch; :meth:`ReplayBuffer.latest`
returns the newest transitions in time order (DQN's no-replay ablation).
:class:`PrioritizedReplayBuffer` draws transitions in proportion to their last TD error
(Schaul et al. 2016), one of the five pieces that stop DQN's late collapse (notebook 08, section 8b).

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
        self._check_batch_size(batch_size)
        return self._gather(self.rng.integers(0, self.size, size=batch_size))

    def _check_batch_size(self, batch_size: int) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if batch_size > self.size:
            raise ValueError(
                f"cannot sample {batch_size} transitions: the buffer holds only {self.size}. "
                "Collect more experience first (DQN waits `learning_starts` steps before training)."
            )

    def _gather(self, index: np.ndarray) -> dict[str, torch.Tensor]:
        batch = {
            "obs": self.obs[index],
            "action": self.action[index],
            "reward": self.reward[index],
            "next_obs": self.next_obs[index],
            "terminated": self.terminated[index],
        }
        return {key: torch.from_numpy(value).to(self.device) for key, value in batch.items()}


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al., 2016): transitions with large TD errors are drawn more often.

    Transition i is drawn with probability P(i) = p_i^α / Σ_j p_j^α, where p_i = |δ_i| + 1e-6 is its
    TD error when it was last drawn; a new transition gets the largest priority seen so far, so each
    one is drawn at least once soon after it arrives. Drawing non-uniformly biases the gradient
    towards the frequent transitions, so :meth:`sample` adds an importance weight per transition,
    ``weight`` = (N P(i))^−β / max_j (N P(j))^−β, and β rises linearly from ``beta`` to 1 over
    ``beta_steps`` calls of :meth:`sample` (the whole correction by the end of training). After the
    gradient step, :meth:`update_priorities` stores the new |δ| of the drawn transitions, whose
    positions the batch carries as ``index``.

    For CartPole's DQN this matters late in training: the memory fills with upright states, and
    the rare transitions near failure, whose TD errors stay large, would otherwise almost never be
    drawn. A draw costs O(capacity) (a cumulative sum), which is fine up to a few 10^5 transitions;
    larger memories want a sum tree.
    """

    EPSILON = 1e-6  # keeps every priority positive, so every transition can still be drawn

    def __init__(self, *args, alpha: float = 0.6, beta: float = 0.4, beta_steps: int = 10_000, **kwargs) -> None:
        """``PrioritizedReplayBuffer(capacity, obs_shape, obs_dtype=np.float32, *, seed, device="cpu", alpha=0.6,
        beta=0.4, beta_steps=10_000)``: :class:`ReplayBuffer`'s arguments, then α, β's first value and its schedule."""
        super().__init__(*args, **kwargs)
        if not (
            isinstance(alpha, (int, float)) and 0 <= alpha <= 1 and isinstance(beta, (int, float)) and 0 <= beta <= 1
        ):
            raise ValueError(f"alpha and beta must be numbers in [0, 1], got alpha={alpha!r}, beta={beta!r}")
        if isinstance(beta_steps, bool) or not isinstance(beta_steps, (int, np.integer)) or beta_steps < 1:
            raise ValueError(f"beta_steps must be a positive integer, got {beta_steps!r}")
        self.alpha, self.beta0, self.beta_steps = float(alpha), float(beta), int(beta_steps)
        self.scaled = np.zeros(self.capacity)  # p_i^α of each stored transition
        self.top = 1.0  # the largest priority p so far: what a new transition gets
        self.draws = 0  # calls of sample() so far: β's schedule

    def __repr__(self) -> str:
        return "Prioritized" + super().__repr__()

    @property
    def beta(self) -> float:
        """β of the next draw: ``beta`` at first, then linearly up to 1 over ``beta_steps`` draws."""
        return min(1.0, self.beta0 + (1.0 - self.beta0) * self.draws / self.beta_steps)

    def add(self, obs, action, reward, next_obs, terminated) -> None:
        """Store transitions as :meth:`ReplayBuffer.add` does, each with the largest priority so far."""
        first = self.pos
        super().add(obs, action, reward, next_obs, terminated)  # validates: obs is one state or a batch of them
        n = 1 if np.shape(obs) == self.obs_shape else np.shape(obs)[0]
        self.scaled[(first + np.arange(n)) % self.capacity] = self.top**self.alpha

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        """A minibatch drawn with probabilities P(i), as :meth:`ReplayBuffer.sample` returns it plus ``weight`` (B,)
        float32, the importance weights, and ``index`` (B,) int64, the positions to pass to :meth:`update_priorities`."""
        self._check_batch_size(batch_size)
        total = np.cumsum(self.scaled[: self.size])
        index = np.minimum(np.searchsorted(total, self.rng.random(batch_size) * total[-1]), self.size - 1)
        probs = self.scaled[: self.size] / total[-1]
        weights = (probs[index] / probs.min()) ** -self.beta  # (N P(i))^-β divided by its largest value
        self.draws += 1
        batch = self._gather(index)
        batch["weight"] = torch.as_tensor(weights, dtype=torch.float32, device=self.device)
        batch["index"] = torch.as_tensor(index, dtype=torch.int64, device=self.device)
        return batch

    def update_priorities(self, index: torch.Tensor | np.ndarray, td_errors: torch.Tensor | np.ndarray) -> None:
        """Set p_i = |δ_i| + 1e-6 for the drawn transitions ``index`` (from the batch) and their new TD errors."""
        index = np.asarray(torch.as_tensor(index).cpu())
        priority = np.abs(np.asarray(torch.as_tensor(td_errors).detach().cpu())) + self.EPSILON
        if index.shape != priority.shape or index.ndim != 1:
            raise ValueError(f"index {index.shape} and td_errors {priority.shape} must be matching 1-d arrays")
        if not np.all(np.isfinite(priority)):
            raise ValueError("td_errors must be finite: a NaN or infinite TD error means training diverged")
        self.scaled[index] = priority**self.alpha
        self.top = max(self.top, float(priority.max()))
