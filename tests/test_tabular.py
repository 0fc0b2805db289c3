"""Tabular MDPs: validation, exact values and gradients, value iteration, sampling, the gymnasium env.

Statistical checks compare Monte Carlo averages with the exact numbers within a
few standard errors (seeded, so they are deterministic; the thresholds are wide
enough that an unbiased estimator fails them with negligible probability).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from course_utils import mean_and_stderr, rollout
from course_utils.tabular import (
    TabularEnv,
    TabularMDP,
    exact_J,
    exact_Q,
    exact_V,
    greedy_policy,
    make_example_mdp,
    sample_episode,
    score_function_gradients,
    softmax_policy,
    value_iteration,
)

Z_MAX = 4.5  # |z| bound per component: with ~50 components per test, a false alarm has probability < 1e-3

START, HALL, BRIDGE, COIN, TREASURE, PIT = range(6)
LEFT, RIGHT = 0, 1


@pytest.fixture
def mdp():
    return make_example_mdp(gamma=0.9)


def theta_of(seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.tensor(np.random.default_rng(seed).normal(0.0, scale, size=(6, 2)))


def two_state_parts():
    """A valid two-state MDP (one live state, one terminal) as keyword arguments."""
    P = np.zeros((2, 2, 2))
    P[0, 0] = [0.5, 0.5]
    P[0, 1] = [0.0, 1.0]
    P[1, :, 1] = 1.0
    return dict(
        P=P,
        R=np.array([[1.0, 2.0], [0.0, 0.0]]),
        p0=np.array([1.0, 0.0]),
        terminal=np.array([False, True]),
        gamma=0.9,
        state_names=("s", "end"),
        action_names=("a", "b"),
    )


# ----------------------------------------------------------------------------- validation


def test_valid_mdp_is_frozen_and_read_only():
    mdp = TabularMDP(**two_state_parts())
    assert (mdp.n_states, mdp.n_actions) == (2, 2)
    with pytest.raises(ValueError):
        mdp.P[0, 0, 0] = 0.3
    with pytest.raises(AttributeError):
        mdp.gamma = 0.5


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("P", np.ones((2, 2)), r"shape \(S, A, S\)"),
        ("P", np.full((2, 2, 2), 0.3), "must sum to 1"),
        ("P", np.array([[[1.5, -0.5], [0, 1]], [[0, 1], [0, 1]]]), "negative"),
        ("R", np.zeros((2, 3)), r"R must have shape \(S, A\)"),
        ("R", np.array([[np.nan, 0], [0, 0]]), "NaN"),
        ("p0", np.array([0.5, 0.2]), "p0 must sum to 1"),
        ("p0", np.array([0.0, 1.0]), "terminal states"),
        ("terminal", np.array([False, False, True]), r"terminal must have shape"),
        ("terminal", np.array([0, 2]), "booleans"),
        ("gamma", 1.5, r"\[0, 1\]"),
        ("state_names", ("s",), "state_names must be 2 distinct strings"),
        ("action_names", ("a", "a"), "action_names must be 2 distinct strings"),
    ],
)
def test_bad_mdp_is_rejected_with_a_clear_message(field, value, message):
    parts = two_state_parts()
    parts[field] = value
    with pytest.raises(ValueError, match=message):
        TabularMDP(**parts)


def test_terminal_state_must_absorb_with_zero_reward():
    parts = two_state_parts()
    parts["R"] = np.array([[1.0, 2.0], [0.0, 5.0]])
    with pytest.raises(ValueError, match="absorb with reward 0"):
        TabularMDP(**parts)
    parts = two_state_parts()
    parts["P"] = parts["P"].copy()
    parts["P"][1, 0] = [1.0, 0.0]
    with pytest.raises(ValueError, match="absorb"):
        TabularMDP(**parts)


def test_bad_policies_and_arguments_are_rejected(mdp):
    with pytest.raises(ValueError, match="shape"):
        exact_V(mdp, torch.full((5, 2), 0.5))
    with pytest.raises(ValueError, match="probability distribution"):
        exact_V(mdp, torch.full((6, 2), 0.6))
    with pytest.raises(ValueError, match="shape"):
        exact_J(mdp, torch.zeros(6, 3))
    with pytest.raises(ValueError, match="must sum to 1"):
        sample_episode(mdp, np.full((6, 2), 0.3), np.random.default_rng(0))
    with pytest.raises(ValueError, match="max_steps"):
        sample_episode(mdp, np.full((6, 2), 0.5), np.random.default_rng(0), max_steps=0)
    with pytest.raises(ValueError, match="weighting"):
        score_function_gradients(mdp, torch.zeros(6, 2), 2, np.random.default_rng(0), weighting="rtg")
    with pytest.raises(ValueError, match="baseline"):
        score_function_gradients(mdp, torch.zeros(6, 2), 2, np.random.default_rng(0), baseline=np.zeros(3))
    with pytest.raises(ValueError, match="n_episodes"):
        score_function_gradients(mdp, torch.zeros(6, 2), 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="logits"):
        softmax_policy(torch.zeros(6))


def test_never_terminating_policy_at_gamma_one_is_an_error(mdp):
    loop = torch.zeros(6, 2)
    loop[[START, HALL], RIGHT] = 1.0  # start -> hall -> start -> ... forever
    loop[BRIDGE, RIGHT] = 1.0
    loop[COIN:, LEFT] = 1.0
    with pytest.raises(ValueError, match="not finite"):
        exact_V(mdp.with_gamma(1.0), loop)
    assert torch.allclose(exact_V(mdp, loop)[[START, HALL]], torch.zeros(2, dtype=torch.float64))  # γ < 1: worth 0


# ----------------------------------------------------------------------------- exact values and gradients


def test_exact_V_solves_the_bellman_expectation_equation(mdp):
    for seed in range(5):
        pi = softmax_policy(theta_of(seed, scale=2.0)).numpy()
        V = exact_V(mdp, torch.tensor(pi)).numpy()
        backup = (pi * (mdp.R + mdp.gamma * mdp.P @ V)).sum(axis=1)
        live = ~mdp.terminal
        np.testing.assert_allclose(V[live], backup[live], atol=1e-12)
        assert np.all(V[mdp.terminal] == 0)


def test_exact_Q_averages_to_V_and_backs_up_V(mdp):
    pi = softmax_policy(theta_of(1))
    V, Q = exact_V(mdp, pi), exact_Q(mdp, pi)
    torch.testing.assert_close((pi * Q).sum(-1), V)
    expected = torch.tensor(mdp.R) + mdp.gamma * torch.tensor(mdp.P) @ V
    torch.testing.assert_close(Q, expected)
    assert torch.all(Q[COIN:] == 0)


def test_exact_V_handles_batches_of_policies(mdp):
    thetas = torch.stack([theta_of(seed) for seed in range(4)])
    batched = exact_V(mdp, softmax_policy(thetas))
    one_by_one = torch.stack([exact_V(mdp, softmax_policy(t)) for t in thetas])
    torch.testing.assert_close(batched, one_by_one)
    torch.testing.assert_close(exact_J(mdp, thetas), one_by_one @ torch.tensor(mdp.p0))


def test_hand_computed_values_of_the_example(mdp):
    """The optimal values worked out by hand from the table in make_example_mdp's docstring."""
    greedy = torch.zeros(6, 2, dtype=torch.float64)
    greedy[[START, HALL, BRIDGE], [RIGHT, LEFT, RIGHT]] = 1.0
    greedy[COIN:, LEFT] = 1.0
    V = exact_V(mdp, greedy)
    v_hall = -1 + 0.9 * 0.8 * 10  # pay the toll, cross, open the chest
    v_start = 0.9 * 0.5 * v_hall / (1 - 0.9 * 0.5)  # V = γ (0.5 V(hall) + 0.5 V)
    assert V[BRIDGE].item() == pytest.approx(10)
    assert V[HALL].item() == pytest.approx(v_hall)
    assert V[START].item() == pytest.approx(v_start)


