"""TRPO's pieces (course_utils.algorithms.trpo, notebook 09): Fisher-vector products, conjugate gradient,
the line search's guarantees, and a short training run."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils import parameters_to_vector

from course_utils.algorithms import trpo
from course_utils.algorithms.common import TrainResult
from course_utils.networks import CategoricalPolicy


def small_policy_and_states(seed=0, n_states=16, obs_dim=3, n_actions=3):
    torch.manual_seed(seed)
    policy = CategoricalPolicy(obs_dim, n_actions, hidden=(5,)).double()
    for p in policy.parameters():  # larger output weights than the default init: a policy far from uniform
        p.data.normal_(0.0, 0.7)
    obs = torch.randn(n_states, obs_dim, dtype=torch.float64)
    return policy, obs


def explicit_fisher(policy, obs):
    """F = mean_s Σ_a π(a|s) ∇log π(a|s) ∇log π(a|s)ᵀ, from per-(s, a) gradients: (n_params, n_params)."""
    params = list(policy.parameters())
    n = sum(p.numel() for p in params)
    F = torch.zeros(n, n, dtype=torch.float64)
    for s in range(len(obs)):
        log_pi = torch.log_softmax(policy(obs[s]), -1)
        for a in range(len(log_pi)):
            score = trpo.flat_grad(log_pi[a], params)
            F += log_pi[a].exp().detach() * torch.outer(score, score)
    return F / len(obs)


def test_fisher_vector_product_matches_the_explicit_fisher_matrix():
    policy, obs = small_policy_and_states()
    params = list(policy.parameters())
    F = explicit_fisher(policy, obs)
    with torch.no_grad():
        old_logits = policy(obs)
    kl = trpo.mean_kl(old_logits, policy(obs))
    assert abs(kl.item()) < 1e-12, "KL of the policy from itself must be 0"
    fvp = trpo.make_fisher_vector_product(kl, params)
    fvp_damped = trpo.make_fisher_vector_product(trpo.mean_kl(old_logits, policy(obs)), params, damping=0.3)
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        v = torch.randn(F.shape[0], dtype=torch.float64, generator=generator)
        torch.testing.assert_close(fvp(v), F @ v, rtol=1e-8, atol=1e-10)
        torch.testing.assert_close(fvp_damped(v), F @ v + 0.3 * v, rtol=1e-8, atol=1e-10)
    assert torch.allclose(F, F.T) and torch.linalg.eigvalsh(F).min() > -1e-10, "F must be symmetric PSD"


def test_conjugate_gradient_matches_an_exact_solve():
    generator = torch.Generator().manual_seed(0)
    n = 12
    M = torch.randn(n, n, dtype=torch.float64, generator=generator)
    A = M @ M.T + 0.5 * torch.eye(n, dtype=torch.float64)  # symmetric positive definite
    b = torch.randn(n, dtype=torch.float64, generator=generator)
    x = trpo.conjugate_gradient(lambda v: A @ v, b, n_iters=3 * n, tol=1e-24)
    torch.testing.assert_close(x, torch.linalg.solve(A, b), rtol=1e-6, atol=1e-8)
    # Few iterations: not exact, but the residual still shrinks below that of x = 0.
    x3 = trpo.conjugate_gradient(lambda v: A @ v, b, n_iters=3)
    assert torch.linalg.norm(A @ x3 - b) < torch.linalg.norm(b)


def test_conjugate_gradient_solves_the_fisher_system_of_a_network():
    policy, obs = small_policy_and_states(seed=2)
    params = list(policy.parameters())
    F = explicit_fisher(policy, obs) + 0.1 * torch.eye(sum(p.numel() for p in params), dtype=torch.float64)
    with torch.no_grad():
        old_logits = policy(obs)
    fvp = trpo.make_fisher_vector_product(trpo.mean_kl(old_logits, policy(obs)), params, damping=0.1)
    g = torch.randn(F.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    x = trpo.conjugate_gradient(fvp, g, n_iters=200, tol=1e-26)
    torch.testing.assert_close(x, torch.linalg.solve(F, g), rtol=1e-5, atol=1e-7)


def line_search_setup(seed):
    policy, obs = small_policy_and_states(seed=seed, n_states=32)
    generator = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        old_logits = policy(obs)
        actions = torch.distributions.Categorical(logits=old_logits).sample()
    old_log_probs = torch.log_softmax(old_logits, -1).gather(1, actions[:, None]).squeeze(1)
    advantages = torch.randn(len(obs), dtype=torch.float64, generator=generator)
    surrogate = lambda: trpo.surrogate_objective(policy, obs, actions, old_log_probs, advantages)  # noqa: E731
    kl = lambda: trpo.policy_kl(policy, obs, old_logits)  # noqa: E731
    return policy, surrogate, kl, generator


@pytest.mark.parametrize("seed", range(4))
def test_line_search_never_accepts_a_step_beyond_the_kl_budget_or_without_improvement(seed):
    policy, surrogate, kl, generator = line_search_setup(seed)
    params = list(policy.parameters())
    old = parameters_to_vector(params).detach().clone()
    base = surrogate().item()
    max_kl = 0.01
    g = trpo.flat_grad(surrogate(), params)
    directions = [
        5.0 * g / g.norm(),  # uphill, far too long: must backtrack
        -g / g.norm(),  # downhill: never improves, must be rejected
        *(torch.randn(old.shape, dtype=torch.float64, generator=generator) for _ in range(4)),
    ]
    outcomes = []
    for full_step in directions:
        result = trpo.line_search(params, full_step, surrogate, kl, max_kl, backtrack_coef=0.5, max_backtracks=12)
        now = parameters_to_vector(params).detach()
        if result.accepted:
            torch.testing.assert_close(now, old + result.fraction * full_step)
            assert kl().item() <= max_kl, "an accepted step must respect the KL budget"
            assert surrogate().item() > base, "an accepted step must improve the surrogate"
            assert result.kl == pytest.approx(kl().item())
            assert result.improvement == pytest.approx(surrogate().item() - base)
        else:
            torch.testing.assert_close(now, old, rtol=0, atol=0)  # rejected: θ restored exactly
        outcomes.append(result.accepted)
        torch.nn.utils.vector_to_parameters(old.clone(), params)
    assert outcomes[0] and not outcomes[1], "uphill should be accepted after backtracking, downhill rejected"


def test_natural_step_has_the_requested_quadratic_kl():
    policy, surrogate, kl, _ = line_search_setup(7)
    params = list(policy.parameters())
    g = trpo.flat_grad(surrogate(), params)
    fvp = trpo.make_fisher_vector_product(kl(), params)
    step = trpo.natural_step(g, fvp, max_kl=0.02, cg_iters=50)
    assert 0.5 * (step @ fvp(step)).item() == pytest.approx(0.02, rel=1e-6)
    assert (g @ step).item() > 0, "the natural step must point uphill"


def test_short_training_run_returns_a_train_result_and_respects_the_kl_budget():
    config = trpo.TRPOConfig.fast(total_steps=2 * 8 * 64, n_steps=64, seed=3)
    updates = []
    result = trpo.train(config, on_update=lambda steps, policy: updates.append(steps) or False, progress_bar=False)
    assert isinstance(result, TrainResult)
    assert result.steps == config.total_steps and updates == [512, 1024]
    assert len(result.extras["kl"]) == 2 and max(result.extras["kl"]) <= config.max_kl
    assert len(result.episode_returns) == len(result.episode_end_steps) > 0
    assert result.policy(torch.zeros(1, 4)).shape == (1, 2)


def test_train_stops_when_on_update_says_so_and_checks_its_config():
    result = trpo.train(trpo.TRPOConfig.fast(n_steps=32), on_update=lambda steps, policy: True, progress_bar=False)
    assert result.steps == 8 * 32 and len(result.extras["kl"]) == 1
    with pytest.raises(ValueError, match="max_kl"):
        trpo.train(trpo.TRPOConfig.fast(max_kl=0.0), progress_bar=False)
    with pytest.raises(ValueError, match="backtrack_coef"):
        trpo.train(trpo.TRPOConfig.fast(backtrack_coef=1.5), progress_bar=False)
