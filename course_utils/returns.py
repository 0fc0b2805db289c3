"""Returns-to-go, discounted returns for batches of rollouts, and GAE advantages.

Derived in notebook 03 (``returns_to_go``: the reward-to-go of one episode) and
notebook 05 (``discounted_returns`` with bootstrapping, ``gae_advantages``);
notebook 04 uses them as the targets of a learned baseline. Each notebook writes
its own version first and checks that it agrees with these.

Symbols (lecture notation, ``rewards[t]`` is r_{t+1}, the reward that follows a_t)::

    G_t = r_{t+1} + γ r_{t+2} + γ² r_{t+3} + ...   (return-to-go from step t)
    δ_t = r_{t+1} + γ V(s_{t+1}) - V(s_t)            (TD error)
    A_t = δ_t + γλ δ_{t+1} + (γλ)² δ_{t+2} + ...     (GAE advantage)

Batched arrays come from vector environments, time first (T steps, N envs)::

    rewards, terminated, truncated, values, next_values    (T, N)   (or (T,) for one env)

``next_values[t]`` is V(s_{t+1}) of the *real* next state: at an episode end
that is the final state the episode stopped in, not the first state of the next
episode, which the vector environment has already reset to.

The batched functions accept NumPy arrays or torch tensors and return the same
kind (tensors keep their dtype and device). The reverse scans loop over time in
NumPy, vectorised over environments: for T of a few hundred this is faster than
the same loop over small torch tensors.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["discounted_returns", "gae_advantages", "returns_to_go"]


def _check_gamma(gamma: float, name: str = "gamma") -> None:
    if not 0.0 <= gamma <= 1.0:  # also rejects NaN
        raise ValueError(f"the discount {name} must lie in [0, 1], got {gamma}")


def returns_to_go(rewards, gamma: float) -> np.ndarray:
    """G_t = Σ_{k≥t} γ^{k-t} r_{k+1} for every step t of ONE complete episode.

    ``rewards`` has shape (T,) with ``rewards[t] = r_{t+1}``; the result has
    shape (T,), float64, and ``returns_to_go(rewards, gamma)[0]`` is the
    episode's discounted return R_γ. Computed by one reverse scan,
    G_t = r_{t+1} + γ G_{t+1} with G_T = 0, in O(T) instead of the O(T²) double
    sum. Nothing is bootstrapped: the episode is assumed to end after its last
    reward (notebook 03). For batches from vector environments, with episode
    boundaries and truncation, use :func:`discounted_returns`.
    """
    _check_gamma(gamma)
    r = np.asarray(rewards.detach().cpu() if isinstance(rewards, torch.Tensor) else rewards, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"returns_to_go expects the rewards of one episode, shape (T,), got shape {r.shape}")
    G = np.zeros_like(r)
    running = 0.0
    for t in range(len(r) - 1, -1, -1):
        running = r[t] + gamma * running  # G_t = r_{t+1} + γ G_{t+1}
        G[t] = running
    return G


def _as_numpy(x, name: str, shape: tuple[int, ...] | None, dtype) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    array = np.asarray(x, dtype=dtype)
    if shape is not None and array.shape != shape:
        raise ValueError(
            f"{name} has shape {array.shape} but rewards have shape {shape}: every input is one number per step and "
            "environment, shaped (T, N) (time first) or (T,)"
        )
    return array


def _like(result: np.ndarray, template):
    """Return ``result`` as the same kind of array as ``template`` (tensor: same dtype and device)."""
    if isinstance(template, torch.Tensor):
        dtype = template.dtype if template.is_floating_point() else torch.get_default_dtype()
        return torch.as_tensor(result, dtype=dtype, device=template.device)
    return result


def discounted_returns(rewards, terminated, truncated, gamma: float, next_values=None):
    """Discounted returns G_t for a (T, N) batch from vector environments, episode by episode.

    The reverse scan G_t = r_{t+1} + γ G_{t+1} restarts wherever an episode
    ended, and what it adds after step t depends on *why* the episode ended::

        terminated[t]       : G_t = r_{t+1}                       (terminal state: nothing follows)
        truncated[t]        : G_t = r_{t+1} + γ V(s_{t+1})        (cut by a time limit: the task went on)
        t = T-1, not ended  : G_t = r_{t+1} + γ V(s_{t+1})        (the rollout was cut here)
        otherwise           : G_t = r_{t+1} + γ G_{t+1}

    ``next_values`` (T, N) holds V(s_{t+1}) of the real next state (see the
    module docstring). Without it the bootstrap is 0: pure Monte Carlo
    returns, exact for episodes that terminated inside the batch and too small
    near a truncation or the end of the rollout. ``terminated`` and
    ``truncated`` are boolean (T, N). Returns G, shape (T, N). Notebook 05.
    """
    _check_gamma(gamma)
    r = _as_numpy(rewards, "rewards", None, np.float64)
    if r.ndim == 0:
        raise ValueError("rewards must have a time axis: shape (T, N) or (T,)")
    term = _as_numpy(terminated, "terminated", r.shape, bool)
    trunc = _as_numpy(truncated, "truncated", r.shape, bool)
    bootstrap = np.zeros_like(r) if next_values is None else _as_numpy(next_values, "next_values", r.shape, np.float64)

    G = np.zeros_like(r)
    G_next = np.zeros(r.shape[1:])  # G_{t+1}; unused at t = T-1, where `cut` is true
    for t in range(len(r) - 1, -1, -1):
        cut = trunc[t] | (t == len(r) - 1)  # the data stops after step t but the episode did not end
        continuation = np.where(cut, bootstrap[t], G_next)  # bootstrap from V(s_{t+1}), or keep scanning
        G[t] = r[t] + gamma * ~term[t] * continuation  # a terminal state is worth 0: no bootstrap after termination
        G_next = G[t]
    return _like(G, rewards)


def gae_advantages(rewards, values, next_values, terminated, truncated, gamma: float, lam: float):
    """Generalised advantage estimates A_t and the critic's targets A_t + V(s_t), for (T, N) batches.

    With V(s_{t+1}) = ``next_values[t]`` (the real next state's value)::

        δ_t = r_{t+1} + γ (1 - terminated_t) V(s_{t+1}) - V(s_t)
        A_t = δ_t + γλ (1 - terminated_t)(1 - truncated_t) A_{t+1},      A_T = 0

    The TD error bootstraps after a truncation but not after a termination; the
    sum of later TD errors stops at any episode end and at the end of the
    rollout. λ = 0 gives the one-step TD error δ_t; λ = 1 gives the discounted
    return minus the baseline, ``discounted_returns(..., next_values) - values``
    (when ``next_values[t] == values[t+1]`` inside episodes, as in a rollout).
    λ trades the bias of the learned V for the variance of Monte Carlo returns.

    ``values`` and ``next_values`` are (T, N) predictions of the critic, taken
    as constants (no gradient flows through them). Returns ``(advantages,
    returns)``, both (T, N), where ``returns = advantages + values`` is the
    λ-return, the regression target for V. Notebook 05.
    """
    _check_gamma(gamma)
    _check_gamma(lam, name="lam (λ)")
    r = _as_numpy(rewards, "rewards", None, np.float64)
    if r.ndim == 0:
        raise ValueError("rewards must have a time axis: shape (T, N) or (T,)")
    v = _as_numpy(values, "values", r.shape, np.float64)
    v_next = _as_numpy(next_values, "next_values", r.shape, np.float64)
    term = _as_numpy(terminated, "terminated", r.shape, bool)
    trunc = _as_numpy(truncated, "truncated", r.shape, bool)

    delta = r + gamma * ~term * v_next - v  # TD error: no bootstrap from a terminal state
    continues = ~(term | trunc)  # does step t+1 belong to the same episode?
    advantages = np.zeros_like(r)
    A_next = np.zeros(r.shape[1:])  # A_T = 0: nothing after the last collected step
    for t in range(len(r) - 1, -1, -1):
        A_next = delta[t] + gamma * lam * continues[t] * A_next
        advantages[t] = A_next
    return _like(advantages, rewards), _like(advantages + v, rewards)