def test_monte_carlo_returns_agree_with_exact_J(mdp):
    rng = np.random.default_rng(1)
    for seed in (0, 1):
        theta = theta_of(seed)
        pi = softmax_policy(theta).numpy()
        returns = [sample_episode(mdp, pi, rng).discounted_return(mdp.gamma) for _ in range(10_000)]
        mean, se = mean_and_stderr(returns)
        J = exact_J(mdp, theta).item()
        assert abs(mean - J) < 4 * se, f"Monte Carlo J = {mean:.4f} ± {se:.4f} but exact J = {J:.4f}"


def test_autograd_gradient_of_exact_J_matches_finite_differences(mdp):
    theta = theta_of(2).requires_grad_()
    exact_J(mdp, theta).backward()
    h = 1e-6
    fd = torch.zeros(6, 2, dtype=torch.float64)
    for s, a in itertools.product(range(6), range(2)):
        e = torch.zeros(6, 2, dtype=torch.float64)
        e[s, a] = h
        fd[s, a] = (exact_J(mdp, theta.detach() + e) - exact_J(mdp, theta.detach() - e)) / (2 * h)
    torch.testing.assert_close(theta.grad, fd, atol=1e-7, rtol=1e-6)
    assert torch.all(theta.grad[COIN:] == 0), "terminal states' logits never act, so their gradient is zero"


