import random

import numpy as np
import pytest
import torch

from course_utils import make_env, seed_everything


def draws():
    return random.random(), np.random.rand(), torch.rand(1).item()


def test_seed_everything_makes_all_three_generators_repeat():
    seed_everything(7)
    first = draws()
    seed_everything(7)
    assert draws() == first
    seed_everything(8)
    assert draws() != first


def test_seed_everything_returns_a_seeded_generator():
    a = seed_everything(3).integers(0, 10**9, size=5)
    b = seed_everything(3).integers(0, 10**9, size=5)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True, None])
def test_seed_everything_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="non-negative integer"):
        seed_everything(bad)


def episode_fingerprint(seed):
    env = make_env("CartPole-v1", seed=seed)
    obs, _ = env.reset()  # no seed: continues the seeded stream
    actions = [env.action_space.sample() for _ in range(20)]
    return obs, actions


def test_make_env_is_reproducible_per_seed():
    obs_a, actions_a = episode_fingerprint(11)
    obs_b, actions_b = episode_fingerprint(11)
    obs_c, actions_c = episode_fingerprint(12)
    assert np.array_equal(obs_a, obs_b) and actions_a == actions_b
    assert not np.array_equal(obs_a, obs_c)
    assert actions_a != actions_c


def test_make_env_passes_keyword_arguments_to_gym_make():
    env = make_env("CartPole-v1", seed=0, render_mode="rgb_array", max_episode_steps=7)
    assert env.render_mode == "rgb_array"
    assert env.spec.max_episode_steps == 7
