import numpy as np
import pytest
import torch

from course_utils import discounted_return
from course_utils.returns import discounted_returns, gae_advantages, returns_to_go

GAMMA, LAM = 0.9, 0.8


# Naive references, written from the definitions with explicit double loops --------------------------


def naive_returns_to_go(rewards, gamma):
    T = len(rewards)
    return np.array([sum(gamma ** (k - t) * rewards[k] for k in range(t, T)) for t in range(T)])


def naive_discounted_returns(r, term, trunc, gamma, next_values):
    """For every (t, i): sum rewards forward until the episode or the data ends, then bootstrap or not."""
    T, N = r.shape
    G = np.zeros((T, N))
    for i in range(N):
        for t in range(T):
            total, weight = 0.0, 1.0
            for k in range(t, T):
                total += weight * r[k, i]
                weight *= gamma
                if term[k, i]:
                    break  # terminal state: worth 0
                if trunc[k, i] or k == T - 1:
                    total += weight * next_values[k, i]  # cut by a time limit or by the end of the batch
                    break
            G[t, i] = total
    return G


def naive_gae(r, values, next_values, term, trunc, gamma, lam):
    T, N = r.shape
    delta = r + gamma * (1 - term) * next_values - values
    A = np.zeros((T, N))
    for i in range(N):
        for t in range(T):
            total, weight = 0.0, 1.0
            for k in range(t, T):
                total += weight * delta[k, i]
                weight *= gamma * lam
                if term[k, i] or trunc[k, i]:
                    break
            A[t, i] = total
    return A


def random_batch(seed, T=40, N=5):
    """Random rewards and episode ends; next_values[t] = values[t+1] inside episodes, as in a real rollout."""
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(T, N))
    term = rng.random((T, N)) < 0.08
    trunc = rng.random((T, N)) < 0.08  # sometimes both flags: termination must win
    values = rng.normal(size=(T, N))
    next_values = np.empty((T, N))
    next_values[:-1] = values[1:]
    ended = term | trunc
    next_values[ended] = rng.normal(size=ended.sum())  # V(final state) differs from V(reset state)
    next_values[-1] = rng.normal(size=N)
    assert term.any() and trunc.any() and (trunc & ~term).any()
    return r, term, trunc, values, next_values


# returns_to_go ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.99, 1.0])
def test_returns_to_go_matches_the_double_sum(gamma):
    rewards = np.random.default_rng(1).normal(size=30)
    G = returns_to_go(rewards, gamma)
    assert G.shape == (30,) and G.dtype == np.float64
    np.testing.assert_allclose(G, naive_returns_to_go(rewards, gamma), rtol=1e-12, atol=1e-12)
    assert G[0] == pytest.approx(discounted_return(rewards, gamma))  # G_0 is the episode's return R_γ


def test_returns_to_go_special_cases():
    rewards = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(returns_to_go(rewards, 0.0), rewards)  # γ = 0: only the next reward counts
    np.testing.assert_allclose(returns_to_go(rewards, 1.0), [6.0, 5.0, 3.0])  # γ = 1: sums of what is left
    np.testing.assert_allclose(returns_to_go(torch.tensor(rewards), 1.0), [6.0, 5.0, 3.0])
    assert returns_to_go([], 0.9).shape == (0,)


