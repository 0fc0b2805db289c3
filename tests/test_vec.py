import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Categorical

from course_utils import make_env, rollout, seed_everything
from course_utils.networks import CategoricalPolicy, ValueNetwork
from course_utils.vec import RolloutCollector, collect_episodes, make_vec_env, sample_actions

TAU = 0.02  # CartPole's time step: x_{t+1} = x_t + τ ẋ_t (explicit Euler)


class NextPosition(nn.Module):
    """A fake critic whose 'value' of a state is its cart position x: makes next_values checkable by physics."""

    def forward(self, obs):
        return obs[..., 0]


class Greedy(nn.Module):
    """Logits of the hand-written balancing rule a = [ϑ + ϑ̇ > 0], scaled so that sampling is ~deterministic."""

    def forward(self, obs):
        score = 100.0 * (obs[..., 2] + obs[..., 3])
        return torch.stack([-score, score], dim=-1)


def collect(seed, n_envs=4, n_steps=64, **env_kwargs):
    seed_everything(seed)
    policy, value = CategoricalPolicy(4, 2), ValueNetwork(4)
    collector = RolloutCollector(make_vec_env("CartPole-v1", n_envs, **env_kwargs), policy, value, seed=seed)
    return collector, [collector.collect(n_steps) for _ in range(2)]


@pytest.mark.parametrize("batch, n_actions, scale", [(1, 2, 1.0), (8, 2, 1.0), (5, 7, 3.0), (64, 3, 30.0)])
def test_sample_actions_draws_what_categorical_draws(batch, n_actions, scale):
    # Same seed, same logits: the same actions, bit-identical log-probabilities, and the RNG left in the same state.
    logits = scale * torch.randn(batch, n_actions, generator=torch.Generator().manual_seed(batch))
    for seed in range(20):
        torch.manual_seed(seed)
        dist = Categorical(logits=logits)
        expected = dist.sample()
        expected_log_prob, expected_rng = dist.log_prob(expected), torch.get_rng_state()
        torch.manual_seed(seed)
        action, log_prob = sample_actions(logits)
        assert action.dtype == torch.long and action.shape == log_prob.shape == (batch,)
        assert torch.equal(action, expected) and torch.equal(log_prob, expected_log_prob)
        assert torch.equal(torch.get_rng_state(), expected_rng), "sample_actions must consume torch's RNG alike"


ROLLOUT_FIELDS = ("obs", "actions", "log_probs", "rewards", "terminated", "truncated")


def textbook_rollout(seed, n_envs, n_steps):
    """The collector's loop written plainly with a Categorical per step: what RolloutCollector must reproduce."""
    seed_everything(seed)
    policy = CategoricalPolicy(4, 2)
    envs = make_vec_env("CartPole-v1", n_envs, max_episode_steps=20)  # short episodes: many resets in the batch
    obs, _ = envs.reset(seed=seed)
    envs.action_space.seed(seed)
    rows = []
    with torch.no_grad():
        for _ in range(n_steps):
            dist = Categorical(logits=policy(torch.as_tensor(obs, dtype=torch.float32)))
            action = dist.sample()
            next_obs, reward, terminated, truncated, _ = envs.step(action.numpy())
            rows.append((obs, action, dist.log_prob(action), reward, terminated, truncated))
            obs = next_obs
    return [torch.stack([torch.as_tensor(row[k]) for row in rows]) for k in range(len(ROLLOUT_FIELDS))]


def test_collector_gives_the_textbook_loops_batches_bit_for_bit():
    expected = textbook_rollout(5, n_envs=4, n_steps=120)
    seed_everything(5)
    envs = make_vec_env("CartPole-v1", 4, max_episode_steps=20)
    collector = RolloutCollector(envs, CategoricalPolicy(4, 2), seed=5)
    batches = [collector.collect(40) for _ in range(3)]  # episodes run on across batches
    got = [torch.cat([getattr(b, name) for b in batches]) for name in ROLLOUT_FIELDS]
    assert bool(got[4].any()) and bool(got[5].any()), "the test needs terminations and truncations"
    for name, x, y in zip(ROLLOUT_FIELDS, got, expected):
        assert torch.equal(x, y.to(x.dtype)), name


