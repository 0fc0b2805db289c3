"""Gradient estimators for ∇_θ E_{z∼p_θ(z)}[f(z)]: score function, reparameterization, Gumbel-softmax.

The course treats reinforcement learning as one case of gradient estimation.
These helpers are derived and checked against exact gradients in

- notebook 06 (score function versus reparameterization:
  :func:`score_function_surrogate`, :func:`gaussian_rsample`,
  :func:`gaussian_kl_standard_normal`); the score function itself is derived
  with the policy gradient (notebook 02);
- notebook 07 (discrete choices and stochastic computation graphs:
  :func:`gumbel_noise`, :func:`gumbel_max_sample`, :func:`gumbel_softmax_sample`,
  :func:`straight_through`, and :func:`score_function_surrogate` again).

Notation (lectures): ⊥ is ``detach`` (stop-gradient); f is the cost, τ the
temperature (a float here, never a trajectory). Shapes: ``(..., K)`` means any
batch shape followed by K categories or K latent dimensions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "gaussian_kl_standard_normal",
    "gaussian_rsample",
    "gumbel_max_sample",
    "gumbel_noise",
    "gumbel_softmax_sample",
    "score_function_surrogate",
    "straight_through",
]


def _as_float_tensor(name: str, value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    return value


def score_function_surrogate(
    log_prob: torch.Tensor, cost: torch.Tensor | float, baseline: torch.Tensor | float | None = None
) -> torch.Tensor:
    """The surrogate ``⊥(cost − baseline) · log_prob`` whose gradient is the score-function estimator.

    Explained in notebook 06 (section 7) and used for every stochastic node in
    notebook 07 (section 7); the identity behind it is derived in notebook 02. For samples ``z ∼ p_θ`` with
    ``log_prob = log p_θ(z)``, the gradient of ``surrogate.mean()`` is the
    score-function (REINFORCE) estimate of ∇_θ E[f(z)]:
    mean of (f(z) − b) ∇_θ log p_θ(z). The cost and the baseline are detached,
    so no gradient flows through them; if f also depends on θ directly (a
    differentiable cost), add ``cost.mean()`` to the loss yourself (notebook 07,
    stochastic computation graphs). Minimising the surrogate minimises E[f];
    its *value* is not the expected cost (see the lectures' pitfall).

    Shapes: ``log_prob`` ``(N,)`` (or any batch shape, already summed over
    event dimensions); ``cost`` and ``baseline`` broadcastable to it without
    changing its shape. Returns a tensor of ``log_prob``'s shape, one term per
    sample; average it for the estimate.
    """
    log_prob = _as_float_tensor("log_prob", log_prob)
    cost = torch.as_tensor(cost, dtype=log_prob.dtype, device=log_prob.device)
    advantage = (
        cost if baseline is None else cost - torch.as_tensor(baseline, dtype=log_prob.dtype, device=log_prob.device)
    )
    try:
        shape = torch.broadcast_shapes(log_prob.shape, advantage.shape)
    except RuntimeError:
        shape = None
    if shape != log_prob.shape:
        raise ValueError(
            f"cost (and baseline) of shape {tuple(advantage.shape)} do not match log_prob of shape "
            f"{tuple(log_prob.shape)}: give one cost per sample, and sum log_prob over event dimensions first "
            "(a (N,) cost against an (N, 1) log_prob silently broadcasts to (N, N))"
        )
    return advantage.detach() * log_prob


def gaussian_rsample(
    mu: torch.Tensor, log_sigma: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Reparameterized sample z = μ + σ ⊙ ε with ε ∼ N(0, I) and σ = exp(log σ).

    Explained in notebook 06. Gradients flow to ``mu`` and ``log_sigma``
    (the pathwise derivative); the noise ε carries none. Shapes: ``mu`` and
    ``log_sigma`` broadcastable, e.g. ``(N, K)``; returns their broadcast shape.
    Pass a seeded ``torch.Generator`` for reproducible noise.
    """
    mu = _as_float_tensor("mu", mu)
    log_sigma = _as_float_tensor("log_sigma", log_sigma)
    try:
        shape = torch.broadcast_shapes(mu.shape, log_sigma.shape)
    except RuntimeError:
        raise ValueError(f"mu {tuple(mu.shape)} and log_sigma {tuple(log_sigma.shape)} do not broadcast") from None
    eps = torch.randn(shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + log_sigma.exp() * eps  # z = μ + σ ⊙ ε: differentiable in μ and σ, ε is fixed noise


def gaussian_kl_standard_normal(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) in closed form, summed over the last (latent) dimension.

    Explained in notebook 06: per dimension ½(μ² + σ² − 1) − log σ.
    Shapes: ``mu``, ``log_sigma`` ``(..., K)``; returns ``(...)``.
    """
    mu = _as_float_tensor("mu", mu)
    log_sigma = _as_float_tensor("log_sigma", log_sigma)
    if mu.dim() == 0:
        raise ValueError("mu needs a last (latent) dimension to sum over; use shape (..., K)")
    try:
        torch.broadcast_shapes(mu.shape, log_sigma.shape)
    except RuntimeError:
        raise ValueError(f"mu {tuple(mu.shape)} and log_sigma {tuple(log_sigma.shape)} do not broadcast") from None
    return (0.5 * (mu**2 + torch.exp(2 * log_sigma) - 1) - log_sigma).sum(-1)


def _check_logits(logits) -> torch.Tensor:
    logits = _as_float_tensor("logits", logits)
    if logits.dim() == 0 or logits.shape[-1] < 2:
        raise ValueError(f"logits need a last dimension of K >= 2 categories, got shape {tuple(logits.shape)}")
    return logits


def gumbel_noise(shape, generator: torch.Generator | None = None, dtype=None, device=None) -> torch.Tensor:
    """Standard Gumbel(0, 1) noise g = −log(−log U), U ∼ Uniform(0, 1), of the given ``shape``.

    Explained in notebook 07 (inverse of the Gumbel CDF exp(−exp(−g))).
    U is kept inside (0, 1) so that g is always finite.
    """
    u = torch.rand(shape, generator=generator, dtype=dtype, device=device)
    tiny = torch.finfo(u.dtype).tiny
    u = u.clamp(min=tiny, max=1.0 - torch.finfo(u.dtype).eps)
    return -torch.log(-torch.log(u))


def gumbel_max_sample(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Exact categorical sample argmax_k (logits_k + g_k), g_k ∼ Gumbel(0, 1) i.i.d.

    Explained in notebook 07. ``logits`` ``(..., K)`` are unnormalized log-probabilities
    log π_k + c. Returns the sampled indices, ``(...)`` int64 (``F.one_hot`` makes
    them one-hot). Draws the same noise as :func:`gumbel_softmax_sample` for the
    same generator state, so the two agree on the argmax.
    """
    logits = _check_logits(logits)
    g = gumbel_noise(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
    return torch.argmax(logits.detach() + g, dim=-1)


def gumbel_softmax_sample(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Relaxed one-hot sample softmax((logits + g) / τ), g ∼ Gumbel(0, 1) i.i.d.

    Explained in notebook 07 (Jang et al. 2017; Maddison et al. 2017). Shapes:
    ``logits`` ``(..., K)``; returns ``(..., K)``, each row on the probability
    simplex, differentiable in ``logits``. As τ → 0 rows approach one-hot
    vectors (and the gradient's bias vanishes while its variance grows); as
    τ grows they approach the uniform vector 1/K.
    """
    logits = _check_logits(logits)
    if isinstance(tau, torch.Tensor):
        tau = float(tau)
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not tau > 0:
        raise ValueError(f"the temperature tau must be a positive number, got {tau!r}")
    g = gumbel_noise(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
    return torch.softmax((logits + g) / tau, dim=-1)


def straight_through(soft: torch.Tensor) -> torch.Tensor:
    """Straight-through estimator: forward the one-hot argmax of ``soft``, backward ``soft``'s gradient.

    Explained in notebook 07. Returns ``(hard − soft).detach() + soft``, whose
    value is exactly ``one_hot(argmax soft)`` and whose gradient is the
    identity onto ``soft``. Shapes: ``soft`` ``(..., K)``; returns ``(..., K)``.
    """
    soft = _check_logits(soft)
    hard = F.one_hot(soft.argmax(dim=-1), num_classes=soft.shape[-1]).to(soft.dtype)
    return (hard - soft).detach() + soft  # value: hard; gradient: that of soft
