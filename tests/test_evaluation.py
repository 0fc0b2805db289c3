import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from course_utils import rollout, seed_everything
from course_utils.evaluation import evaluate
from course_utils.networks import CategoricalPolicy


class LinearRule(nn.Module):
    """Scores (B, 2) whose argmax is the hand-written rule of notebook 00: push right iff θ·s > 0."""

    def __init__(self, theta):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(theta, dtype=torch.float32))

    def forward(self, obs):
        score = obs @ self.theta
        return torch.stack([-score, score], dim=-1)


def reference_returns(policy_fn, n_episodes, seed):
    """The protocol written out: one fresh environment per episode, reset with seed + k."""
    return np.array(
        [rollout(gym.make("CartPole-v1"), policy_fn, seed=seed + k).rewards.sum() for k in range(n_episodes)]
    )


@pytest.mark.parametrize("theta", [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
def test_evaluate_is_the_greedy_policy_on_fixed_seeds(theta):
    net = LinearRule(theta)
    expected = reference_returns(lambda obs: int(np.dot(theta, obs) > 0), 6, seed=10_000)
    mean, std = evaluate(net, n_episodes=6)
    assert mean == pytest.approx(expected.mean()) and std == pytest.approx(expected.std())


def test_evaluate_works_for_q_values_and_other_seeds():
    class AlwaysLeft(nn.Module):  # Q-values that always prefer action 0
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.tensor([1.0, 0.0]))

        def forward(self, obs):
            return self.bias.expand(obs.shape[0], 2)

    expected = reference_returns(lambda obs: 0, 4, seed=3)
    mean, std = evaluate(AlwaysLeft(), n_episodes=4, seed=3)
    assert mean == pytest.approx(expected.mean()) and std == pytest.approx(expected.std())
    assert mean < 15  # always pushing left tips the pole within a few steps


def test_evaluate_ignores_global_rng_and_restores_training_mode():
    net = nn.Sequential(nn.Linear(4, 32), nn.Dropout(0.5), nn.ReLU(), nn.Linear(32, 2))
    net.train()
    seed_everything(1)
    first = evaluate(net)
    seed_everything(2)
    torch.rand(100)
    np.random.rand(100)
    assert evaluate(net) == first, "fixed evaluation seeds and eval mode (no dropout) make evaluation deterministic"
    assert net.training, "evaluate must restore the network's training mode"


def test_evaluate_of_an_untrained_policy_is_short():
    torch.manual_seed(0)
    mean, std = evaluate(CategoricalPolicy(4, 2))
    assert 8 <= mean <= 60 and std >= 0  # nearly equal logits: the greedy action barely depends on the state


def test_evaluate_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_episodes"):
        evaluate(CategoricalPolicy(4, 2), n_episodes=0)
    with pytest.raises(ValueError, match="seed"):
        evaluate(CategoricalPolicy(4, 2), seed=-1)
    with pytest.raises(ValueError, match="discrete action space"):
        evaluate(CategoricalPolicy(3, 2), env_id="Pendulum-v1")
