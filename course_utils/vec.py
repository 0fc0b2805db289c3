"""Batched experience collection: fixed-length rollouts from vector environments, and whole episodes.

Two ways to gather on-policy data, both with one batched forward pass per time
step over all environments:

- :class:`RolloutCollector` steps a gymnasium vector environment for ``n_steps``
  at a time and returns a :class:`RolloutBatch`. Episodes run on across batches;
  an environment that finishes an episode is reset in the same step. This is
  the data of actor-critic methods (A2C, PPO), notebook 05.
- :func:`collect_episodes` runs each of a list of environments for exactly one
  complete episode and returns an :class:`EpisodeBatch`: the N trajectories τ
  that REINFORCE averages over (notebooks 03 and 04). The evaluation protocol
  (:mod:`course_utils.evaluation`) uses it with greedy actions.

Shapes (T = steps, N = environments)::

    obs                       (T, N, obs_dim)  s_t, the state a_t was chosen in
    actions, log_probs        (T, N)           a_t and log π_θ(a_t|s_t) at collection time
    rewards                   (T, N)           r_{t+1}
    terminated, truncated     (T, N) bool      did the episode end after step t, and why
    values, next_values       (T, N)           V(s_t) and V(s_{t+1}) of the REAL next state

Actions are sampled with torch's global RNG (:func:`sample_actions`, the same
draws as ``Categorical(logits=...).sample()``) and environments are seeded from
``seed``: after ``seed_everything(seed)`` the same seed gives identical batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from torch import nn

__all__ = ["EpisodeBatch", "RolloutBatch", "RolloutCollector", "collect_episodes", "make_vec_env", "sample_actions"]


def make_vec_env(env_id: str = "CartPole-v1", n_envs: int = 8, **kwargs) -> gym.vector.VectorEnv:
    """``n_envs`` copies of ``env_id`` stepped one after another in this process (a sync vector env).

    Autoreset happens in the same step ("SAME_STEP"): when a sub-environment's
    episode ends, ``step`` returns the first observation of its next episode and
    puts the state the episode really ended in into ``info["final_obs"]``. For
    a cheap environment such as CartPole, stepping copies in one process beats
    separate processes, whose communication costs more than the step itself.
    ``kwargs`` go to ``gym.make`` for each copy. Reset it with
    ``envs.reset(seed=seed)``: sub-environment i gets ``seed + i``.
    """
    if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
        raise ValueError(f"n_envs must be a positive integer, got {n_envs!r}")
    return gym.make_vec(
        env_id,
        num_envs=n_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
        **kwargs,
    )


def sample_actions(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample a ~ π(·|s) = softmax(logits) for a batch of logits (B, n_actions); return a and log π(a|s), both (B,).

    The same computation as ``dist = Categorical(logits=logits)``, ``a = dist.sample()``,
    ``dist.log_prob(a)``, step by step, so it draws the same actions from torch's RNG and gives
    bit-identical log-probabilities. Acting calls it once per environment step on a handful of
    states, where building the distribution object costs more than the arithmetic (a speed-up, nothing else).
    """
    log_pi = logits - logits.logsumexp(dim=-1, keepdim=True)  # log π(·|s), normalised as Categorical does
    action = torch.multinomial(log_pi.softmax(dim=-1), 1, replacement=True)  # (B, 1): one draw per row
    return action.squeeze(-1), log_pi.gather(-1, action).squeeze(-1)


def _check_discrete(space: gym.Space, what: str) -> int:
    if not isinstance(space, gym.spaces.Discrete):
        raise ValueError(f"{what} needs a discrete action space (a categorical policy), got {space}")
    return int(space.n)


def _device_of(module: nn.Module) -> torch.device:
    return next(iter(module.parameters()), torch.empty(0)).device


