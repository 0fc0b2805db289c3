"""TRPO: a natural-gradient step, scaled to a KL budget δ and checked by a backtracking line search.

Notebook 09 derives it on the exact tabular MDP and then builds it for a
neural policy. Each update collects a batch with π_old (the current policy),
estimates GAE advantages A_t with a critic V_φ, and maximises the surrogate

    L(θ) = mean( π_θ(a_t|s_t) / π_old(a_t|s_t) · A_t )      subject to   KL̄(θ) ≤ δ,

where KL̄(θ) = mean over the batch's states of KL(π_old(·|s_t) || π_θ(·|s_t)).
Near θ_old, L is linear with slope g = ∇_θ L and KL̄ is quadratic with Hessian F,
the Fisher information matrix, so the step is the natural gradient F⁻¹g scaled
to KL̄ ≈ δ::

    x   = F⁻¹ g                    by conjugate gradient, with F·v from double backprop
    Δθ  = sqrt(2δ / xᵀF x) · x     (½ Δθᵀ F Δθ = δ)

The quadratic model can be wrong, so the line search tries Δθ, ½Δθ, ¼Δθ, ...
(factor ``backtrack_coef``) and accepts the first step whose *exact* KL̄ is at
most δ and whose surrogate improved; if none qualifies, θ stays where it was.
The critic is trained separately by Adam on the λ-returns.

:func:`make_fisher_vector_product`, :func:`conjugate_gradient` and
:func:`line_search` are the three pieces, usable on their own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch.distributions import Categorical, kl_divergence
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ..networks import CategoricalPolicy
from .common import OnUpdate, TrainResult, advantages_and_returns, check_config, setup_actor_critic

__all__ = [
    "LineSearchResult",
    "TRPOConfig",
    "conjugate_gradient",
    "flat_grad",
    "line_search",
    "make_fisher_vector_product",
    "mean_kl",
    "natural_step",
    "policy_kl",
    "surrogate_objective",
    "train",
]


@dataclass
class TRPOConfig:
    """Hyperparameters of TRPO; ``TRPOConfig.fast()`` is the tiny CI budget."""

    env_id: str = "CartPole-v1"  # gymnasium environment (discrete actions, flat observations)
    total_steps: int = 100_000  # environment-step budget (all environments together)
    n_envs: int = 8  # N, environments stepped side by side (sync vector env)
    n_steps: int = 128  # T, steps per environment between updates: a batch is T·N transitions
    gamma: float = 0.99  # discount γ
    gae_lambda: float = 0.95  # GAE λ
    max_kl: float = 0.01  # δ, the largest mean KL(π_old || π_θ) an accepted step may have
    cg_iters: int = 10  # conjugate-gradient iterations for x ≈ F⁻¹g
    cg_damping: float = 0.1  # solve with F + damping·I: keeps CG stable where F is nearly singular
    backtrack_coef: float = 0.8  # the line search shrinks the step by this factor each time
    max_backtracks: int = 10  # steps tried before giving up (then θ is left unchanged)
    lr: float = 1e-3  # Adam step size of the critic (the actor has no learning rate: δ sets its step)
    critic_epochs: int = 10  # passes of the critic over each batch
    critic_minibatch_size: int = 256  # transitions per critic step
    normalize_advantages: bool = True  # rescale advantages to mean 0, std 1 within each batch
    hidden: tuple[int, ...] = (64, 64)  # hidden layer sizes of the actor and of the critic
    seed: int = 0  # seeds torch, NumPy, random and the environments

    @classmethod
    def fast(cls, **overrides) -> TRPOConfig:
        """A budget of a few seconds for tests and fast mode: same algorithm, fewer steps."""
        return cls(**{"total_steps": 5_120, **overrides})


def flat_grad(output: torch.Tensor, params: Sequence[torch.Tensor], create_graph: bool = False) -> torch.Tensor:
    """∇ of the scalar ``output`` with respect to ``params``, concatenated into one vector (n_params,)."""
    grads = torch.autograd.grad(output, params, create_graph=create_graph, retain_graph=True, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)])


def mean_kl(old_logits: torch.Tensor, new_logits: torch.Tensor) -> torch.Tensor:
    """KL̄ = mean over states of KL(π_old(·|s) || π_θ(·|s)), exact over actions; logits (B, n_actions).

    ``old_logits`` are constants (detached): at θ = θ_old the value and the
    gradient are 0 and the Hessian is the Fisher information matrix.
    """
    old = Categorical(logits=old_logits.detach(), validate_args=False)
    return kl_divergence(old, Categorical(logits=new_logits, validate_args=False)).mean()


def surrogate_objective(
    policy: CategoricalPolicy,
    obs: torch.Tensor,
    actions: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
) -> torch.Tensor:
    """L(θ) = mean(ρ_t A_t) with ρ_t = π_θ(a_t|s_t) / π_old(a_t|s_t); obs (B, obs_dim), the rest (B,).

    At θ = θ_old, ρ = 1, so L = mean(A_t) and ∇_θ L is the policy-gradient
    estimate mean(A_t ∇_θ log π_θ(a_t|s_t)) of A2C (notebook 05).
    """
    log_probs = torch.log_softmax(policy(obs), -1).gather(-1, actions[:, None]).squeeze(-1)
    return (torch.exp(log_probs - old_log_probs.detach()) * advantages.detach()).mean()


def policy_kl(policy: CategoricalPolicy, obs: torch.Tensor, old_logits: torch.Tensor) -> torch.Tensor:
    """KL̄(θ) of ``policy`` from the constant ``old_logits`` (B, n_actions) on the states ``obs`` (B, obs_dim)."""
    return mean_kl(old_logits, policy(obs))


def make_fisher_vector_product(
    kl: torch.Tensor, params: Sequence[torch.Tensor], damping: float = 0.0
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function v ↦ (F + damping·I) v, with F the Hessian of the scalar ``kl`` at the current ``params``.

    ``kl`` must be KL̄ between a detached π_old and π_θ, computed with θ = θ_old
    (see :func:`mean_kl`); its Hessian there is the Fisher matrix of the policy.
    Double backprop: g(θ) = ∇_θ KL̄ is computed once with a graph, then
    F v = ∇_θ (g(θ) · ⊥v) costs one more backward pass per product. F itself
    (n_params × n_params) is never formed. Vectors are flat, (n_params,).
    """
    params = list(params)
    grad_kl = flat_grad(kl, params, create_graph=True)  # ∇KL̄, zero in value but with a graph to θ

    def fisher_vector_product(v: torch.Tensor) -> torch.Tensor:
        return flat_grad(grad_kl @ v.detach(), params) + damping * v

    return fisher_vector_product


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, n_iters: int = 10, tol: float = 1e-10
) -> torch.Tensor:
    """x ≈ A⁻¹ b for a symmetric positive-definite A given only as ``matvec(v) = A v``; b (n,) -> x (n,).

    Each iteration costs one product A v and moves to the exact minimiser of
    ½xᵀAx − bᵀx along a new direction conjugate to the previous ones: in exact
    arithmetic it solves an n-dimensional system in at most n iterations, and
    a few iterations already capture the largest eigen-directions. Stops early
    once the squared residual ‖b − A x‖² is below ``tol``.
    """
    x = torch.zeros_like(b)
    r = b.clone()  # residual b − A x (x = 0)
    p = b.clone()  # search direction
    r_dot = r @ r
    for _ in range(n_iters):
        if r_dot < tol:
            break
        Ap = matvec(p)
        alpha = r_dot / (p @ Ap)  # exact minimiser along p
        x = x + alpha * p
        r = r - alpha * Ap
        r_dot_new = r @ r
        p = r + (r_dot_new / r_dot) * p  # the next direction, conjugate (Aᵀ-orthogonal) to the previous ones
        r_dot = r_dot_new
    return x