def test_returns_to_go_rejects_bad_input():
    with pytest.raises(ValueError, match="one episode"):
        returns_to_go(np.ones((3, 2)), 0.9)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        returns_to_go([1.0], 1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        returns_to_go([1.0], float("nan"))


# discounted_returns -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_discounted_returns_reverse_scan_equals_double_loop(seed):
    r, term, trunc, _, next_values = random_batch(seed)
    G = discounted_returns(r, term, trunc, GAMMA, next_values)
    np.testing.assert_allclose(G, naive_discounted_returns(r, term, trunc, GAMMA, next_values), rtol=1e-10)
    G0 = discounted_returns(r, term, trunc, GAMMA)  # no next_values: every bootstrap is 0
    np.testing.assert_allclose(G0, naive_discounted_returns(r, term, trunc, GAMMA, np.zeros_like(r)), rtol=1e-10)


def test_the_classic_bug_truncation_bootstraps_termination_does_not():
    # One environment, two episodes: the first is cut by a time limit after step 1,
    # the second terminates after step 3. V(s_2) = 10 (real final state of episode 1);
    # V(s_4) = 7 is the value of a terminal state's successor and must be ignored.
    r = np.array([1.0, 1.0, 1.0, 1.0])
    term = np.array([False, False, False, True])
    trunc = np.array([False, True, False, False])
    next_values = np.array([3.0, 10.0, 5.0, 7.0])
    G = discounted_returns(r, term, trunc, GAMMA, next_values)
    assert G[3] == 1.0, "after termination nothing is added: a terminal state is worth 0"
    assert G[2] == pytest.approx(1 + GAMMA * 1)
    assert G[1] == pytest.approx(1 + GAMMA * 10), "after truncation the return bootstraps from V(final state)"
    assert G[0] == pytest.approx(1 + GAMMA * G[1]), "the scan continues inside an episode"
    # Merging the two flags into one `done` (the old gym API) loses the bootstrap: the bug this guards against.
    merged = discounted_returns(r, term | trunc, np.zeros(4, bool), GAMMA, next_values)
    assert merged[1] == 1.0 and merged[1] != G[1]


def test_discounted_returns_bootstraps_the_last_row():
    r = np.zeros((3, 2))
    term, trunc = np.zeros((3, 2), bool), np.zeros((3, 2), bool)
    next_values = np.full((3, 2), 100.0)
    G = discounted_returns(r, term, trunc, 0.5, next_values)
    np.testing.assert_allclose(G[-1], [50.0, 50.0])  # the rollout was cut: r + γ V(s_T)
    np.testing.assert_allclose(G[0], [12.5, 12.5])
    term[-1, 0] = True
    assert discounted_returns(r, term, trunc, 0.5, next_values)[-1, 0] == 0.0  # unless the episode terminated


def test_discounted_returns_of_one_complete_episode_equal_returns_to_go():
    rewards = np.random.default_rng(3).normal(size=25)
    term = np.zeros(25, bool)
    term[-1] = True
    np.testing.assert_allclose(
        discounted_returns(rewards, term, np.zeros(25, bool), 0.97), returns_to_go(rewards, 0.97), rtol=1e-12
    )


def test_discounted_returns_keeps_the_array_type():
    r, term, trunc, _, next_values = random_batch(0)
    expected = discounted_returns(r, term, trunc, GAMMA, next_values)
    assert isinstance(expected, np.ndarray)
    G = discounted_returns(
        torch.tensor(r, dtype=torch.float32),
        torch.tensor(term),
        torch.tensor(trunc),
        GAMMA,
        torch.tensor(next_values, dtype=torch.float32),
    )
    assert isinstance(G, torch.Tensor) and G.dtype == torch.float32 and G.shape == r.shape
    np.testing.assert_allclose(G.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_discounted_returns_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="terminated has shape"):
        discounted_returns(np.zeros((4, 2)), np.zeros((4, 3), bool), np.zeros((4, 2), bool), 0.9)
    with pytest.raises(ValueError, match="next_values has shape"):
        discounted_returns(np.zeros((4, 2)), np.zeros((4, 2), bool), np.zeros((4, 2), bool), 0.9, np.zeros(4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        discounted_returns(np.zeros(2), np.zeros(2, bool), np.zeros(2, bool), -0.1)


# gae_advantages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_gae_reverse_scan_equals_double_loop(seed):
    r, term, trunc, values, next_values = random_batch(seed)
    advantages, returns = gae_advantages(r, values, next_values, term, trunc, GAMMA, LAM)
    np.testing.assert_allclose(advantages, naive_gae(r, values, next_values, term, trunc, GAMMA, LAM), rtol=1e-10)
    np.testing.assert_allclose(returns, advantages + values)  # the λ-return, the critic's target


@pytest.mark.parametrize("seed", range(3))
def test_gae_lambda_one_is_the_discounted_return_minus_the_baseline(seed):
    r, term, trunc, values, next_values = random_batch(seed)
    advantages, returns = gae_advantages(r, values, next_values, term, trunc, GAMMA, 1.0)
    G = discounted_returns(r, term, trunc, GAMMA, next_values)
    np.testing.assert_allclose(advantages, G - values, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(returns, G, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_gae_lambda_zero_is_the_td_error(seed):
    r, term, trunc, values, next_values = random_batch(seed)
    advantages, _ = gae_advantages(r, values, next_values, term, trunc, GAMMA, 0.0)
    np.testing.assert_allclose(advantages, r + GAMMA * ~term * next_values - values)


def test_gae_classic_bug_truncated_td_error_bootstraps_terminated_does_not():
    r = np.array([[1.0], [1.0]])
    values = np.array([[2.0], [3.0]])
    next_values = np.array([[9.0], [9.0]])
    trunc = np.array([[True], [False]])
    term = np.array([[False], [True]])
    advantages, _ = gae_advantages(r, values, next_values, term, trunc, GAMMA, LAM)
    assert advantages[0, 0] == pytest.approx(1 + GAMMA * 9 - 2), "truncated: δ uses V of the real final state"
    assert advantages[1, 0] == pytest.approx(1 - 3), "terminated: δ = r - V(s), no bootstrap"


def test_gae_accepts_tensors_and_rejects_bad_lambda():
    r, term, trunc, values, next_values = random_batch(1)
    t = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    advantages, returns = gae_advantages(
        t(r), t(values), t(next_values), torch.tensor(term), torch.tensor(trunc), GAMMA, LAM
    )
    assert isinstance(advantages, torch.Tensor) and advantages.dtype == torch.float32
    np.testing.assert_allclose(
        advantages.numpy(), naive_gae(r, values, next_values, term, trunc, GAMMA, LAM), rtol=1e-4, atol=1e-5
    )
    with pytest.raises(ValueError, match="lam"):
        gae_advantages(r, values, next_values, term, trunc, GAMMA, 1.2)
    with pytest.raises(ValueError, match="values has shape"):
        gae_advantages(r, values[:-1], next_values, term, trunc, GAMMA, LAM)