@dataclass
class RolloutBatch:
    """``n_steps`` steps of N environments; every tensor is (T, N, ...), see the module docstring.

    ``values`` and ``next_values`` are None when no value network was given.
    ``episode_returns``, ``episode_lengths`` and ``episode_end_steps`` describe
    the episodes that finished during this batch (undiscounted return, number
    of steps, and the collector's total env-step count when each ended), for logging.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    values: torch.Tensor | None
    next_values: torch.Tensor | None
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    episode_end_steps: list[int] = field(default_factory=list)

    @property
    def n_steps(self) -> int:
        """T, the number of time steps."""
        return self.rewards.shape[0]

    @property
    def n_envs(self) -> int:
        """N, the number of environments."""
        return self.rewards.shape[1]


class RolloutCollector:
    """Collects :class:`RolloutBatch` es of ``n_steps`` from a vector env with a categorical policy.

    ``policy(obs)`` must return logits (*B, n_actions); ``value(obs)``, if
    given, V(s) of shape (*B,). The collector keeps the environments' current
    observations between calls, so consecutive batches continue the same
    episodes: call :meth:`collect` once per update. ``steps`` counts env steps
    so far (T·N per batch). Data is collected under ``torch.no_grad()``:
    training recomputes log-probabilities and values with gradients.
    """

    def __init__(self, envs: gym.vector.VectorEnv, policy: nn.Module, value: nn.Module | None = None, *, seed: int):
        self.envs, self.policy, self.value = envs, policy, value
        _check_discrete(envs.single_action_space, "RolloutCollector")
        self.device = _device_of(policy)
        obs, _ = envs.reset(seed=seed)
        envs.action_space.seed(seed)
        self._obs = np.asarray(obs, dtype=np.float32)  # (N, obs_dim): the states the next step starts from
        self.n_envs = envs.num_envs
        self.steps = 0
        self._episode_return = np.zeros(self.n_envs)
        self._episode_length = np.zeros(self.n_envs, dtype=int)

    @torch.no_grad()
    def collect(self, n_steps: int) -> RolloutBatch:
        """Step every environment ``n_steps`` times with actions a_t ~ π_θ(·|s_t)."""
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
        T, N = n_steps, self.n_envs
        # Environment data goes into NumPy buffers (cheap row writes) and becomes tensors at the end.
        obs = np.empty((T, N, *self._obs.shape[1:]), dtype=np.float32)
        rewards = np.empty((T, N), dtype=np.float32)
        terminated = np.empty((T, N), dtype=bool)
        truncated = np.empty((T, N), dtype=bool)
        actions = torch.empty((T, N), dtype=torch.long, device=self.device)
        log_probs = torch.empty((T, N), device=self.device)
        ended_at, final_obs = [], []  # (t, i) of every episode end, and the state it really ended in
        episode_returns, episode_lengths, episode_end_steps = [], [], []

        for t in range(T):
            obs[t] = self._obs
            logits = self.policy(torch.from_numpy(self._obs).to(self.device))
            action, log_prob = sample_actions(logits)  # a_t ~ π_θ(·|s_t) and log π_θ(a_t|s_t), (N,) each
            actions[t], log_probs[t] = action, log_prob  # log-probabilities of the behaviour policy
            next_obs, rewards[t], terminated[t], truncated[t], info = self.envs.step(action.cpu().numpy())

            self._episode_return += rewards[t]
            self._episode_length += 1
            for i in np.flatnonzero(terminated[t] | truncated[t]):
                # next_obs[i] is already the first state of env i's NEXT episode (same-step autoreset);
                # the state this episode really ended in is info["final_obs"][i].
                ended_at.append((t, i))
                final_obs.append(info["final_obs"][i])
                episode_returns.append(float(self._episode_return[i]))
                episode_lengths.append(int(self._episode_length[i]))
                episode_end_steps.append(self.steps + (t + 1) * N)
                self._episode_return[i], self._episode_length[i] = 0.0, 0
            self._obs = np.asarray(next_obs, dtype=np.float32)  # s_{t+1} becomes the next step's s_t

        self.steps += T * N
        obs_t = torch.from_numpy(obs).to(self.device)
        values = next_values = None
        if self.value is not None:
            # V(s_t) for the whole batch in one forward pass (acting did not need it).
            values = self.value(obs_t)
            # V(s_{t+1}) is the next step's V(s_t), except after the last step and at episode ends,
            # where s_{t+1} must be the real final state, not the first state of the next episode.
            next_values = torch.empty_like(values)
            next_values[:-1] = values[1:]
            next_values[-1] = self.value(torch.from_numpy(self._obs).to(self.device))
            if ended_at:
                t_idx, env_idx = (torch.as_tensor(ix, device=self.device) for ix in zip(*ended_at))
                final = torch.as_tensor(np.stack(final_obs), dtype=torch.float32, device=self.device)
                next_values[t_idx, env_idx] = self.value(final)
        return RolloutBatch(
            obs=obs_t,
            actions=actions,
            log_probs=log_probs,
            rewards=torch.from_numpy(rewards).to(self.device),
            terminated=torch.from_numpy(terminated).to(self.device),
            truncated=torch.from_numpy(truncated).to(self.device),
            values=values,
            next_values=next_values,
            episode_returns=episode_returns,
            episode_lengths=episode_lengths,
            episode_end_steps=episode_end_steps,
        )


@dataclass
class EpisodeBatch:
    """N complete episodes, padded to the longest one, T_max steps; tensors (T_max, N, ...).

    ``mask[t, i]`` is True while episode i is still running at step t; padded
    entries hold zeros (and False flags). Each episode ends with exactly one of
    ``terminated`` or ``truncated`` set, at step ``lengths[i] - 1``.
    ``final_obs`` (N, obs_dim) is the state s_T each episode ended in.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    final_obs: torch.Tensor

    @property
    def episode_returns(self) -> torch.Tensor:
        """Undiscounted return of each episode, shape (N,)."""
        return self.rewards.sum(dim=0)


