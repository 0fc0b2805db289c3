import math

import gymnasium as gym
import numpy as np
import pytest

from course_utils import Trajectory, discounted_return, make_env, mean_and_stderr, rollout


def balance(obs):
    """Push toward where the pole falls: survives CartPole for hundreds of steps."""
    return int(obs[2] + obs[3] > 0)


def test_discounted_return_matches_the_definition():
    rewards = [1.0, -2.0, 3.0, 0.5]
    gamma = 0.9
    expected = 1.0 - 2.0 * 0.9 + 3.0 * 0.81 + 0.5 * 0.729
    assert discounted_return(rewards, gamma) == pytest.approx(expected)
    assert discounted_return(rewards, 1.0) == pytest.approx(sum(rewards))
    assert discounted_return(rewards, 0.0) == 1.0
    assert discounted_return([], 0.9) == 0.0


@pytest.mark.parametrize("gamma", [-0.1, 1.01, math.nan])
def test_discounted_return_rejects_gamma_outside_unit_interval(gamma):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        discounted_return([1.0], gamma)


def test_discounted_return_rejects_2d_rewards():
    with pytest.raises(ValueError, match="1-D"):
        discounted_return([[1.0, 2.0]], 0.9)


def test_rollout_records_a_consistent_trajectory():
    env = make_env("CartPole-v1", seed=0)
    traj = rollout(env, lambda obs: 0, seed=0)  # always pushing left tips the pole quickly
    assert isinstance(traj, Trajectory)
    T = len(traj)
    assert 5 < T < 100
    assert traj.obs.shape == (T + 1, 4) and traj.actions.shape == (T,) and traj.rewards.shape == (T,)
    assert traj.terminated and not traj.truncated
    assert abs(traj.obs[-1, 2]) > 0.2 or abs(traj.obs[-1, 0]) > 2.4  # left in a terminal state
    assert traj.discounted_return(0.5) == pytest.approx(discounted_return(traj.rewards, 0.5))


def test_rollout_reports_time_limit_as_truncation():
    env = gym.make("CartPole-v1", max_episode_steps=25)
    traj = rollout(env, balance, seed=1)
    assert len(traj) == 25
    assert traj.truncated and not traj.terminated


def test_rollout_max_steps_truncates():
    env = make_env("CartPole-v1", seed=0)
    traj = rollout(env, balance, seed=0, max_steps=10)
    assert len(traj) == 10 and traj.truncated and not traj.terminated


def test_rollout_same_seed_same_trajectory():
    a = rollout(make_env("CartPole-v1", seed=0), balance, seed=5)
    b = rollout(make_env("CartPole-v1", seed=1), balance, seed=5)
    assert np.array_equal(a.obs, b.obs) and np.array_equal(a.actions, b.actions)


def test_mean_and_stderr():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    mean, se = mean_and_stderr(x)
    assert mean == 2.5
    assert se == pytest.approx(np.std(x, ddof=1) / 2)
    with pytest.raises(ValueError, match="at least 2"):
        mean_and_stderr([1.0])


def test_stderr_predicts_the_spread_of_means():
    rng = np.random.default_rng(0)
    samples = rng.exponential(3.0, size=(2000, 50))  # 2000 estimates from 50 samples each
    predicted = np.mean([mean_and_stderr(row)[1] for row in samples])
    observed = samples.mean(axis=1).std()
    assert predicted == pytest.approx(observed, rel=0.1)