def test_mean_episode_length_of_uniform_policy_is_short(mdp):
    """Expected number of steps, exactly: the value of reward 1 per step with γ = 1."""
    uniform = torch.full((6, 2), 0.5, dtype=torch.float64)
    steps = TabularMDP(
        mdp.P,
        np.where(mdp.terminal[:, None], 0.0, np.ones((6, 2))),
        mdp.p0,
        mdp.terminal,
        1.0,
        mdp.state_names,
        mdp.action_names,
    )
    mean_length = exact_V(steps, uniform) @ torch.tensor(mdp.p0)
    assert 1 < mean_length.item() < 10


# ----------------------------------------------------------------------------- value iteration


def test_value_iteration_solves_the_bellman_optimality_equation(mdp):
    Q, residuals = value_iteration(mdp, tol=1e-12)
    V = np.where(mdp.terminal, 0.0, Q.max(axis=1))
    np.testing.assert_allclose(Q, mdp.R + mdp.gamma * mdp.P @ V, atol=1e-11)
    assert residuals[-1] < 1e-12
    ratios = np.array(residuals[1:]) / np.array(residuals[:-1])
    assert np.all(ratios <= mdp.gamma + 1e-9), f"the residual must shrink by at least γ per sweep, got ratios {ratios}"


def test_greedy_policy_is_optimal_among_all_deterministic_and_random_policies(mdp):
    Q, _ = value_iteration(mdp)
    greedy = greedy_policy(Q)
    assert greedy.shape == (6,)
    V_star = exact_V(mdp, torch.eye(2, dtype=torch.float64)[greedy])
    np.testing.assert_allclose(V_star.numpy(), Q.max(axis=1) * ~mdp.terminal, atol=1e-9)
    for actions in itertools.product(range(2), repeat=3):  # every deterministic policy on the live states
        pi = torch.eye(2, dtype=torch.float64)[list(actions) + [0, 0, 0]]
        assert torch.all(exact_V(mdp, pi) <= V_star + 1e-9)
    thetas = torch.tensor(np.random.default_rng(3).normal(0, 3, size=(500, 6, 2)))
    assert torch.all(exact_J(mdp, thetas) <= V_star @ torch.tensor(mdp.p0) + 1e-9)
    assert list(greedy[:3]) != [greedy[0]] * 3, "the example's optimal policy should not be the same action everywhere"


