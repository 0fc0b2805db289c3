"""DQN: the TD target, the frozen target network, the ε schedule, seeding, and that it learns."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.algorithms.dqn import (
    DQNConfig,
    epsilon,
    make_q_network,
    n_gradient_steps,
    prioritized_td_loss,
    td_loss,
    td_target,
    train,
    update_target,
)
from course_utils.evaluation import evaluate

# A tiny run that trains a few rounds in well under a second.
TINY = dict(
    total_steps=600,
    learning_starts=200,
    train_freq=100,
    gradient_steps=4,
    batch_size=32,
    hidden=(16,),
    eps_decay_steps=300,
    device="cpu",
)


def tiny(**overrides) -> DQNConfig:
    return DQNConfig(**{**TINY, **overrides})


def linear_net(weight, bias) -> nn.Linear:
    """Q(s, ·) = W s + b, with W of shape (A, obs_dim): Q-values we can compute by hand."""
    net = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        net.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        net.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return net


def batch_of(obs, action, reward, next_obs, terminated):
    return {
        "obs": torch.tensor(obs, dtype=torch.float32),
        "action": torch.tensor(action),
        "reward": torch.tensor(reward, dtype=torch.float32),
        "next_obs": torch.tensor(next_obs, dtype=torch.float32),
        "terminated": torch.tensor(terminated, dtype=torch.float32),
    }


# --- the TD target -------------------------------------------------------------------------------


def test_td_target_by_hand_terminated_versus_truncated():
    """Three transitions: ordinary, terminal, and the last one of a truncated episode (terminated = 0)."""
    target_net = linear_net([[1.0, 0.0], [0.0, 2.0]], [0.0, 1.0])  # Q(s') = (s'_0, 2 s'_1 + 1)
    next_obs = [[3.0, 0.5], [3.0, 0.5], [-1.0, 4.0]]  # max_a' Q: 3, 3, 9
    batch = batch_of(
        obs=[[0, 0]] * 3, action=[0, 1, 0], reward=[1.0, 1.0, 2.0], next_obs=next_obs, terminated=[0, 1, 0]
    )
    y = td_target(target_net, batch, gamma=0.9)
    expected = [1.0 + 0.9 * 3.0, 1.0, 2.0 + 0.9 * 9.0]  # the terminal one has no future; the truncated one does
    assert torch.allclose(y, torch.tensor(expected)), f"TD targets {y.tolist()}, expected {expected}"
    assert not y.requires_grad, "the TD target must carry no gradient"


def test_td_target_uses_the_network_it_is_given():
    online, target = make_q_network(4, 2, (8,)), make_q_network(4, 2, (8,))
    batch = batch_of(np.random.randn(5, 4), [0, 1, 0, 1, 0], np.ones(5), np.random.randn(5, 4), np.zeros(5))
    with torch.no_grad():
        by_hand = batch["reward"] + 0.99 * target(batch["next_obs"]).max(dim=1).values
    assert torch.allclose(td_target(target, batch, 0.99), by_hand)
    assert not torch.allclose(td_target(online, batch, 0.99), by_hand), "targets from θ and θ⁻ should differ"


def test_td_loss_matches_hand_computation_and_trains_only_the_online_network():
    online, target = make_q_network(4, 3, (8,)), make_q_network(4, 3, (8,))
    batch = batch_of(
        np.random.randn(6, 4), [0, 1, 2, 0, 1, 2], np.random.randn(6), np.random.randn(6, 4), [0, 0, 1, 0, 0, 1]
    )
    y = td_target(target, batch, 0.9)
    q_taken = online(batch["obs"])[torch.arange(6), batch["action"]]
    for kind, by_hand in (
        ("mse", ((y - q_taken) ** 2).mean()),
        ("huber", nn.functional.huber_loss(q_taken, y, delta=1.0)),
    ):
        loss = td_loss(online, target, batch, 0.9, loss=kind)
        assert torch.allclose(loss, by_hand), kind
    loss.backward()
    assert all(p.grad is not None for p in online.parameters())
    assert all(p.grad is None for p in target.parameters()), "no gradient may flow into the target network"


def test_prioritized_loss_weights_each_transition_and_returns_the_td_errors():
    online, target = make_q_network(4, 2, (8,)), make_q_network(4, 2, (8,))
    batch = batch_of(np.random.randn(4, 4), [0, 1, 1, 0], np.random.randn(4), np.random.randn(4, 4), [0, 1, 0, 0])
    batch["weight"] = torch.tensor([1.0, 0.5, 0.0, 2.0])
    error_by_hand = td_target(target, batch, 0.9) - online(batch["obs"])[torch.arange(4), batch["action"]]
    for kind, per_item in (
        ("mse", error_by_hand**2),
        ("huber", nn.functional.huber_loss(error_by_hand, torch.zeros(4), reduction="none")),
    ):
        loss, errors = prioritized_td_loss(online, target, batch, 0.9, loss=kind)
        assert torch.allclose(loss, (batch["weight"] * per_item).mean()), kind
        assert torch.allclose(errors, error_by_hand) and not errors.requires_grad
    batch["weight"] = torch.ones(4)
    assert torch.allclose(
        prioritized_td_loss(online, target, batch, 0.9, "huber")[0], td_loss(online, target, batch, 0.9)
    )


def test_obs_scale_divides_the_observation_before_the_first_layer():
    scale = (2.0, 4.0, 0.5, 8.0)
    net = make_q_network(4, 2, (8,), obs_scale=scale)
    obs = torch.randn(5, 4)
    assert torch.allclose(net(obs), net[1:](obs / torch.tensor(scale)))
    assert len(list(net.parameters())) == len(list(make_q_network(4, 2, (8,)).parameters())), "the scale is not trained"
    with pytest.raises(ValueError, match="obs_scale has 3 entries"):
        make_q_network(4, 2, (8,), obs_scale=(1.0, 2.0, 3.0))


@pytest.mark.parametrize(
    "changes",
    [dict(), dict(learning_starts=0), dict(learning_starts=0, batch_size=250), dict(total_steps=650, train_freq=64)],
)
def test_n_gradient_steps_is_what_training_takes(changes):
    config = tiny(**changes)
    assert n_gradient_steps(config) == train(config, progress_bar=False).extras["n_updates"] > 0


def test_prioritized_replay_draws_once_per_gradient_step_and_ends_with_full_correction():
    result = train(tiny(priority_alpha=0.5), progress_bar=False)  # prioritized_replay=True is the default
    replay = result.extras["replay"]
    assert type(replay).__name__ == "PrioritizedReplayBuffer" and replay.alpha == 0.5
    assert replay.draws == result.extras["n_updates"] == replay.beta_steps, "β's schedule spans the whole run"
    assert replay.beta == 1.0
    stored = replay.scaled[: len(replay)]
    assert len(np.unique(stored)) > 10, "the drawn transitions' priorities must be their TD errors, not all equal"
    again = train(tiny(priority_alpha=0.5), progress_bar=False)
    assert all(torch.equal(a, b) for a, b in zip(result.policy.parameters(), again.policy.parameters())), (
        "the same seed must give the same run with prioritized replay too"
    )
    uniform = train(tiny(prioritized_replay=False), progress_bar=False)
    assert result.episode_returns[:3] == uniform.episode_returns[:3], "before learning starts the runs are the same"
    assert not all(torch.equal(a, b) for a, b in zip(result.policy.parameters(), uniform.policy.parameters()))


def test_training_stores_terminated_not_truncated():
    """With a 20-step time limit many episodes are truncated; only real terminations may stop bootstrapping."""
    result = train(tiny(max_episode_steps=20), progress_bar=False)
    replay = result.extras["replay"]
    n = len(replay)
    next_obs, stored = replay.next_obs[:n], replay.terminated[:n]
    off_limits = (np.abs(next_obs[:, 0]) > 2.4) | (
        np.abs(next_obs[:, 2]) > 12 * np.pi / 180
    )  # CartPole's terminal states
    assert np.array_equal(stored == 1.0, off_limits), "terminated must be stored exactly for terminal next states"
    n_truncated = sum(
        1
        for end, start in zip(result.episode_end_steps, [0, *result.episode_end_steps])
        if end - start == 20 and not off_limits[end - 1]
    )
    assert n_truncated > 0, "expected some episodes to be cut by the 20-step time limit"
    assert n_truncated + stored.sum() == len(result.episode_returns)


# --- the target network ---------------------------------------------------------------------------


def test_update_target_hard_and_polyak():
    online, target = make_q_network(3, 2, (4,)), make_q_network(3, 2, (4,))
    before = [p.clone() for p in target.parameters()]
    update_target(target, online, tau=0.25)
    for t, o, b in zip(target.parameters(), online.parameters(), before):
        assert torch.allclose(t, 0.25 * o + 0.75 * b)
    update_target(target, online, tau=1.0)
    assert all(torch.equal(t, o) for t, o in zip(target.parameters(), online.parameters()))


def test_target_network_is_frozen_between_syncs():
    """4 updates per round and a sync every 8 updates: the target catches up only every second round."""
    snapshots = []  # the online network after each round
    # rounds at 200..600; a constant step size, so that round 5 (at the end of the budget) still moves θ
    config = tiny(total_steps=600, train_freq=100, gradient_steps=4, target_update_interval=8, anneal_lr=False)

    def remember(steps, q_net):
        snapshots.append(copy.deepcopy(q_net.state_dict()))
        return False

    result = train(config, on_update=remember, progress_bar=False)
    assert len(snapshots) == 5 and result.extras["n_updates"] == 20
    assert result.extras["target_updates"] == 2, "syncs after updates 8 and 16 (rounds 2 and 4)"
    target_net = result.extras["target_net"]
    assert target_net is not result.policy and not any(p.requires_grad for p in target_net.parameters())
    target = target_net.state_dict()
    assert all(torch.equal(target[k], snapshots[3][k]) for k in target), (
        "the target must equal the online network as it was at the last sync (end of round 4)"
    )
    assert not all(torch.equal(target[k], snapshots[4][k]) for k in target), (
        "round 5's four updates must not reach the target network before the next sync"
    )


def test_without_target_network_the_targets_use_the_online_network():
    result = train(tiny(use_target_network=False), progress_bar=False)
    assert result.extras["target_net"] is result.policy
    assert result.extras["target_updates"] == 0


# --- exploration, replay ablation, stopping, seeding ----------------------------------------------


def test_epsilon_schedule_is_linear_then_flat():
    assert epsilon(0, 1.0, 0.1, 100) == 1.0
    assert epsilon(50, 1.0, 0.1, 100) == pytest.approx(0.55)
    assert epsilon(100, 1.0, 0.1, 100) == pytest.approx(0.1)
    assert epsilon(10_000, 1.0, 0.1, 100) == pytest.approx(0.1)
    values = [epsilon(t, 1.0, 0.05, 1000) for t in range(0, 1500, 10)]
    assert all(a >= b for a, b in zip(values, values[1:])), "ε must never increase"
    with pytest.raises(ValueError):
        epsilon(-1, 1.0, 0.1, 100)


def test_training_follows_the_epsilon_schedule():
    """ε logged at each round is the schedule's value at that step; early actions are random."""
    config = tiny(total_steps=1_000, eps_start=1.0, eps_end=0.2, eps_decay_steps=500)
    result = train(config, progress_bar=False)
    assert result.extras["update_steps"] == [200, 300, 400, 500, 600, 700, 800, 900, 1000]
    expected = [epsilon(step - 1, 1.0, 0.2, 500) for step in result.extras["update_steps"]]
    assert np.allclose(result.extras["epsilon"], expected)
    actions = result.extras["replay"].action[:100]  # ε ≈ 1 for the first 100 steps: a fair coin
    assert 30 <= actions.sum() <= 70, f"the first 100 actions should be uniformly random, {actions.sum()} were 'right'"


