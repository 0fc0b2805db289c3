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
import torch
from torch import nn

from ..networks import CategoricalPolicy, ValueNetwork
from ..progress import progress
from ..returns import gae_advantages
from ..seeding import seed_everything
from ..torch_setup import pick_device
from ..vec import RolloutBatch, RolloutCollector, make_vec_env

__all__ = [
    "ActorCriticRun",
    "OnUpdate",
    "TrainResult",
    "Timer",
    "advantages_and_returns",
    "check_config",
    "decay_lr",
    "env_dims",
    "setup_actor_critic",
    "training_bar",
]

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


# --- The actor-critic set-up A2C and PPO share (PPO is A2C with another update step) ---


def advantages_and_returns(batch: RolloutBatch, gamma: float, gae_lambda: float, normalize: bool):
    """GAE advantages A_t and λ-returns Ĝ_t (both (T, N)) for a rollout batch; A2C and PPO share it.

    ``normalize`` rescales the advantages (not the returns) to mean 0, std 1.
    """
    advantages, returns = gae_advantages(
        batch.rewards, batch.values, batch.next_values, batch.terminated, batch.truncated, gamma, gae_lambda
    )
    if normalize:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    return advantages, returns


@dataclass
class ActorCriticRun:
    """What A2C, PPO and TRPO build before their first update; PPO is A2C with another update step.

    ``envs``: ``n_envs`` synchronous CartPole-style environments; ``collector``
    gathers ``(T, N, ...)`` batches from them with ``policy`` and ``value``.
    """

    device: torch.device
    envs: object
    policy: CategoricalPolicy
    value: ValueNetwork
    parameters: list
    optimizer: torch.optim.Optimizer
    collector: RolloutCollector
    result: TrainResult
    timer: Timer
    bar: object

    def show_progress(self, batch: RolloutBatch) -> None:
        self.bar.update(batch.n_steps * batch.n_envs)
        if batch.episode_returns:
            self.bar.set_postfix(ret=f"{batch.episode_returns[-1]:.0f}", refresh=False)

    def finish(self) -> TrainResult:
        self.bar.close()
        self.envs.close()
        self.result.seconds = self.timer.seconds()
        return self.result


def setup_actor_critic(config, name: str, progress_bar: bool, optimize_actor: bool = True) -> ActorCriticRun:
    """Seed everything from ``config.seed`` (sub-environment i from ``config.seed * n_envs + i``),
    build the environments, the actor and the critic (CUDA if available), one Adam optimiser for both,
    and the rollout collector. ``optimize_actor=False`` gives Adam the critic only (TRPO moves the
    actor itself, by a natural-gradient step)."""
    seed_everything(config.seed)
    device = pick_device()
    obs_dim, n_actions = env_dims(config.env_id)
    envs = make_vec_env(config.env_id, config.n_envs)
    policy = CategoricalPolicy(obs_dim, n_actions, config.hidden).to(device)
    value = ValueNetwork(obs_dim, config.hidden).to(device)
    parameters = [*policy.parameters(), *value.parameters()] if optimize_actor else list(value.parameters())
    optimizer = torch.optim.Adam(parameters, lr=config.lr, fused=True)  # fused: one kernel for all tensors, ~3x faster
    collector = RolloutCollector(envs, policy, value, seed=config.seed * config.n_envs)
    result = TrainResult(policy=policy, episode_returns=[], episode_end_steps=[], steps=0, seconds=0.0, value=value)
    return ActorCriticRun(
        device,
        envs,
        policy,
        value,
        parameters,
        optimizer,
        collector,
        result,
        Timer(),
        training_bar(config.total_steps, name, progress_bar),
    )


def decay_lr(optimizer: torch.optim.Optimizer, config, steps: int) -> None:
    """With ``config.anneal_lr``, decay the learning rate linearly to 0 over ``config.total_steps``:
    late updates take smaller steps, so a solved policy stops drifting."""
    if config.anneal_lr:
        for group in optimizer.param_groups:
            group["lr"] = config.lr * (1 - steps / config.total_steps)
