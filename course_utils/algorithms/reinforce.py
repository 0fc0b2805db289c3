"""REINFORCE with reward-to-go, and optionally a learned value baseline.

Notebook 03 derives and writes out REINFORCE; notebook 04 adds the baseline.
This is the reference version they compare with. One update per batch of N
complete episodes τ^(1..N) ~ p(τ|θ), played side by side in N environments::

    ∇_θ J(θ) ≈ 1/N Σ_i Σ_t (G_t^(i) - b(s_t^(i))) ∇_θ log π_θ(a_t^(i) | s_t^(i))

with G_t the discounted reward-to-go and b = ⊥V_φ (a value network fitted to
G_t by regression, held constant in the policy gradient) or b = 0.

It is a Monte Carlo method: nothing bootstraps. When a time limit truncates an
episode, the rewards it would have earned are missing from G_t, so returns near
the cut are too small; actor-critic methods (notebook 05) repair that.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..networks import CategoricalPolicy, ValueNetwork
from ..returns import discounted_returns
from ..seeding import make_env, seed_everything
from ..torch_setup import pick_device
from ..vec import collect_episodes
from .common import OnUpdate, Timer, TrainResult, check_config, env_dims, training_bar

__all__ = ["ReinforceConfig", "reinforce_loss", "train"]


@dataclass
class ReinforceConfig:
    """Hyperparameters of REINFORCE; ``ReinforceConfig.fast()`` is the tiny CI budget."""

    env_id: str = "CartPole-v1"  # gymnasium environment (discrete actions, flat observations)
    total_steps: int = 100_000  # environment-step budget; training stops after the batch that crosses it
    episodes_per_batch: int = 8  # N, complete episodes per gradient estimate (one environment each)
    gamma: float = 0.99  # discount γ in the reward-to-go G_t
    lr: float = 5e-3  # Adam step size for the policy parameters θ
    hidden: tuple[int, ...] = (64, 64)  # hidden layer sizes of the policy (and value) network
    baseline: bool = True  # subtract a learned V_φ(s_t) from G_t (notebook 04); False: plain REINFORCE
    value_lr: float = 1e-2  # Adam step size for the value parameters φ
    value_steps: int = 5  # gradient steps on the value regression per batch
    normalize_advantages: bool = True  # rescale G_t - b to mean 0, std 1 within each batch
    discount_weighting: bool = False  # multiply step t's term by γ^t as in the lecture's estimator
    seed: int = 0  # seeds torch, NumPy, random and the environments

    @classmethod
    def fast(cls, **overrides) -> ReinforceConfig:
        """A budget of a few seconds for tests and fast mode: same algorithm, fewer steps."""
        return cls(**{"total_steps": 10_000, **overrides})


def reinforce_loss(log_probs: torch.Tensor, advantages: torch.Tensor, n_episodes: int) -> torch.Tensor:
    """Surrogate loss whose gradient is minus the REINFORCE estimate of ∇_θ J.

    ``log_probs`` (M,) are log π_θ(a_t|s_t) for all M steps of the batch, with
    gradients; ``advantages`` (M,) their weights G_t - b(s_t), detached here: they
    are constants, only the log-probabilities carry θ. Summed over the steps of
    each episode and averaged over the ``n_episodes`` episodes, like the
    estimator. Its value is not a performance measure: only its gradient means
    something.
    """
    if log_probs.shape != advantages.shape:
        raise ValueError(f"log_probs {tuple(log_probs.shape)} and advantages {tuple(advantages.shape)} must match")
    return -(log_probs * advantages.detach()).sum() / n_episodes


def train(config: ReinforceConfig, *, on_update: OnUpdate | None = None, progress_bar: bool = True) -> TrainResult:
    """Train a :class:`CategoricalPolicy` with REINFORCE; see the module docstring.

    Seeds everything from ``config.seed`` (environment i of the batch from
    ``config.seed * N + i``, so different seeds never share an environment
    stream); runs on CUDA if available. ``on_update(steps, policy)`` after each
    update may return True to stop. Returns a :class:`TrainResult` with the
    value network (if ``baseline``) and ``extras`` logs ``update_steps``,
    ``loss``, ``value_loss``, ``entropy``.
    """
    check_config(
        config,
        positive_ints=("total_steps", "episodes_per_batch", "value_steps"),
        positive=("lr", "value_lr"),
        unit_interval=("gamma",),
    )
    seed_everything(config.seed)
    device = pick_device()
    obs_dim, n_actions = env_dims(config.env_id)
    N = config.episodes_per_batch
    envs = [make_env(config.env_id, seed=config.seed * N + i) for i in range(N)]

    policy = CategoricalPolicy(obs_dim, n_actions, config.hidden).to(device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr, fused=True)  # fused: one kernel for all tensors
    value: nn.Module | None = None
    if config.baseline:
        value = ValueNetwork(obs_dim, config.hidden).to(device)
        value_optimizer = torch.optim.Adam(value.parameters(), lr=config.value_lr, fused=True)

    result = TrainResult(policy=policy, episode_returns=[], episode_end_steps=[], steps=0, seconds=0.0, value=value)
    timer = Timer()
    bar = training_bar(config.total_steps, "REINFORCE", progress_bar)
    while result.steps < config.total_steps:
        # 1. Sample N trajectories τ ~ p(τ|θ): padded tensors (T_max, N), mask marks real steps.
        batch = collect_episodes(envs, policy)
        mask = batch.mask
        lengths, episode_returns = batch.lengths.tolist(), batch.episode_returns.tolist()
        for i in sorted(range(N), key=lambda i: lengths[i]):  # in the order the episodes ended
            result.episode_returns.append(episode_returns[i])
            # The episodes ran side by side: when episode i ended, each episode had run min(its length, L_i) steps.
            result.episode_end_steps.append(result.steps + sum(min(length, lengths[i]) for length in lengths))
        result.steps += sum(lengths)

        # 2. Reward-to-go G_t of every step; no bootstrap (next_values=None), as for complete episodes.
        G = discounted_returns(batch.rewards, batch.terminated, batch.truncated, config.gamma)
        obs, actions, G = batch.obs[mask], batch.actions[mask], G[mask]  # the M real steps, (M, ...)

        # 3. Advantage G_t - b(s_t) with the baseline held constant (⊥V_φ), optionally normalised.
        advantages = G - value(obs).detach() if value is not None else G.clone()
        if config.normalize_advantages and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        if config.discount_weighting:
            t = torch.arange(mask.shape[0], device=device)[:, None].expand_as(mask)[mask]
            advantages = advantages * config.gamma**t

        # 4. Gradient ascent on J: descend the surrogate loss.
        dist = policy.distribution(obs)
        loss = reinforce_loss(dist.log_prob(actions), advantages, n_episodes=N)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        # 5. Fit the baseline V_φ(s_t) to the Monte Carlo targets G_t.
        value_loss = torch.zeros(())
        if value is not None:
            for _ in range(config.value_steps):
                value_loss = (value(obs) - G).pow(2).mean()
                value_optimizer.zero_grad()
                value_loss.backward()
                value_optimizer.step()

        result.log(
            update_steps=result.steps,
            loss=loss.item(),
            value_loss=value_loss.item(),
            entropy=dist.entropy().mean().item(),
        )
        bar.update(sum(lengths))
        bar.set_postfix(ret=f"{batch.episode_returns.mean().item():.0f}", refresh=False)
        if on_update is not None and on_update(result.steps, policy):
            break
    bar.close()
    for env in envs:
        env.close()
    result.seconds = timer.seconds()
    return result
