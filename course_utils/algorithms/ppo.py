"""PPO with the clipped surrogate objective: A2C that reuses each batch for several epochs.

Notebook 05 derives it from A2C. After collecting a batch with the policy
π_old, PPO takes several epochs of minibatch steps on it. Once θ has moved, the
data is off-policy, so each log-probability is reweighted by the ratio
ρ_t(θ) = π_θ(a_t|s_t) / π_old(a_t|s_t), and the ratio is clipped so that one
batch cannot push the policy far::

    L_clip(θ) = -mean( min(ρ_t A_t, clip(ρ_t, 1-ε, 1+ε) A_t) )

At ρ = 1 (the first minibatch step) its gradient is exactly A2C's. The loss
adds A2C's critic and entropy terms. Each update records the approximate KL
divergence KL(π_old || π_new) over the batch, ``extras["approx_kl"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.distributions import Categorical

from .common import OnUpdate, TrainResult, advantages_and_returns, check_config, decay_lr, setup_actor_critic

__all__ = ["PPOConfig", "approx_kl", "clipped_surrogate_loss", "ppo_loss", "train"]


@dataclass
class PPOConfig:
    """Hyperparameters of PPO; ``PPOConfig.fast()`` is the tiny CI budget."""

    env_id: str = "CartPole-v1"  # gymnasium environment (discrete actions, flat observations)
    total_steps: int = 100_000  # environment-step budget (all environments together)
    n_envs: int = 8  # N, environments stepped side by side (sync vector env)
    n_steps: int = 32  # T, steps per environment between updates: a batch is T·N transitions
    n_epochs: int = 10  # passes over each batch
    minibatch_size: int = 256  # transitions per gradient step; T·N must be a multiple (here: the whole batch)
    gamma: float = 0.98  # discount γ
    gae_lambda: float = 0.8  # GAE λ
    lr: float = 3e-3  # Adam step size for actor and critic together (decays to 0 with anneal_lr)
    anneal_lr: bool = True  # decay the step size linearly from lr to 0 over total_steps
    clip_range: float = 0.2  # ε: the ratio π_θ/π_old is clipped to [1-ε, 1+ε]
    ent_coef: float = 0.0  # c_H, weight of the entropy bonus
    vf_coef: float = 0.5  # c_v, weight of the critic's squared error in the joint loss
    max_grad_norm: float = 0.5  # clip the global gradient norm to this (0 = no clipping)
    normalize_advantages: bool = True  # rescale advantages to mean 0, std 1 within each minibatch
    hidden: tuple[int, ...] = (64, 64)  # hidden layer sizes of the actor and of the critic
    seed: int = 0  # seeds torch, NumPy, random and the environments

    @classmethod
    def fast(cls, **overrides) -> PPOConfig:
        """A budget of a few seconds for tests and fast mode: same algorithm, fewer steps."""
        return cls(**{"total_steps": 10_000, **overrides})


def clipped_surrogate_loss(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, clip_range: float
) -> torch.Tensor:
    """-mean(min(ρ A, clip(ρ, 1-ε, 1+ε) A)) with ρ = exp(log π_θ - log π_old); all shapes equal.

    ``old_log_probs`` (of the policy that collected the data) and
    ``advantages`` are constants: only ``log_probs`` carries gradients. The
    minimum makes the objective pessimistic: clipping removes the incentive to
    move ρ beyond 1±ε in the direction the advantage favours, never the penalty
    for moving the wrong way.
    """
    if not (log_probs.shape == old_log_probs.shape == advantages.shape):
        raise ValueError(
            f"shapes differ: log_probs {tuple(log_probs.shape)}, old_log_probs "
            f"{tuple(old_log_probs.shape)}, advantages {tuple(advantages.shape)}"
        )
    if not 0 < clip_range < 1:
        raise ValueError(f"clip_range ε must lie in (0, 1), got {clip_range}")
    advantages = advantages.detach()
    ratio = torch.exp(log_probs - old_log_probs.detach())  # ρ_t(θ); exactly 1 before θ moves
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - clip_range, 1 + clip_range) * advantages
    return -torch.min(unclipped, clipped).mean()


def approx_kl(log_probs: torch.Tensor, old_log_probs: torch.Tensor) -> torch.Tensor:
    """Estimate of KL(π_old || π_θ) from samples a ~ π_old: mean((ρ - 1) - log ρ), never negative.

    Each term is ≥ 0 and the estimate is unbiased (the "k3" estimator of
    J. Schulman's note *Approximating KL divergence*).
    """
    log_ratio = (log_probs - old_log_probs).detach()
    return (torch.expm1(log_ratio) - log_ratio).mean()


def ppo_loss(
    dist: Categorical,
    values: torch.Tensor,
    actions: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    *,
    clip_range: float,
    vf_coef: float,
    ent_coef: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's joint loss on a minibatch: clipped surrogate + c_v · critic error - c_H · entropy.

    Same arguments as :func:`course_utils.algorithms.a2c.a2c_loss` plus
    ``old_log_probs`` (B) and ``clip_range``. With ``old_log_probs`` equal to the
    current log-probabilities (ρ = 1) its gradient equals that of A2C's loss;
    the values differ by a constant (the surrogate uses ρA where A2C has A log π).
    ``parts`` also holds ``clip_fraction``, the share of ratios outside 1±ε.
    """
    log_probs = dist.log_prob(actions)
    policy_loss = clipped_surrogate_loss(log_probs, old_log_probs, advantages, clip_range)
    value_loss = (values - returns.detach()).pow(2).mean()
    entropy = dist.entropy().mean()
    loss = policy_loss + vf_coef * value_loss
    if ent_coef:  # minus: an entropy *bonus* (with c_H = 0 it stays out of the graph: same gradient, less work)
        loss = loss - ent_coef * entropy
    with torch.no_grad():
        clip_fraction = ((log_probs - old_log_probs).exp().sub(1).abs() > clip_range).float().mean()
    return loss, {
        "policy_loss": policy_loss.item(),
        "value_loss": value_loss.item(),
        "entropy": entropy.item(),
        "clip_fraction": clip_fraction.item(),
    }


def train(config: PPOConfig, *, on_update: OnUpdate | None = None, progress_bar: bool = True) -> TrainResult:
    """Train an actor (:class:`CategoricalPolicy`) and a critic (:class:`ValueNetwork`) with PPO.

    Seeds everything from ``config.seed`` (sub-environment i from
    ``config.seed * n_envs + i``); runs on CUDA if available.
    ``on_update(steps, policy)`` after each update (= all epochs on one batch)
    may return True to stop. ``extras`` logs per update: ``update_steps``,
    ``approx_kl`` (between the collecting and the updated policy, on the whole
    batch), and the last minibatch's ``policy_loss``, ``value_loss``,
    ``entropy``, ``clip_fraction``.
    """
    check_config(
        config,
        positive_ints=("total_steps", "n_envs", "n_steps", "n_epochs", "minibatch_size"),
        positive=("lr", "clip_range"),
        unit_interval=("gamma", "gae_lambda"),
        non_negative=("ent_coef", "vf_coef", "max_grad_norm"),
    )
    batch_size = config.n_envs * config.n_steps
    if batch_size % config.minibatch_size:
        raise ValueError(
            f"the batch of n_envs * n_steps = {batch_size} transitions does not split into minibatches "
            f"of {config.minibatch_size}; choose a minibatch_size that divides it"
        )
    run = setup_actor_critic(config, "PPO", progress_bar)  # the same set-up as A2C
    device, policy, value, parameters, optimizer, collector, result = (
        run.device,
        run.policy,
        run.value,
        run.parameters,
        run.optimizer,
        run.collector,
        run.result,
    )
    while collector.steps < config.total_steps:
        decay_lr(optimizer, config, collector.steps)
        batch = collector.collect(config.n_steps)  # collected by π_old = the current policy
        result.episode_returns += batch.episode_returns
        result.episode_end_steps += batch.episode_end_steps
        advantages, returns = advantages_and_returns(batch, config.gamma, config.gae_lambda, normalize=False)
        # Flatten (T, N) into one pool of transitions: after the advantages are computed, order no longer matters.
        obs, actions = batch.obs.flatten(0, 1), batch.actions.flatten()
        old_log_probs, advantages, returns = batch.log_probs.flatten(), advantages.flatten(), returns.flatten()

        for _ in range(config.n_epochs):
            for idx in torch.randperm(batch_size, device=device).split(config.minibatch_size):
                adv = advantages[idx]
                if config.normalize_advantages:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                minibatch_obs = obs[idx]
                loss, parts = ppo_loss(
                    policy.distribution(minibatch_obs, validate_args=False),
                    value(minibatch_obs),
                    actions[idx],
                    old_log_probs[idx],
                    adv,
                    returns[idx],
                    clip_range=config.clip_range,
                    vf_coef=config.vf_coef,
                    ent_coef=config.ent_coef,
                )
                optimizer.zero_grad()
                loss.backward()
                if config.max_grad_norm > 0:
                    nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
                optimizer.step()

        with torch.no_grad():  # how far did this update move the policy? (on the whole batch)
            kl = approx_kl(policy.distribution(obs, validate_args=False).log_prob(actions), old_log_probs)
        result.steps = collector.steps
        result.log(update_steps=result.steps, approx_kl=kl.item(), **parts)
        run.show_progress(batch)
        if on_update is not None and on_update(result.steps, policy):
            break
    return run.finish()