def test_make_vec_env_is_sync_with_same_step_autoreset():
    envs = make_vec_env("CartPole-v1", 3)
    assert isinstance(envs, gym.vector.SyncVectorEnv) and envs.num_envs == 3
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    with pytest.raises(ValueError, match="positive integer"):
        make_vec_env("CartPole-v1", 0)


def test_rollout_batch_shapes_and_types():
    collector, (batch, _) = collect(0, n_envs=4, n_steps=64)
    T, N = 64, 4
    assert batch.obs.shape == (T, N, 4) and batch.obs.dtype == torch.float32
    for name in ("actions", "log_probs", "rewards", "terminated", "truncated", "values", "next_values"):
        assert getattr(batch, name).shape == (T, N), name
    assert batch.actions.dtype == torch.long and batch.terminated.dtype == torch.bool
    assert (batch.n_steps, batch.n_envs) == (T, N) and collector.steps == 2 * T * N
    assert torch.all(batch.log_probs <= 0)


def test_log_probs_and_values_are_those_of_the_networks():
    seed_everything(0)
    policy, value = CategoricalPolicy(4, 2), ValueNetwork(4)
    batch = RolloutCollector(make_vec_env("CartPole-v1", 3), policy, value, seed=0).collect(20)
    with torch.no_grad():
        torch.testing.assert_close(batch.log_probs, policy.distribution(batch.obs).log_prob(batch.actions))
        torch.testing.assert_close(batch.values, value(batch.obs))


def test_same_seed_same_batches_and_other_seed_differs():
    _, (a1, a2) = collect(3)
    _, (b1, b2) = collect(3)
    _, (c1, _) = collect(4)
    for x, y in [(a1, b1), (a2, b2)]:
        for name in ("obs", "actions", "log_probs", "rewards", "terminated", "truncated", "values", "next_values"):
            assert torch.equal(getattr(x, name), getattr(y, name)), name
        assert x.episode_returns == y.episode_returns
    assert not torch.equal(a1.obs, c1.obs)


def test_next_values_use_the_real_final_state_not_the_reset_one():
    # A time limit of 12 steps gives truncations; a random policy also terminates some episodes earlier.
    seed_everything(0)
    envs = make_vec_env("CartPole-v1", 6, max_episode_steps=12)
    collector = RolloutCollector(envs, CategoricalPolicy(4, 2), NextPosition(), seed=0)
    batch = collector.collect(60)
    assert batch.terminated.any() and batch.truncated.any(), "the test needs both kinds of episode end"
    # With V(s) = x, V(s_{t+1}) of the real next state must obey the physics x_{t+1} = x_t + τ ẋ_t: everywhere,
    # including every episode end, where the next row of obs already holds a reset state instead.
    expected = batch.obs[..., 0] + TAU * batch.obs[..., 1]
    torch.testing.assert_close(batch.next_values, expected, atol=1e-5, rtol=1e-5)
    ended = batch.terminated | batch.truncated
    ended[-1] = False
    t, i = torch.nonzero(ended, as_tuple=True)
    naive = batch.obs[t + 1, i, 0]  # what V(obs[t+1]) would give: the first state of the next episode
    assert not torch.allclose(naive, expected[t, i], atol=1e-3), "reset states should not satisfy the physics"
    # Inside episodes next_values[t] is simply the next step's value.
    inside = ~(batch.terminated | batch.truncated)[:-1]
    torch.testing.assert_close(batch.next_values[:-1][inside], batch.values[1:][inside])


def test_episode_bookkeeping():
    collector, (b1, b2) = collect(1, n_envs=4, n_steps=100)
    for batch in (b1, b2):
        ends = int((batch.terminated | batch.truncated).sum())
        assert len(batch.episode_returns) == len(batch.episode_lengths) == len(batch.episode_end_steps) == ends
        assert batch.episode_returns == [float(n) for n in batch.episode_lengths]  # CartPole pays 1 per step
    steps = b1.episode_end_steps + b2.episode_end_steps
    assert steps == sorted(steps) and 0 < steps[0] and steps[-1] <= collector.steps


def test_collector_rejects_bad_input():
    envs = make_vec_env("CartPole-v1", 2)
    with pytest.raises(ValueError, match="positive integer"):
        RolloutCollector(envs, CategoricalPolicy(4, 2), seed=0).collect(0)
    pendulum = make_vec_env("Pendulum-v1", 2)
    with pytest.raises(ValueError, match="discrete action space"):
        RolloutCollector(pendulum, CategoricalPolicy(3, 2), seed=0)