def natural_step(
    g: torch.Tensor, fisher_vector_product: Callable[[torch.Tensor], torch.Tensor], max_kl: float, cg_iters: int = 10
) -> torch.Tensor:
    """TRPO's full step Δθ = sqrt(2δ / xᵀFx) · x with x ≈ F⁻¹ g: the natural gradient, scaled so that ½ΔθᵀFΔθ = δ."""
    x = conjugate_gradient(fisher_vector_product, g, n_iters=cg_iters)
    xFx = (x @ fisher_vector_product(x)).clamp_min(1e-12)
    return torch.sqrt(2 * max_kl / xFx) * x


@dataclass
class LineSearchResult:
    """What :func:`line_search` did: ``accepted`` (False: θ unchanged), ``fraction`` of the full step taken
    (0 if rejected), the exact ``kl`` and the surrogate ``improvement`` of the step taken (0, 0 if rejected),
    and ``tried``, the number of steps evaluated."""

    accepted: bool
    fraction: float
    kl: float
    improvement: float
    tried: int


@torch.no_grad()
def line_search(
    params: Sequence[torch.Tensor],
    full_step: torch.Tensor,
    surrogate: Callable[[], torch.Tensor],
    kl: Callable[[], torch.Tensor],
    max_kl: float,
    backtrack_coef: float = 0.8,
    max_backtracks: int = 10,
) -> LineSearchResult:
    """Try θ_old + c^k Δθ for k = 0, 1, ... and keep the first with KL̄ ≤ δ and a higher surrogate.

    ``surrogate()`` and ``kl()`` evaluate L(θ) and KL̄(θ) at the parameters'
    current values (the function writes each candidate into ``params``).
    If no candidate qualifies, the parameters are restored to θ_old.
    """
    params = list(params)
    old = parameters_to_vector(params).clone()
    base = float(surrogate())
    for k in range(max_backtracks):
        fraction = backtrack_coef**k
        vector_to_parameters(old + fraction * full_step, params)
        new_kl, improvement = float(kl()), float(surrogate()) - base
        if new_kl <= max_kl and improvement > 0:  # both conditions, measured exactly, not by the quadratic model
            return LineSearchResult(True, fraction, new_kl, improvement, k + 1)
    vector_to_parameters(old, params)
    return LineSearchResult(False, 0.0, 0.0, 0.0, max_backtracks)


