"""The replay buffer stores what it is given, forgets the oldest first and samples uniformly."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_utils.replay import PrioritizedReplayBuffer, ReplayBuffer


def fill(buffer, values, obs_dim=2):
    """Add one transition per value v: obs = (v, v), action = v % 3, reward = v, next_obs = obs + 1."""
    for v in values:
        obs = np.full(obs_dim, v, dtype=np.float32)
        buffer.add(obs, v % 3, float(v), obs + 1, terminated=(v % 5 == 0))


def draw(buffer, n_batches, key="reward"):
    """Concatenate ``n_batches`` minibatches of the largest allowed size (every stored transition's worth)."""
    return torch.cat([buffer.sample(len(buffer))[key] for _ in range(n_batches)])


def test_stores_one_transition_exactly():
    buffer = ReplayBuffer(10, (3,), seed=0)
    buffer.add(np.array([1.0, 2.0, 3.0]), 1, 0.5, np.array([4.0, 5.0, 6.0]), True)
    assert len(buffer) == 1
    batch = buffer.sample(1)
    assert set(batch) == {"obs", "action", "reward", "next_obs", "terminated"}
    assert torch.equal(batch["obs"], torch.tensor([[1.0, 2.0, 3.0]]))
    assert torch.equal(batch["next_obs"], torch.tensor([[4.0, 5.0, 6.0]]))
    assert batch["action"].tolist() == [1] and batch["action"].dtype == torch.int64
    assert batch["reward"].tolist() == [0.5] and batch["reward"].dtype == torch.float32
    assert batch["terminated"].tolist() == [1.0] and batch["terminated"].dtype == torch.float32


def test_sample_shapes_and_dtypes():
    buffer = ReplayBuffer(100, (4, 84, 84), obs_dtype=np.uint8, seed=0)
    frame = np.zeros((4, 84, 84), dtype=np.uint8)
    for _ in range(8):
        buffer.add(frame, 0, 1.0, frame, False)
    batch = buffer.sample(8)
    assert batch["obs"].shape == (8, 4, 84, 84) and batch["obs"].dtype == torch.uint8
    assert batch["next_obs"].shape == (8, 4, 84, 84)
    assert batch["action"].shape == batch["reward"].shape == batch["terminated"].shape == (8,)


def test_ring_overwrites_the_oldest_first():
    capacity = 5
    buffer = ReplayBuffer(capacity, (2,), seed=0)
    fill(buffer, range(8))  # 0..7: 0, 1, 2 are overwritten by 5, 6, 7 in that order
    assert len(buffer) == capacity
    assert buffer.obs[:, 0].tolist() == [5, 6, 7, 3, 4], "slot i must hold the newest transition written there"
    assert buffer.pos == 3, "the next write goes to the slot of the oldest transition"
    stored = set(draw(buffer, 100).tolist())
    assert stored == {3.0, 4.0, 5.0, 6.0, 7.0}, (
        f"samples must come from the last {capacity} transitions only, got {stored}"
    )


def test_each_field_stays_with_its_transition_after_wrapping():
    buffer = ReplayBuffer(7, (2,), seed=1)
    fill(buffer, range(20))
    batch = {
        key: torch.cat(parts)
        for key, parts in zip(
            ("obs", "action", "reward", "next_obs", "terminated"), zip(*[buffer.sample(7).values() for _ in range(30)])
        )
    }
    v = batch["reward"]
    assert torch.equal(batch["obs"][:, 0], v) and torch.equal(batch["next_obs"][:, 0], v + 1)
    assert torch.equal(batch["action"], v.long() % 3)
    assert torch.equal(batch["terminated"], (v.long() % 5 == 0).float())


def test_batched_add_equals_single_adds_in_order():
    single, batched = ReplayBuffer(6, (2,), seed=3), ReplayBuffer(6, (2,), seed=3)
    values = np.arange(10)
    fill(single, values)
    for chunk in np.split(values, [3, 4, 8]):  # batches of 3, 1, 4, 2 wrap around the ring
        obs = np.repeat(chunk[:, None], 2, axis=1).astype(np.float32)
        batched.add(obs, chunk % 3, chunk.astype(float), obs + 1, chunk % 5 == 0)
    for name in ("obs", "action", "reward", "next_obs", "terminated"):
        assert np.array_equal(getattr(single, name), getattr(batched, name)), name
    assert (single.pos, len(single)) == (batched.pos, len(batched))
    from_single, from_batched = single.sample(6), batched.sample(6)
    for key, value in from_single.items():
        assert torch.equal(value, from_batched[key]), key


def test_sampling_is_uniform_over_stored_transitions():
    n_stored, n_draws = 20, 40_000
    buffer = ReplayBuffer(n_stored, (1,), seed=0)
    fill(buffer, range(n_stored), obs_dim=1)
    counts = np.bincount(draw(buffer, n_draws // n_stored).long().numpy(), minlength=n_stored)
    # Pearson's chi-square statistic under H0 "every transition equally likely" has mean df and
    # variance 2 df (df = n_stored - 1); 6 standard deviations above the mean is a p-value below 1e-4.
    expected = counts.sum() / n_stored
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    df = n_stored - 1
    assert chi2 < df + 6 * np.sqrt(2 * df), (
        f"sampling frequencies {counts} are not uniform (chi-square {chi2:.1f}, df {df})"
    )


def test_only_stored_slots_are_sampled_before_the_buffer_is_full():
    buffer = ReplayBuffer(1000, (2,), seed=0)
    fill(buffer, [10, 11, 12])
    assert set(draw(buffer, 100).tolist()) == {10.0, 11.0, 12.0}


def test_same_seed_same_minibatches_other_seed_different():
    def batches(seed):
        buffer = ReplayBuffer(50, (2,), seed=seed)
        fill(buffer, range(80))
        return [buffer.sample(16)["reward"] for _ in range(3)]

    first, again, other = batches(7), batches(7), batches(8)
    assert all(torch.equal(a, b) for a, b in zip(first, again)), "the same seed must give the same minibatches"
    assert not all(torch.equal(a, b) for a, b in zip(first, other)), (
        "a different seed should give different minibatches"
    )


def test_truncation_is_not_stored_as_termination():
    """A CartPole episode cut by a short time limit must leave terminated = 0 on its last transition."""
    env = gym.make("CartPole-v1", max_episode_steps=5)
    buffer = ReplayBuffer(10, env.observation_space.shape, seed=0)
    obs, _ = env.reset(seed=0)
    truncated = False
    while not truncated:
        action = 0 if obs[3] > 0 else 1  # push against the pole's rotation: it cannot fall within 5 steps
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated)
        obs = next_obs
    assert truncated and not terminated
    assert len(buffer) == 5
    assert np.all(buffer.terminated[:5] == 0.0), "a time-limit truncation must be stored with terminated = 0"
    assert np.array_equal(buffer.next_obs[4], next_obs), "the last next_obs must be the real final state, not a reset"


def test_termination_is_stored():
    env = gym.make("CartPole-v1")
    buffer = ReplayBuffer(600, env.observation_space.shape, seed=0)
    obs, _ = env.reset(seed=0)
    terminated = truncated = False
    while not (terminated or truncated):
        next_obs, reward, terminated, truncated, _ = env.step(1)  # always push right: the pole falls quickly
        buffer.add(obs, 1, reward, next_obs, terminated)
        obs = next_obs
    assert terminated and not truncated
    assert buffer.terminated[: len(buffer)].tolist() == [0.0] * (len(buffer) - 1) + [1.0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (dict(capacity=0, obs_shape=(2,)), "capacity"),
        (dict(capacity=10, obs_shape=(0,)), "obs_shape"),
        (dict(capacity=10, obs_shape=(2,), seed=-1), "seed"),
    ],
)
def test_bad_construction_is_refused(args, message):
    with pytest.raises(ValueError, match=message):
        ReplayBuffer(**{"seed": 0, **args})


def test_seed_is_required():
    with pytest.raises(TypeError):
        ReplayBuffer(10, (2,))


def test_sampling_more_than_stored_is_refused():
    buffer = ReplayBuffer(10, (2,), seed=0)
    with pytest.raises(ValueError, match="holds only 0"):
        buffer.sample(1)
    fill(buffer, range(3))
    with pytest.raises(ValueError, match="cannot sample 4 transitions: the buffer holds only 3"):
        buffer.sample(4)
    with pytest.raises(ValueError, match="batch_size"):
        buffer.sample(0)


@pytest.mark.parametrize(
    ("obs", "action", "reward", "next_obs", "terminated", "message"),
    [
        (np.zeros(3), 0, 0.0, np.zeros(3), False, "obs has shape"),
        (np.zeros(2), 0, 0.0, np.zeros(3), False, "next_obs has shape"),
        (np.zeros((4, 2)), np.zeros(3, int), np.zeros(4), np.zeros((4, 2)), np.zeros(4, bool), "action has shape"),
        (np.zeros((4, 2)), np.zeros(4, int), 0.0, np.zeros((4, 2)), np.zeros(4, bool), "reward has shape"),
        (np.zeros(2), 0, 0.0, np.zeros(2), [False], "terminated has shape"),
        (np.zeros(2), 0.5, 0.0, np.zeros(2), False, "integers"),
        (np.zeros((11, 2)), np.zeros(11, int), np.zeros(11), np.zeros((11, 2)), np.zeros(11, bool), "capacity 10"),
    ],
)
def test_wrong_shapes_are_refused_with_a_clear_message(obs, action, reward, next_obs, terminated, message):
    buffer = ReplayBuffer(10, (2,), seed=0)
    with pytest.raises(ValueError, match=message):
        buffer.add(obs, action, reward, next_obs, terminated)
    assert len(buffer) == 0, "a refused add must store nothing"


def test_sampled_tensors_do_not_alias_the_buffer():
    buffer = ReplayBuffer(4, (2,), seed=0)
    fill(buffer, range(4))
    batch = buffer.sample(4)
    batch["obs"] += 100.0
    assert buffer.obs.max() < 10, "changing a sampled batch must not change the stored transitions"


def test_latest_returns_the_newest_transitions_in_time_order():
    buffer = ReplayBuffer(5, (2,), seed=0)
    fill(buffer, range(3))
    assert buffer.latest(2)["reward"].tolist() == [1.0, 2.0]
    fill(buffer, range(3, 9))  # wraps around: slots hold 5, 6, 7, 8, 4
    latest = buffer.latest(4)
    assert latest["reward"].tolist() == [5.0, 6.0, 7.0, 8.0]
    assert latest["obs"][:, 0].tolist() == [5.0, 6.0, 7.0, 8.0] and latest["next_obs"][:, 0].tolist() == [
        6.0,
        7.0,
        8.0,
        9.0,
    ]
    assert buffer.latest(5)["reward"].tolist() == [4.0, 5.0, 6.0, 7.0, 8.0]
    with pytest.raises(ValueError, match="latest 1 to 5"):
        buffer.latest(6)


# --- prioritized replay ---------------------------------------------------------------------------


def prioritized(n_stored, priorities=None, **kwargs):
    """A PrioritizedReplayBuffer holding rewards 0..n_stored-1, with the given |δ| per transition (if any)."""
    buffer = PrioritizedReplayBuffer(n_stored, (1,), seed=0, **kwargs)
    fill(buffer, range(n_stored), obs_dim=1)
    if priorities is not None:
        buffer.update_priorities(np.arange(n_stored), np.asarray(priorities, dtype=np.float32))
    return buffer


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_prioritized_draws_are_proportional_to_priority_to_the_alpha(alpha):
    priorities = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    buffer = prioritized(5, priorities, alpha=alpha)
    counts = np.bincount(draw(buffer, 8_000).long().numpy(), minlength=5)
    expected = counts.sum() * priorities**alpha / (priorities**alpha).sum()
    chi2, df = float(((counts - expected) ** 2 / expected).sum()), 4
    assert chi2 < df + 6 * np.sqrt(2 * df), f"draws {counts} do not follow p^α: expected {expected.round(0)}"


def test_alpha_zero_is_uniform_replay_with_unit_weights():
    buffer = prioritized(5, [1.0, 2.0, 3.0, 4.0, 100.0], alpha=0.0)
    counts = np.bincount(draw(buffer, 4_000).long().numpy(), minlength=5)
    expected = counts.sum() / 5
    assert float(((counts - expected) ** 2 / expected).sum()) < 4 + 6 * np.sqrt(8), f"not uniform: {counts}"
    assert torch.all(buffer.sample(5)["weight"] == 1.0)


def test_importance_weights_and_the_beta_schedule():
    priorities = np.array([1.0, 3.0, 3.0, 3.0])  # α = 1: P = (1/10, 3/10, 3/10, 3/10), N P = (0.4, 1.2, 1.2, 1.2)
    buffer = prioritized(4, priorities, alpha=1.0, beta=0.5, beta_steps=4)
    betas, rare_drawn = [], 0
    for _ in range(6):
        betas.append(buffer.beta)
        batch = buffer.sample(4)
        rare = batch["reward"] == 0.0
        rare_drawn += int(rare.sum())
        assert torch.all(batch["weight"][rare] == 1.0), "the least likely transition gets the largest weight, 1"
        expected = (1.2 / 0.4) ** -betas[-1]  # (N P)^-β over its largest value
        assert torch.allclose(batch["weight"][~rare], torch.tensor(expected, dtype=torch.float32))
    assert betas == [0.5, 0.625, 0.75, 0.875, 1.0, 1.0], "β rises linearly to 1 over beta_steps draws, then stays"
    assert rare_drawn > 0, "the check of the rare transition's weight above never ran"
    assert set(batch) == {"obs", "action", "reward", "next_obs", "terminated", "weight", "index"}
    assert torch.equal(batch["reward"].long(), batch["index"]), "index is where each drawn transition is stored"


def test_new_transitions_get_the_largest_priority_so_far():
    buffer = prioritized(8, alpha=0.5)
    assert np.all(buffer.scaled[:8] == 1.0), "before any update every transition has priority 1"
    buffer.update_priorities(np.array([0, 1]), np.array([-16.0, 0.5], dtype=np.float32))  # |δ| counts, not its sign
    assert buffer.top == pytest.approx(16.0 + 1e-6)
    fill(buffer, [20, 21], obs_dim=1)  # overwrites slots 0 and 1 (capacity 8)
    assert buffer.scaled[0] == buffer.scaled[1] == pytest.approx(16.0**0.5)
    obs = np.zeros((3, 1), dtype=np.float32)
    buffer.add(obs, np.zeros(3, dtype=np.int64), np.zeros(3), obs, np.zeros(3))  # a batch of three: slots 2, 3, 4
    assert np.allclose(buffer.scaled[2:5], 16.0**0.5) and buffer.pos == 5


def test_a_transition_with_zero_error_is_still_drawn_sometimes():
    buffer = prioritized(2, [0.0, 0.0], alpha=1.0)
    assert set(draw(buffer, 50).tolist()) == {0.0, 1.0}, "p = |δ| + 1e-6 keeps every transition in play"


@pytest.mark.parametrize(
    ("index", "errors", "message"),
    [
        (np.array([0, 1]), np.array([1.0], dtype=np.float32), "matching"),
        (np.array([0]), np.array([np.nan], dtype=np.float32), "finite"),
    ],
)
def test_bad_priority_updates_are_refused(index, errors, message):
    buffer = prioritized(2)
    with pytest.raises(ValueError, match=message):
        buffer.update_priorities(index, errors)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [(dict(alpha=1.5), "alpha and beta"), (dict(beta=-0.1), "alpha and beta"), (dict(beta_steps=0), "beta_steps")],
)
def test_bad_prioritized_construction_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PrioritizedReplayBuffer(4, (1,), seed=0, **kwargs)
