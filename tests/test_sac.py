"""SAC (course_utils.algorithms.sac, notebook 10): the squashed log-density, the soft critic target,
which loss moves which parameters, the temperature's direction, the replay rows, and a short run."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from course_utils.algorithms import sac
from course_utils.algorithms.common import TrainResult

# --- the tanh-squashed Gaussian's log-density ------------------------------------------------------


@pytest.mark.parametrize("mean, std", [(0.0, 1.0), (0.8, 0.5), (-1.5, 2.0)])
def test_squashed_log_prob_matches_change_of_variables_by_finite_differences(mean, std):
    """p_a(a) = p_u(atanh a) |d atanh(a)/da|, the derivative taken numerically (central differences)."""
    a = torch.linspace(-0.995, 0.995, 401, dtype=torch.float64)
    u = torch.atanh(a)
    h = 1e-6
    du_da = (torch.atanh(a + h) - torch.atanh(a - h)) / (2 * h)
    gaussian = torch.distributions.Normal(
        torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)
    )
    numerical = gaussian.log_prob(u) + torch.log(du_da)
    ours = sac.squashed_log_prob(
        u[:, None],
        torch.full((401, 1), mean, dtype=torch.float64),
        torch.full((401, 1), math.log(std), dtype=torch.float64),
    )
    torch.testing.assert_close(ours, numerical, rtol=0, atol=1e-6)


def test_squashed_density_matches_a_histogram_of_samples_and_integrates_to_one():
    torch.manual_seed(0)
    mean, log_std = torch.tensor([[0.5]]), torch.tensor([[math.log(0.8)]])
    n = 400_000
    a = torch.tanh(mean + log_std.exp() * torch.randn(n, 1)).squeeze(1).numpy()
    counts, edges = np.histogram(a, bins=40, range=(-1, 1))
    centres = torch.tensor((edges[:-1] + edges[1:]) / 2, dtype=torch.float32)[:, None]
    density = sac.squashed_log_prob(torch.atanh(centres), mean.expand(40, 1), log_std.expand(40, 1)).exp().numpy()
    empirical = counts / (n * (edges[1] - edges[0]))
    # Bins away from the edges (where the density changes fast within a bin): within 5 % or 0.02.
    inner = slice(2, 38)
    np.testing.assert_allclose(empirical[inner], density[inner], rtol=0.05, atol=0.02)
    # The density integrates to 1 over (−1, 1) (trapezoid rule on a fine grid).
    grid = torch.linspace(-0.99999, 0.99999, 200_001, dtype=torch.float64)[:, None]
    p = sac.squashed_log_prob(
        torch.atanh(grid), mean.double().expand(len(grid), 1), log_std.double().expand(len(grid), 1)
    ).exp()
    assert abs(torch.trapezoid(p, grid[:, 0]).item() - 1.0) < 1e-3


def test_squashed_log_prob_sums_over_action_dimensions_and_is_finite_at_saturation():
    u = torch.tensor([[0.3, -25.0]])
    mean, log_std = torch.tensor([[0.1, -24.0]]), torch.tensor([[-0.5, 0.0]])
    both = sac.squashed_log_prob(u, mean, log_std)
    parts = sac.squashed_log_prob(u[:, :1], mean[:, :1], log_std[:, :1]) + sac.squashed_log_prob(
        u[:, 1:], mean[:, 1:], log_std[:, 1:]
    )
    torch.testing.assert_close(both, parts)
    assert torch.isfinite(both).all()  # 1 − tanh²(−25) is 0 in float32; the softplus form is not


def test_actor_sample_is_reparameterized_and_consistent_with_the_log_density():
    torch.manual_seed(1)
    actor = sac.SquashedGaussianActor(obs_dim=3, act_dim=2, hidden=(8,), action_scale=[2.0, 0.5])
    obs = torch.randn(5, 3)
    torch.manual_seed(2)
    action, log_prob = actor.sample(obs)
    torch.manual_seed(2)
    mean, log_std = actor(obs)
    u = mean + log_std.exp() * torch.randn_like(mean)
    torch.testing.assert_close(action, torch.tanh(u))
    torch.testing.assert_close(log_prob, sac.squashed_log_prob(u, mean, log_std))
    assert (action.abs() < 1).all()
    action.sum().backward()  # the gradient flows through the sample into θ
    assert actor.head.weight.grad.abs().sum() > 0
    greedy = actor.greedy(obs)
    assert greedy.shape == (5, 2) and (greedy.abs() <= torch.tensor([2.0, 0.5])).all()


# --- the twin critics and the soft TD target -------------------------------------------------------


def test_twin_critic_is_two_independent_networks():
    torch.manual_seed(0)
    critic = sac.TwinCritic(obs_dim=3, act_dim=1, hidden=(16, 16))
    obs, action = torch.randn(7, 3), torch.rand(7, 1) * 2 - 1
    q = critic(obs, action)
    assert q.shape == (2, 7)
    assert not torch.allclose(q[0], q[1])
    # Critic k computed by hand from its own slice of every weight tensor.
    for k in range(2):
        x = torch.cat([obs, action], -1)
        for i, (w, b) in enumerate(zip(critic.weights, critic.biases)):
            x = x @ w[k] + b[k]
            if i < len(critic.weights) - 1:
                x = torch.relu(x)
        torch.testing.assert_close(q[k], x.squeeze(-1))
    torch.testing.assert_close(critic(obs, action, detach_weights=True), q)


def test_critic_target_by_hand_with_done_masking_min_of_twins_and_entropy_term():
    reward = torch.tensor([1.0, -2.0, 0.5])
    terminated = torch.tensor([0.0, 1.0, 0.0])  # the second transition ends the episode: no bootstrap
    next_q = torch.tensor([[3.0, 10.0, -1.0], [4.0, 20.0, -3.0]])  # min over the twins: 3, 10, −3
    next_log_prob = torch.tensor([-0.5, 7.0, 1.0])
    alpha, gamma = 0.2, 0.9
    # y = r + γ (1 − d) (min Q − α log π):
    #   1 + 0.9 (3 + 0.1)  = 3.79;   −2 (terminal);   0.5 + 0.9 (−3 − 0.2) = −2.38
    y = sac.critic_target(reward, terminated, next_q, next_log_prob, alpha, gamma)
    torch.testing.assert_close(y, torch.tensor([3.79, -2.0, -2.38]))


def small_setup(seed=0, batch=32):
    torch.manual_seed(seed)
    actor = sac.SquashedGaussianActor(3, 1, (16,), action_scale=2.0)
    critic = sac.TwinCritic(3, 1, (16,))
    target = copy.deepcopy(critic).requires_grad_(False)
    log_alpha = torch.zeros((), requires_grad=True)
    batch = {
        "obs": torch.randn(batch, 3),
        "action": torch.rand(batch, 1) * 2 - 1,
        "reward": torch.randn(batch),
        "next_obs": torch.randn(batch, 3),
        "terminated": (torch.rand(batch) < 0.2).float(),
    }
    return actor, critic, target, log_alpha, batch


def test_each_loss_moves_only_its_own_parameters():
    actor, critic, target, log_alpha, batch = small_setup()
    losses = sac.sac_losses(actor, critic, target, log_alpha, batch, gamma=0.99, target_entropy=-1.0)
    # The actor's loss reaches the actor only (the critics' weights are detached in it).
    losses["actor"].backward(retain_graph=True)
    assert all(p.grad is None for p in critic.parameters()) and log_alpha.grad is None
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in actor.parameters())
    actor.zero_grad(set_to_none=True)
    # The critics' loss reaches the critics only (the target is computed without gradient).
    losses["critic"].backward(retain_graph=True)
    assert all(p.grad is None for p in actor.parameters())
    assert all(p.grad is not None for p in critic.parameters())
    assert all(p.grad is None for p in target.parameters())
    losses["alpha"].backward()
    assert log_alpha.grad is not None and all(p.grad is None for p in actor.parameters())


def test_critic_loss_uses_the_target_by_hand():
    actor, critic, target, log_alpha, batch = small_setup(seed=3, batch=5)
    torch.manual_seed(10)
    losses = sac.sac_losses(actor, critic, target, log_alpha, batch, gamma=0.9, target_entropy=-1.0)
    torch.manual_seed(10)  # the same noise for a' ~ π(·|s')
    with torch.no_grad():
        next_action, next_log_prob = actor.sample(batch["next_obs"])
        q_next = target(batch["next_obs"], next_action)
        y = batch["reward"] + 0.9 * (1 - batch["terminated"]) * (
            torch.minimum(q_next[0], q_next[1]) - 1.0 * next_log_prob
        )
        q = critic(batch["obs"], batch["action"])
        expected = 0.5 * ((q[0] - y) ** 2).mean() + 0.5 * ((q[1] - y) ** 2).mean()
    torch.testing.assert_close(losses["critic"].detach(), expected)


@pytest.mark.parametrize("target_entropy, direction", [(-3.0, -1), (3.0, +1)])
def test_temperature_moves_toward_the_target_entropy(target_entropy, direction):
    """Entropy above the target (target −3): α falls; below it (target +3): α rises."""
    actor, critic, target, log_alpha, batch = small_setup(seed=4)
    entropy = -actor.sample(batch["obs"])[1].mean().item()
    assert -3.0 < entropy < 3.0
    optimizer = torch.optim.Adam([log_alpha], lr=0.01)
    for _ in range(20):
        losses = sac.sac_losses(actor, critic, target, log_alpha, batch, gamma=0.99, target_entropy=target_entropy)
        optimizer.zero_grad()
        losses["alpha"].backward()
        optimizer.step()
    assert direction * log_alpha.item() > 0.15, f"log α = {log_alpha.item():.3f} after 20 steps"


# --- replay, configuration and training --------------------------------------------------------------


def test_transition_memory_stores_rows_and_wraps_around():
    memory = sac.TransitionMemory(4, obs_dim=2, act_dim=1, seed=0)
    for t in range(6):
        memory.add(
            np.array([t, t], np.float32),
            np.array([t / 10], np.float32),
            float(t),
            np.array([t + 1, t + 1], np.float32),
            t == 5,
        )
    assert len(memory) == 4
    batch = memory.sample(64)
    t = batch["reward"]
    assert set(t.long().tolist()) == {2, 3, 4, 5}  # the two oldest were overwritten
    torch.testing.assert_close(batch["obs"][:, 0], t)
    torch.testing.assert_close(batch["action"][:, 0], t / 10)
    torch.testing.assert_close(batch["next_obs"][:, 1], t + 1)
    torch.testing.assert_close(batch["terminated"], (t == 5).float())


def test_config_checks():
    with pytest.raises(ValueError, match="tau"):
        sac.SACConfig(tau=1.5)
    with pytest.raises(ValueError, match="init_alpha"):
        sac.SACConfig(init_alpha=0.0)
    sac.SACConfig(init_alpha=0.0, autotune_alpha=False)  # a fixed α = 0: no entropy bonus
    assert sac.SACConfig.fast().total_steps < sac.SACConfig().total_steps


def test_short_training_run_logs_and_is_reproducible():
    config = sac.SACConfig.fast(total_steps=500, learning_starts=300, batch_size=64, hidden=(32, 32), device="cpu")
    calls = []
    result = sac.train(config, on_update=lambda steps, actor: calls.append(steps) and False, progress_bar=False)
    assert isinstance(result, TrainResult) and result.steps == 500
    assert calls == list(range(300, 501))
    assert result.episode_end_steps == [200, 400]  # Pendulum-v1's 200-step time limit
    assert result.extras["update_steps"] == [300, 400, 500]
    assert result.extras["target_entropy"] == -1.0
    assert result.extras["alpha"][-1] < 1.0  # α started at 1; the warm-up's entropy is far above −1
    # The target critics moved towards the online ones, by small steps.
    gap = [
        (p - q).abs().max().item()
        for p, q in zip(result.value.parameters(), result.extras["target_critic"].parameters())
    ]
    assert 0 < max(gap) < 0.5
    mean, std = sac.evaluate_actor(result.policy, n_episodes=2)
    assert -2000 < mean <= 0 and std >= 0
    again = sac.train(config, progress_bar=False)
    assert again.episode_returns == result.episode_returns