def train(config: TRPOConfig, *, on_update: OnUpdate | None = None, progress_bar: bool = True) -> TrainResult:
    """Train an actor (:class:`CategoricalPolicy`) with TRPO and a critic (:class:`ValueNetwork`) with Adam.

    Seeds everything from ``config.seed`` (sub-environment i from
    ``config.seed * n_envs + i``); runs on CUDA if available.
    ``on_update(steps, policy)`` after each update may return True to stop.
    ``extras`` logs per update: ``update_steps``, ``kl`` (exact KL̄ of the
    step taken, 0 if rejected), ``accepted`` (1/0), ``step_fraction``,
    ``improvement`` (of the surrogate), ``entropy`` and ``value_loss``.
    """
    check_config(
        config,
        positive_ints=(
            "total_steps",
            "n_envs",
            "n_steps",
            "cg_iters",
            "max_backtracks",
            "critic_epochs",
            "critic_minibatch_size",
        ),
        positive=("lr", "max_kl"),
        unit_interval=("gamma", "gae_lambda", "backtrack_coef"),
        non_negative=("cg_damping",),
    )
    run = setup_actor_critic(config, "TRPO", progress_bar, optimize_actor=False)  # Adam for the critic only
    device, policy, value, collector, result = run.device, run.policy, run.value, run.collector, run.result
    params = list(policy.parameters())

    while collector.steps < config.total_steps:
        batch = collector.collect(config.n_steps)  # collected by π_old = the current policy
        result.episode_returns += batch.episode_returns
        result.episode_end_steps += batch.episode_end_steps
        advantages, returns = advantages_and_returns(
            batch, config.gamma, config.gae_lambda, config.normalize_advantages
        )
        obs, actions = batch.obs.flatten(0, 1), batch.actions.flatten()
        advantages, returns = advantages.flatten().float(), returns.flatten().float()
        with torch.no_grad():
            old_logits = policy(obs)
        old_log_probs = torch.log_softmax(old_logits, -1).gather(1, actions[:, None]).squeeze(1)

        surrogate = partial(surrogate_objective, policy, obs, actions, old_log_probs, advantages)
        kl = partial(policy_kl, policy, obs, old_logits)

        # 1. The natural-gradient direction, scaled to the KL budget δ.
        g = flat_grad(surrogate(), params)  # = the policy gradient estimate at θ_old (ρ = 1)
        fvp = make_fisher_vector_product(kl(), params, damping=config.cg_damping)
        full_step = natural_step(g, fvp, config.max_kl, config.cg_iters)
        # 2. Backtracking line search on the exact KL̄ and surrogate.
        search = line_search(
            params, full_step, surrogate, kl, config.max_kl, config.backtrack_coef, config.max_backtracks
        )
        # 3. The critic: a few epochs of regression onto the λ-returns ⊥Ĝ_t.
        for _ in range(config.critic_epochs):
            for idx in torch.randperm(len(obs), device=device).split(config.critic_minibatch_size):
                value_loss = (value(obs[idx]) - returns[idx]).pow(2).mean()
                run.optimizer.zero_grad()
                value_loss.backward()
                run.optimizer.step()

        with torch.no_grad():
            entropy = policy.distribution(obs).entropy().mean()
        result.steps = collector.steps
        result.log(
            update_steps=result.steps,
            kl=search.kl,
            accepted=float(search.accepted),
            step_fraction=search.fraction,
            improvement=search.improvement,
            entropy=entropy.item(),
            value_loss=value_loss.item(),
        )
        run.show_progress(batch)
        if on_update is not None and on_update(result.steps, policy):
            break
    return run.finish()
