"""A2C: advantage actor-critic on N parallel environments, with GAE and an entropy bonus.

Notebook 05 builds it from REINFORCE with a baseline: instead of waiting for
complete episodes, every update uses the last T steps of N environments and
lets the critic V_φ fill in the rest of the return::

    A_t = GAE(γ, λ) of δ_t = r_{t+1} + γ V_φ(s_{t+1}) - V_φ(s_t)      (λ = 1: n-step returns)
    loss = -mean(⊥A_t log π_θ(a_t|s_t)) + c_v mean((V_φ(s_t) - ⊥Ĝ_t)²) - c_H mean(H[π_θ(·|s_t)])

where Ĝ_t = A_t + V_φ(s_t) is the λ-return. The critic bootstraps from the real
final state after a time-limit truncation and from nothing after a
termination (see :func:`course_utils.returns.gae_advantages`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.distributions import Categorical

from .common import OnUpdate, TrainResult, advantages_and_returns, check_config, decay_lr, setup_actor_critic

__all__ = ["A2CConfig", "a2c_loss", "advantages_and_returns", "policy_gradient_loss", "train"]


@dataclass
class A2CConfig:
    """Hyperparameters of A2C; ``A2CConfig.fast()`` is the tiny CI budget."""

    env_id: str = "CartPole-v1"  # gymnasium environment (discrete actions, flat observations)
    total_steps: int = 100_000  # environment-step budget (all environments together)
    n_envs: int = 8  # N, environments stepped side by side (sync vector env)
    n_steps: int = 8  # T, steps per environment between updates: a batch is T·N transitions
    gamma: float = 0.98  # discount γ
    gae_lambda: float = 1.0  # GAE λ: 1 = n-step returns (no critic bias), 0 = one-step TD (lowest variance)
    lr: float = 5e-3  # Adam step size for actor and critic; 2e-3 ended CartPole solved on 17/20 seeds, 5e-3 on 20/20
    anneal_lr: bool = True  # decay the step size linearly from lr to 0 over total_steps
    ent_coef: float = 0.01  # c_H, weight of the entropy bonus (keeps the policy exploring)
    vf_coef: float = 0.5  # c_v, weight of the critic's squared error in the joint loss
    max_grad_norm: float = 0.5  # clip the global gradient norm to this (0 = no clipping)
    normalize_advantages: bool = False  # rescale advantages to mean 0, std 1 within each batch
    hidden: tuple[int, ...] = (64, 64)  # hidden layer sizes of the actor and of the critic
    seed: int = 0  # seeds torch, NumPy, random and the environments

    @classmethod
    def fast(cls, **overrides) -> A2CConfig:
        """A budget of a few seconds for tests and fast mode: same algorithm, fewer steps."""
        return cls(**{"total_steps": 10_000, **overrides})


def policy_gradient_loss(log_probs: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """-mean(⊥A_t · log π_θ(a_t|s_t)): the actor's loss; shapes (M,) or (T, N), equal.

    The advantage is detached: it weights the score function and must not be
    pushed around by the actor's gradient (the critic is trained separately).
    """
    if log_probs.shape != advantages.shape:
        raise ValueError(f"log_probs {tuple(log_probs.shape)} and advantages {tuple(advantages.shape)} must match")
    return -(advantages.detach() * log_probs).mean()


def a2c_loss(
    dist: Categorical,
    values: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    *,
    vf_coef: float,
    ent_coef: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The joint actor-critic loss; returns ``(loss, parts)``.

    ``dist`` is π_θ(·|s_t) for the batch (batch shape B), ``values`` V_φ(s_t)
    with gradients (B), ``actions``, ``advantages`` and ``returns`` (B) the
    collected a_t, A_t and λ-returns Ĝ_t (constants). ``parts`` holds the
    float values of ``policy_loss``, ``value_loss`` and ``entropy``.
    """
    policy_loss = policy_gradient_loss(dist.log_prob(actions), advantages)
    value_loss = (values - returns.detach()).pow(2).mean()  # regression onto the fixed target ⊥Ĝ_t
    entropy = dist.entropy().mean()
    # Minus the entropy: minimising the loss *raises* the entropy, a bonus for staying uncertain.
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy
    return loss, {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "entropy": entropy.item()}


def train(config: A2CConfig, *, on_update: OnUpdate | None = None, progress_bar: bool = True) -> TrainResult:
    """Train an actor (:class:`CategoricalPolicy`) and a critic (:class:`ValueNetwork`) with A2C.

    Seeds everything from ``config.seed`` (sub-environment i from
    ``config.seed * n_envs + i``); runs on CUDA if available.
    ``on_update(steps, policy)`` after each update may return True to stop.
    ``extras`` logs per update: ``update_steps``, ``policy_loss``,
    ``value_loss``, ``entropy``.
    """
    check_config(
        config,
        positive_ints=("total_steps", "n_envs", "n_steps"),
        positive=("lr",),
        unit_interval=("gamma", "gae_lambda"),
        non_negative=("ent_coef", "vf_coef", "max_grad_norm"),
    )
    run = setup_actor_critic(config, "A2C", progress_bar)
    policy, value, parameters, optimizer, collector, result = (
        run.policy,
        run.value,
        run.parameters,
        run.optimizer,
        run.collector,
        run.result,
    )
    while collector.steps < config.total_steps:
        decay_lr(optimizer, config, collector.steps)
        batch = collector.collect(config.n_steps)  # T steps of N envs, (T, N, ...)
        result.episode_returns += batch.episode_returns
        result.episode_end_steps += batch.episode_end_steps
        advantages, returns = advantages_and_returns(
            batch, config.gamma, config.gae_lambda, config.normalize_advantages
        )

        # One gradient step on the whole batch, with log-probabilities and values recomputed with gradients.
        loss, parts = a2c_loss(
            policy.distribution(batch.obs, validate_args=False),
            value(batch.obs),
            batch.actions,
            advantages,
            returns,
            vf_coef=config.vf_coef,
            ent_coef=config.ent_coef,
        )
        optimizer.zero_grad()
        loss.backward()
        if config.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
        optimizer.step()

        result.steps = collector.steps
        result.log(update_steps=result.steps, **parts)
        run.show_progress(batch)
        if on_update is not None and on_update(result.steps, policy):
            break
    return run.finish()