def test_collector_without_a_value_network():
    seed_everything(0)
    batch = RolloutCollector(make_vec_env("CartPole-v1", 2), CategoricalPolicy(4, 2), seed=0).collect(5)
    assert batch.values is None and batch.next_values is None


# collect_episodes -------------------------------------------------------------------------------------


def test_collect_episodes_gives_complete_padded_episodes():
    seed_everything(0)
    envs = [make_env("CartPole-v1", seed=i) for i in range(5)]
    batch = collect_episodes(envs, CategoricalPolicy(4, 2))
    T_max, N = batch.mask.shape
    assert N == 5 and T_max == int(batch.lengths.max())
    assert batch.obs.shape == (T_max, N, 4) and batch.final_obs.shape == (N, 4)
    for i, length in enumerate(batch.lengths.tolist()):
        assert batch.mask[:length, i].all() and not batch.mask[length:, i].any()
        ends = batch.terminated[:, i] | batch.truncated[:, i]
        assert torch.nonzero(ends).flatten().tolist() == [length - 1], "exactly one end, at the last step"
        assert batch.rewards[length:, i].abs().sum() == 0 and batch.obs[length:, i].abs().sum() == 0
    torch.testing.assert_close(batch.episode_returns, batch.lengths.float())


def test_collect_episodes_matches_rollout_for_a_deterministic_policy():
    seeds = [7, 8, 9]
    batch = collect_episodes([gym.make("CartPole-v1") for _ in seeds], Greedy(), seeds=seeds, greedy=True)
    for i, seed in enumerate(seeds):
        traj = rollout(gym.make("CartPole-v1"), lambda obs: int(obs[2] + obs[3] > 0), seed=seed)
        n = len(traj)
        assert int(batch.lengths[i]) == n
        np.testing.assert_allclose(batch.obs[:n, i].numpy(), traj.obs[:-1], rtol=1e-6)
        np.testing.assert_allclose(batch.final_obs[i].numpy(), traj.obs[-1], rtol=1e-6)
        assert batch.actions[:n, i].tolist() == traj.actions.tolist()
        assert bool(batch.truncated[n - 1, i]) == traj.truncated


def test_collect_episodes_samples_like_a_categorical_per_step():
    # The textbook loop: one Categorical over the running environments per step, episodes of different lengths.
    seeds = [3, 4, 5, 6]
    seed_everything(0)
    policy = CategoricalPolicy(4, 2)
    batch = collect_episodes([gym.make("CartPole-v1") for _ in seeds], policy, seeds=seeds)
    seed_everything(0)
    policy = CategoricalPolicy(4, 2)
    envs = [gym.make("CartPole-v1") for _ in seeds]
    obs = [env.reset(seed=seed)[0] for env, seed in zip(envs, seeds)]
    running, actions = list(range(len(envs))), []
    with torch.no_grad():
        while running:
            logits = policy(torch.as_tensor(np.stack([obs[i] for i in running])))
            action = Categorical(logits=logits).sample().tolist()
            actions.append(dict(zip(running, action)))
            for i, a in zip(list(running), action):
                obs[i], _, terminated, truncated, _ = envs[i].step(a)
                if terminated or truncated:
                    running.remove(i)
    assert len(set(batch.lengths.tolist())) > 1, "the test needs episodes of different lengths"
    for t, row in enumerate(actions):
        assert {i: int(batch.actions[t, i]) for i in row} == row, f"step {t}"
    assert batch.actions.shape[0] == len(actions)


def test_collect_episodes_is_reproducible_and_checks_seeds():
    def run():
        seed_everything(0)
        return collect_episodes([make_env("CartPole-v1", seed=i) for i in range(3)], CategoricalPolicy(4, 2))

    a, b = run(), run()
    assert torch.equal(a.actions, b.actions) and torch.equal(a.obs, b.obs)
    with pytest.raises(ValueError, match="one seed per environment"):
        collect_episodes([gym.make("CartPole-v1")], CategoricalPolicy(4, 2), seeds=[1, 2])
    with pytest.raises(ValueError, match="at least one environment"):
        collect_episodes([], CategoricalPolicy(4, 2))