def test_without_replay_training_uses_the_latest_transitions():
    result = train(tiny(use_replay=False), progress_bar=False)
    replay = result.extras["replay"]
    assert replay.capacity == TINY["batch_size"], "without replay only the latest batch_size transitions are kept"
    assert result.extras["n_updates"] == train(tiny(), progress_bar=False).extras["n_updates"], (
        "the ablation must take the same number of gradient steps"
    )


def test_on_update_can_stop_training():
    calls = []
    result = train(tiny(), on_update=lambda steps, net: calls.append(steps) or len(calls) == 2, progress_bar=False)
    assert calls == [200, 300], "on_update is called after each round with the environment steps so far"
    assert result.steps == 300 and result.extras["n_updates"] == 2 * TINY["gradient_steps"]


def test_same_seed_same_run_different_seed_different_run():
    first, again, other = (train(tiny(seed=s), progress_bar=False) for s in (3, 3, 4))
    assert first.episode_returns == again.episode_returns
    assert first.extras["loss"] == again.extras["loss"]
    assert all(torch.equal(a, b) for a, b in zip(first.policy.parameters(), again.policy.parameters()))
    assert first.episode_returns != other.episode_returns


def test_result_fields():
    result = train(tiny(), progress_bar=False)
    assert result.steps == TINY["total_steps"]
    assert len(result.episode_returns) == len(result.episode_end_steps) > 0
    assert result.episode_end_steps == sorted(result.episode_end_steps) and result.episode_end_steps[-1] <= result.steps
    assert sum(result.episode_returns) <= result.steps, "CartPole pays 1 per step"
    assert result.seconds > 0 and len(result.extras["loss"]) == len(result.extras["update_steps"]) == 5
    q_values = result.policy(torch.zeros(7, 4))
    assert q_values.shape == (7, 2), "the policy maps (B, obs_dim) observations to (B, n_actions) Q-values"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(gamma=1.5), "gamma"),
        (dict(tau=0.0), "tau"),
        (dict(loss="l1"), "loss"),
        (dict(batch_size=0), "batch_size"),
        (dict(train_freq=2.5), "train_freq"),
        (dict(eps_end=-0.1), "eps_end"),
        (dict(batch_size=64, buffer_size=32), "buffer_size"),
        (dict(max_episode_steps=0), "max_episode_steps"),
        (dict(priority_alpha=2.0), "priority_alpha"),
        (dict(priority_beta=-1.0), "priority_beta"),
        (dict(obs_scale=(1.0, 0.0, 1.0, 1.0)), "obs_scale"),
        (dict(obs_scale=()), "obs_scale"),
    ],
)
def test_bad_config_is_refused(change, message):
    with pytest.raises(ValueError, match=message):
        tiny(**change)