def test_discount_changes_the_optimal_policy(mdp):
    """The docstring's claim: acting greedily on the next reward is optimal exactly for γ ≤ 1/7."""
    immediate = greedy_policy(mdp.R)  # best for the next reward only
    for gamma in (0.0, 0.1, 0.14):
        Q, _ = value_iteration(mdp.with_gamma(gamma))
        np.testing.assert_array_equal(greedy_policy(Q)[:3], immediate[:3])
    for gamma in (0.15, 0.5, 0.9):
        Q, _ = value_iteration(mdp.with_gamma(gamma))
        assert not np.array_equal(greedy_policy(Q)[:3], immediate[:3])


def test_value_iteration_reports_non_convergence():
    parts = two_state_parts()
    parts["P"] = parts["P"].copy()
    parts["P"][0, :] = [1.0, 0.0]  # never terminates
    parts["gamma"] = 1.0
    with pytest.raises(RuntimeError, match="did not reach"):
        value_iteration(TabularMDP(**parts), max_iters=50)


# ----------------------------------------------------------------------------- sampling and score-function gradients


def test_sample_episode_is_a_consistent_trajectory(mdp):
    pi = softmax_policy(theta_of(0)).numpy()
    a = sample_episode(mdp, pi, np.random.default_rng(7))
    b = sample_episode(mdp, pi, np.random.default_rng(7))
    assert np.array_equal(a.obs, b.obs) and np.array_equal(a.actions, b.actions)
    T = len(a)
    assert a.obs.shape == (T + 1,) and a.actions.shape == (T,) and a.rewards.shape == (T,)
    assert a.obs.dtype.kind == "i" and a.actions.dtype.kind == "i"
    assert a.terminated and not a.truncated and mdp.terminal[a.obs[-1]] and not mdp.terminal[a.obs[:-1]].any()
    np.testing.assert_array_equal(a.rewards, mdp.R[a.obs[:-1], a.actions])


def test_sample_episode_truncates_at_max_steps(mdp):
    loop = np.zeros((6, 2))
    loop[:, RIGHT] = 1.0  # start <-> hall forever
    traj = sample_episode(mdp, loop, np.random.default_rng(0), max_steps=7)
    assert len(traj) == 7 and traj.truncated and not traj.terminated


def test_sample_episode_draws_from_p0_and_P(mdp):
    rng = np.random.default_rng(4)
    uniform = np.full((6, 2), 0.5)
    trajs = [sample_episode(mdp, uniform, rng) for _ in range(5000)]
    first = np.array([t.obs[0] for t in trajs])
    share_start = np.mean(first == START)
    assert abs(share_start - 0.8) < 4 * np.sqrt(0.8 * 0.2 / len(first))
    after_hall_left = np.array(
        [t.obs[i + 1] for t in trajs for i in range(len(t)) if (t.obs[i], t.actions[i]) == (HALL, LEFT)]
    )
    share_pit = np.mean(after_hall_left == PIT)
    assert abs(share_pit - 0.2) < 4 * np.sqrt(0.2 * 0.8 / len(after_hall_left))


@pytest.mark.parametrize("weighting", ["total", "reward_to_go"])
@pytest.mark.parametrize("baseline", [None, 3.0, "V"], ids=["none", "constant", "state"])
def test_score_function_gradients_are_unbiased(mdp, weighting, baseline):
    theta = theta_of(5).requires_grad_()
    exact_J(mdp, theta).backward()
    if baseline == "V":
        baseline = exact_V(mdp, softmax_policy(theta.detach())).numpy()
    grads = score_function_gradients(
        mdp, theta, 10_000, np.random.default_rng(11), weighting=weighting, baseline=baseline
    )
    assert grads.shape == (10_000, 6, 2)
    assert np.all(grads[:, COIN:] == 0)
    mean, se = grads.mean(axis=0), grads.std(axis=0, ddof=1) / np.sqrt(len(grads))
    live = se > 0
    z = (mean[live] - theta.grad.numpy()[live]) / se[live]
    assert np.all(np.abs(z) < Z_MAX), f"{weighting}, baseline {baseline}: z-scores {np.round(z, 2)}"


