"""World-model pieces and an imagination rollout (notebook 11).

A world model in the sense of Ha and Schmidhuber (2018) has three learned parts:

- a state encoder q_ψ(z|s) with a decoder p_ψ(s|z): a VAE as in notebook 06 (:class:`StateVAE`);
- a transition model p_ψ(z'|z, a), a diagonal Gaussian around z plus a learned change (:class:`Transition`);
- a reward and termination model p_ψ(r, continue|z') (:class:`RewardModel`).

:func:`imagine` rolls a policy forward inside the model ("dreams"), either with sampled discrete actions
(for the score-function estimator) or with straight-through one-hot actions and reparameterized transitions
(for pathwise gradients through the model). :func:`dream_returns` scores a dream: the discounted sum of
predicted rewards, each weighted by the predicted probability that the episode is still running.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical

from .estimators import gaussian_kl_standard_normal, gaussian_rsample
from .networks import mlp

__all__ = [
    "Dream",
    "RewardModel",
    "StateVAE",
    "Transition",
    "dream_returns",
    "gaussian_nll",
    "imagine",
]


def gaussian_nll(x: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """-log N(x; μ, diag σ²), summed over the last dimension. Shapes: (..., K) each; returns (...)."""
    return (0.5 * ((x - mu) / log_sigma.exp()) ** 2 + log_sigma + 0.5 * math.log(2 * math.pi)).sum(-1)


class StateVAE(nn.Module):
    """q_ψ(z|s) = N(μ(s), diag σ(s)²) and a decoder s̃ = g(z); notebook 06's VAE on state vectors.

    ``encode(s)`` returns ``(mu, log_sigma)``, each (*B, latent_dim); ``decode(z)`` returns (*B, obs_dim).
    ``loss(s, beta)`` is the negative ELBO per state with a Gaussian decoder of unit variance (squared
    error / 2) and the KL weighted by ``beta``; returns ``(loss, parts)`` with float ``recon`` and ``kl``.
    """

    def __init__(self, obs_dim: int, latent_dim: int, hidden: Sequence[int] = (64,)):
        super().__init__()
        self.obs_dim, self.latent_dim = obs_dim, latent_dim
        self.encoder = mlp([obs_dim, *hidden, 2 * latent_dim], nn.Tanh, orthogonal=False)
        self.decoder = mlp([latent_dim, *hidden, obs_dim], nn.Tanh, orthogonal=False)

    def encode(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_sigma = self.encoder(s).chunk(2, dim=-1)
        return mu, log_sigma.clamp(-8.0, 2.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def loss(self, s: torch.Tensor, beta: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
        mu, log_sigma = self.encode(s)
        z = gaussian_rsample(mu, log_sigma)  # pathwise: the ELBO's gradient flows through z = μ + σ ⊙ ε
        recon = 0.5 * ((self.decode(z) - s) ** 2).sum(-1).mean()
        kl = gaussian_kl_standard_normal(mu, log_sigma).mean()
        return recon + beta * kl, {"recon": recon.item(), "kl": kl.item()}


class Transition(nn.Module):
    """p_ψ(z'|z, a) = N(z + f_ψ(z, a), diag σ_ψ²): the model predicts the *change* of the latent state.

    ``action`` is a one-hot (or straight-through one-hot) float tensor (*B, n_actions), so gradients can
    flow into it. ``forward(z, action)`` returns ``(mu, log_sigma)``, each (*B, latent_dim); σ is one learned
    number per latent dimension, shared by all states. ``loss(z, action, z_next)`` is the mean NLL.
    """

    def __init__(self, latent_dim: int, n_actions: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        self.latent_dim, self.n_actions = latent_dim, n_actions
        self.net = mlp([latent_dim + n_actions, *hidden, latent_dim], nn.Tanh, orthogonal=False)
        self.log_sigma = nn.Parameter(torch.full((latent_dim,), -2.0))

    def forward(self, z: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = z + self.net(torch.cat([z, action], dim=-1))  # residual: a model that predicts "no change" starts right
        return mu, self.log_sigma.expand_as(mu)

    def loss(self, z: torch.Tensor, action: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        mu, log_sigma = self(z, action)
        return gaussian_nll(z_next, mu, log_sigma).mean()


class RewardModel(nn.Module):
    """p_ψ(r, continue | z'): the reward r_{t+1} (mean) and the logit of "the episode goes on after s_{t+1}".

    ``forward(z)`` returns ``(reward, continue_logit)``, each (*B,). ``loss(z, reward, terminated)`` is the
    squared reward error plus the binary cross-entropy of the continue flag (1 - terminated); truncation by a
    time limit is *not* a termination and is not learned.
    """

    def __init__(self, latent_dim: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        self.net = mlp([latent_dim, *hidden, 2], nn.Tanh, orthogonal=False)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reward, continue_logit = self.net(z).unbind(-1)
        return reward, continue_logit

    def loss(self, z: torch.Tensor, reward: torch.Tensor, terminated: torch.Tensor) -> torch.Tensor:
        reward_hat, continue_logit = self(z)
        bce = F.binary_cross_entropy_with_logits(continue_logit, 1.0 - terminated.float())
        return ((reward_hat - reward) ** 2).mean() + bce


@dataclass
class Dream:
    """An imagined batch of B trajectories of H steps.

    - ``z``: latent states (H + 1, B, K), z_0 first;
    - ``actions``: actions as one-hot floats (H, B, n_actions) (straight-through in pathwise mode);
    - ``log_probs``, ``entropy``: log π_θ(a_t|z_t) and the policy's entropy (H, B);
    - ``rewards``: predicted r_{t+1} (H, B); ``continues``: predicted P(not terminated at s_{t+1}) (H, B).
    """

    z: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    entropy: torch.Tensor
    rewards: torch.Tensor
    continues: torch.Tensor


def imagine(
    policy: nn.Module,
    transition: Transition,
    reward_model: RewardModel,
    z0: torch.Tensor,
    horizon: int,
    *,
    pathwise: bool = False,
    generator: torch.Generator | None = None,
) -> Dream:
    """Roll ``policy`` (latents (B, K) -> logits (B, n_actions)) for ``horizon`` steps inside the model from z0 (B, K).

    ``pathwise=False``: actions are sampled and the dream is cut from the graph (z detached), so only the
    log-probabilities carry gradients — what the score-function estimator needs. ``pathwise=True``: actions
    are straight-through one-hot samples (forward: the sampled action; backward: the gradient of the
    probabilities, notebook 07) and next latents are reparameterized samples z' = μ + σ ⊙ ε, so the predicted
    rewards and continue probabilities are differentiable in the policy's parameters through the model.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    z = z0 if pathwise else z0.detach()
    zs, actions, log_probs, entropies, rewards, continues = [z], [], [], [], [], []
    for _ in range(horizon):
        dist = Categorical(logits=policy(z))
        u = torch.rand(z.shape[0], generator=generator, device=z.device)
        index = (dist.probs.detach().cumsum(-1) < u[:, None]).sum(-1).clamp(max=dist.probs.shape[-1] - 1)
        one_hot = F.one_hot(index, dist.probs.shape[-1]).to(z.dtype)
        if pathwise:
            # value: the sampled one-hot action; gradient: that of the probabilities (straight-through)
            action = (one_hot - dist.probs).detach() + dist.probs
        else:
            action = one_hot
        log_probs.append(dist.log_prob(index))
        entropies.append(dist.entropy())
        mu, log_sigma = transition(z, action)
        z = gaussian_rsample(mu, log_sigma, generator=generator)  # z' = μ + σ ⊙ ε
        if not pathwise:
            z = z.detach()  # score function: no gradient through the dynamics
        reward, continue_logit = reward_model(z)
        zs.append(z)
        actions.append(action)
        rewards.append(reward)
        continues.append(torch.sigmoid(continue_logit))
    return Dream(
        torch.stack(zs), torch.stack(actions), torch.stack(log_probs), torch.stack(entropies),
        torch.stack(rewards), torch.stack(continues),
    )  # fmt: skip


def dream_returns(rewards: torch.Tensor, continues: torch.Tensor, gamma: float) -> torch.Tensor:
    """Expected reward-to-go G_t of a dream, weighting each reward by the chance the episode is still alive.

    ``rewards`` r_{t+1} and ``continues`` c_{t+1} have shape (H, B); returns (H, B) with
    G_t = r_{t+1} + γ c_{t+1} G_{t+1} and G_{H-1} = r_H (no bootstrap beyond the horizon). G_0 is the dream's
    return: Σ_t γ^t (Π_{k=1}^{t} c_k) r_{t+1}. Differentiable in both inputs.
    """
    if rewards.shape != continues.shape or rewards.dim() != 2:
        raise ValueError(f"rewards {tuple(rewards.shape)} and continues {tuple(continues.shape)} must both be (H, B)")
    out = []
    g = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        g = rewards[t] + (gamma * continues[t] * g if t < rewards.shape[0] - 1 else 0.0)
        out.append(g)
    return torch.stack(out[::-1])