def test_another_environment_needs_its_own_obs_scale():
    with pytest.raises(ValueError, match="Acrobot-v1: observations have 6 entries but obs_scale has 4"):
        train(tiny(env_id="Acrobot-v1"), progress_bar=False)
    assert train(tiny(env_id="Acrobot-v1", obs_scale=None, total_steps=300), progress_bar=False).steps == 300


def test_nature_preset_is_the_papers_configuration_and_the_defaults_differ_in_five_fields():
    nature, default = DQNConfig.nature(seed=3), DQNConfig(seed=3)
    assert (nature.loss, nature.gamma, nature.eps_end, nature.prioritized_replay, nature.obs_scale) == (
        "huber",
        0.98,
        0.04,
        False,
        None,
    )
    differ = {name for name in vars(default) if getattr(default, name) != getattr(nature, name)}
    assert differ == {"loss", "gamma", "eps_end", "prioritized_replay", "obs_scale"}
    assert DQNConfig.nature(gamma=0.9).gamma == 0.9, "keyword arguments override single fields"
    result = train(dataclasses.replace(DQNConfig.nature(), **TINY), progress_bar=False)
    assert type(result.extras["replay"]).__name__ == "ReplayBuffer", "the paper's replay is uniform"
    assert isinstance(result.policy[0], nn.Linear), "the paper's network sees the raw observation"