def test_constant_baseline_shifts_each_estimate_by_b_times_the_score(mdp):
    """Episodes come from sample_episode in order, so the score sums can be recomputed from the same rng."""
    theta = theta_of(6)
    pi = softmax_policy(theta).numpy()
    rng = np.random.default_rng(3)
    score_sums = np.zeros((50, 6, 2))
    for i in range(50):
        traj = sample_episode(mdp, pi, rng)
        for s, a in zip(traj.obs[:-1], traj.actions):
            score_sums[i, s] += np.eye(2)[a] - pi[s]  # ∇ log softmax(θ[s])[a]
    plain = score_function_gradients(mdp, theta, 50, np.random.default_rng(3))
    shifted = score_function_gradients(mdp, theta, 50, np.random.default_rng(3), baseline=2.5)
    np.testing.assert_allclose(shifted, plain - 2.5 * score_sums, atol=1e-12)


def test_reward_to_go_equals_total_when_the_only_reward_comes_last():
    """With one reward at the very end, γ^t G_t = R_γ for every t: the two weightings coincide."""
    parts = two_state_parts()
    parts["R"] = np.array([[0.0, 2.0], [0.0, 0.0]])
    mdp = TabularMDP(**parts)
    theta = torch.tensor([[0.3, -0.2], [0.0, 0.0]], dtype=torch.float64)
    total = score_function_gradients(mdp, theta, 200, np.random.default_rng(0), weighting="total")
    rtg = score_function_gradients(mdp, theta, 200, np.random.default_rng(0), weighting="reward_to_go")
    np.testing.assert_allclose(total, rtg, atol=1e-12)


# ----------------------------------------------------------------------------- gymnasium environment


def test_tabular_env_passes_gymnasium_checks(mdp):
    check_env(TabularEnv(mdp, max_episode_steps=20), skip_render_check=True)


def test_tabular_env_rollout_is_reproducible_by_seed(mdp):
    pi = softmax_policy(theta_of(0)).numpy()

    def run(env_seed, policy_seed):
        policy_rng = np.random.default_rng(policy_seed)
        return rollout(TabularEnv(mdp), lambda s: int(policy_rng.choice(2, p=pi[s])), seed=env_seed)

    a, b, c = run(3, 0), run(3, 0), [run(seed, 0) for seed in range(4, 14)]
    assert (
        np.array_equal(a.obs, b.obs) and np.array_equal(a.actions, b.actions) and np.array_equal(a.rewards, b.rewards)
    )
    assert any(not np.array_equal(a.obs, other.obs) for other in c)
    assert a.obs.dtype.kind == "i" and a.terminated and mdp.terminal[a.obs[-1]]


def test_tabular_env_time_limit_is_truncation(mdp):
    env = TabularEnv(mdp, max_episode_steps=9)
    traj = rollout(env, lambda s: RIGHT, seed=0)  # right, right, ...: start <-> hall forever
    assert len(traj) == 9 and traj.truncated and not traj.terminated
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_tabular_env_samples_the_mdp(mdp):
    env = TabularEnv(mdp)
    env.reset(seed=0)
    outcomes = []
    for _ in range(3000):
        s, info = env.reset(options={"state": "hall"})  # start in the hall and cross the bridge
        assert s == HALL and info["state_name"] == "hall"
        s_next, reward, terminated, truncated, info = env.step(LEFT)
        assert reward == -1.0 and not truncated and info["state_name"] == mdp.state_names[s_next]
        outcomes.append(s_next)
    share_pit = np.mean(np.array(outcomes) == PIT)
    assert abs(share_pit - 0.2) < 4 * np.sqrt(0.2 * 0.8 / len(outcomes))
    env.reset(seed=1)
    with pytest.raises(ValueError, match="action"):
        env.step(5)
    with pytest.raises(ValueError, match="no state"):
        env.reset(options={"state": "attic"})
    with pytest.raises(ValueError, match="terminal"):
        env.reset(options={"state": PIT})
