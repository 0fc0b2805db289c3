"""The course's reference score-function estimator for tabular MDPs (notebook 02).

:func:`score_function_gradients` is kept out of :mod:`course_utils.tabular` so
that a grading sandbox can hide it (and :mod:`course_utils.returns`, which it
uses) from an assignment that asks students to write it, while
:mod:`course_utils.tabular` stays importable. ``from course_utils.tabular
import score_function_gradients`` loads it from here.
"""

from __future__ import annotations

import numpy as np
import torch

from .returns import returns_to_go
from .tabular import DEFAULT_MAX_STEPS, TabularMDP, _check_max_steps, _Sampler, softmax_policy

__all__ = ["score_function_gradients"]


def score_function_gradients(
    mdp: TabularMDP,
    theta,
    n_episodes: int,
    rng: np.random.Generator,
    weighting: str = "total",
    baseline=None,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> np.ndarray:
    """One Monte Carlo estimate of ∇_θ J(θ) per sampled episode: shape (n_episodes, S, A) (notebook 02).

    ``theta`` (S, A) are the softmax logits. Episodes come from
    :func:`sample_episode` in order, so the same ``rng`` state gives the same
    episodes. With the score of a softmax row,
    ∇_θ log π_θ(a|s) = onehot(a) − π_θ(·|s) on row s (zero elsewhere):

    - ``weighting="total"``: R_γ Σ_t ∇ log π_θ(a_t|s_t) (the lectures' simple REINFORCE);
    - ``weighting="reward_to_go"``: Σ_t γ^t G_t ∇ log π_θ(a_t|s_t).

    ``baseline`` is subtracted from the weight: ``None``; a number b
    (R_γ − b, or G_t − b); or an (S,) array b(s) (R_γ − b(s_t), or G_t − b(s_t)).
    None of these choices adds bias: the mean over episodes converges to
    ∇_θ J(θ) as computed by autograd through :func:`exact_J` (up to the
    truncation bound of ``max_steps``, see :func:`sample_episode`).
    """
    if weighting not in ("total", "reward_to_go"):
        raise ValueError(f"weighting must be 'total' or 'reward_to_go', got {weighting!r}")
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, (int, np.integer)) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive integer, got {n_episodes!r}")
    theta_t = torch.as_tensor(theta.detach() if isinstance(theta, torch.Tensor) else theta, dtype=torch.float64)
    if tuple(theta_t.shape) != (mdp.n_states, mdp.n_actions):
        raise ValueError(
            f"theta must have shape (S, A) = ({mdp.n_states}, {mdp.n_actions}), got {tuple(theta_t.shape)}"
        )
    pi = softmax_policy(theta_t).numpy()
    if baseline is None:
        b = np.zeros(mdp.n_states)
    else:
        b = np.asarray(baseline.detach() if isinstance(baseline, torch.Tensor) else baseline, dtype=np.float64)
        if b.ndim == 0:
            b = np.full(mdp.n_states, float(b))
        if b.shape != (mdp.n_states,) or not np.all(np.isfinite(b)):
            raise ValueError(
                f"baseline must be None, a number, or a finite (S,) = ({mdp.n_states},) array b(s), got shape {b.shape}"
            )
    sampler, max_steps = _Sampler(mdp, pi), _check_max_steps(max_steps)
    grads = np.zeros((n_episodes, mdp.n_states, mdp.n_actions))
    for i in range(n_episodes):
        traj = sampler.episode(rng, max_steps)  # = sample_episode(mdp, pi, rng, max_steps)
        s, a = traj.obs[:-1], traj.actions
        score = -pi[s]  # (T, A): ∇ log π(a_t|s_t) on row s_t ...
        score[np.arange(len(a)), a] += 1.0  # ... = onehot(a_t) − π(·|s_t)
        if weighting == "total":
            weight = traj.discounted_return(mdp.gamma) - b[s]
        else:
            weight = mdp.gamma ** np.arange(len(a)) * (returns_to_go(traj.rewards, mdp.gamma) - b[s])
        np.add.at(grads[i], s, weight[:, None] * score)  # a state visited twice collects both terms
    return grads