def test_pixel_environments_are_refused():
    with pytest.raises(ValueError, match="vector observation and discrete actions"):
        train(tiny(env_id="Pendulum-v1"), progress_bar=False)


def test_fast_preset_is_a_config_with_overrides():
    config = DQNConfig.fast(seed=5)
    assert isinstance(config, DQNConfig) and config.seed == 5
    assert dataclasses.replace(config, seed=0) == DQNConfig.fast()


# --- it learns ------------------------------------------------------------------------------------

N_EVAL = 20  # evaluation episodes per network


def test_short_training_beats_the_untrained_network():
    """The fast preset (8,192 steps, a few seconds) lifts the greedy return far above the untrained network's.

    "Far above": the gap must exceed 5 standard errors of the difference of the two
    evaluation means, and the trained network must balance for at least 40 steps on
    average, four times what an untrained greedy network manages (it pushes one way
    and the pole falls within about 10 steps).
    """
    config = DQNConfig.fast(seed=0, device="cpu")
    torch.manual_seed(config.seed)
    untrained = make_q_network(4, 2, config.hidden)
    untrained_mean, untrained_std = evaluate(untrained, n_episodes=N_EVAL)
    trained_mean, trained_std = evaluate(train(config, progress_bar=False).policy, n_episodes=N_EVAL)
    se_gap = np.hypot(untrained_std, trained_std) / np.sqrt(N_EVAL - 1)  # evaluate's std has ddof=0
    message = f"trained {trained_mean:.0f} (std {trained_std:.0f}) vs untrained {untrained_mean:.0f} (std {untrained_std:.0f})"
    assert trained_mean - untrained_mean > 5 * max(se_gap, 1.0), message
    assert trained_mean >= 40, message