@torch.no_grad()
def collect_episodes(
    envs: Sequence[gym.Env],
    policy: nn.Module,
    seeds: Sequence[int] | None = None,
    *,
    greedy: bool = False,
) -> EpisodeBatch:
    """Run each environment in ``envs`` for one complete episode with one batched forward pass per step.

    ``policy(obs)`` returns logits, or any scores (*B, n_actions): actions are
    sampled from ``Categorical(logits=policy(obs))`` (by :func:`sample_actions`), or with ``greedy=True``
    taken as the argmax (so a Q-network works too). ``seeds[i]`` resets
    environment i; with ``seeds=None`` each environment continues its own
    seeded stream (make them with :func:`course_utils.make_env`). Finished
    environments are not stepped again while the others run on. Notebook 03.
    """
    envs = list(envs)
    if not envs:
        raise ValueError("collect_episodes needs at least one environment")
    if seeds is not None and len(seeds) != len(envs):
        raise ValueError(f"got {len(seeds)} seeds for {len(envs)} environments: give one seed per environment, or None")
    for env in envs:
        _check_discrete(env.action_space, "collect_episodes")
    device = _device_of(policy)
    N = len(envs)
    current = np.stack([env.reset(seed=None if seeds is None else int(seeds[i]))[0] for i, env in enumerate(envs)])
    current = current.astype(np.float32)
    final_obs = np.zeros_like(current)
    running = np.ones(N, dtype=bool)
    lengths = np.zeros(N, dtype=int)
    steps: list[tuple[np.ndarray, ...]] = []  # per time step: obs, actions, rewards, terminated, truncated, mask

    while running.any():
        idx = np.flatnonzero(running)  # only the environments whose episode is still going
        scores = policy(torch.as_tensor(current[idx], device=device))
        action = scores.argmax(dim=-1) if greedy else sample_actions(scores)[0]
        action = action.cpu().numpy()
        obs_t = current.copy()
        actions_t = np.zeros(N, dtype=np.int64)
        rewards_t = np.zeros(N, dtype=np.float32)
        term_t, trunc_t = np.zeros(N, dtype=bool), np.zeros(N, dtype=bool)
        actions_t[idx] = action
        mask_t = running.copy()
        for j, i in enumerate(idx):
            next_obs, reward, term, trunc, _ = envs[i].step(action[j])
            rewards_t[i], term_t[i], trunc_t[i] = reward, term, trunc
            current[i] = next_obs
            lengths[i] += 1
            if term or trunc:
                running[i] = False
                final_obs[i] = next_obs
        obs_t[~mask_t] = 0.0
        steps.append((obs_t, actions_t, rewards_t, term_t, trunc_t, mask_t))

    obs, actions, rewards, terminated, truncated, mask = (
        torch.as_tensor(np.stack(column), device=device)
        for column in zip(*steps)  # (T_max, N, ...) each
    )
    return EpisodeBatch(
        obs=obs,
        actions=actions,
        rewards=rewards,
        terminated=terminated,
        truncated=truncated,
        mask=mask,
        lengths=torch.as_tensor(lengths, device=device),
        final_obs=torch.as_tensor(final_obs, device=device),
    )
