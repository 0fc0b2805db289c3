import math

import pytest
import torch
from torch import nn

from course_utils.networks import CategoricalPolicy, ValueNetwork, mlp


def linears(net):
    return [m for m in net.modules() if isinstance(m, nn.Linear)]


def test_mlp_layers_and_activations():
    net = mlp([4, 32, 16, 3], activation=nn.ReLU)
    assert [(m.in_features, m.out_features) for m in linears(net)] == [(4, 32), (32, 16), (16, 3)]
    assert [type(m) for m in net] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]  # nothing after the output
    assert net(torch.randn(7, 4)).shape == (7, 3)


def test_mlp_orthogonal_init_with_gains():
    torch.manual_seed(0)
    net = mlp([4, 64, 64, 2], output_gain=0.01)
    hidden, *_, output = linears(net)
    for layer, gain in [(hidden, math.sqrt(2)), (linears(net)[1], math.sqrt(2)), (output, 0.01)]:
        W = layer.weight.detach()
        # An orthogonal (out, in) matrix times `gain`: its smaller Gram matrix is gain² · I.
        gram = W @ W.T if W.shape[0] <= W.shape[1] else W.T @ W
        torch.testing.assert_close(gram, gain**2 * torch.eye(gram.shape[0]), atol=1e-5, rtol=1e-4)
        assert torch.all(layer.bias == 0)


def test_mlp_default_init_when_not_orthogonal():
    torch.manual_seed(0)
    layer = linears(mlp([4, 64, 2], orthogonal=False))[0]
    assert layer.bias.abs().sum() > 0  # PyTorch's default initialisation draws biases too
    bound = 1 / math.sqrt(4)
    assert layer.weight.abs().max() <= bound


def test_mlp_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least an input and an output"):
        mlp([4])
    with pytest.raises(ValueError, match="positive integers"):
        mlp([4, 0, 2])
    with pytest.raises(ValueError, match="nn.Module class"):
        mlp([4, 2], activation=nn.Tanh())


@pytest.mark.parametrize("batch_shape", [(), (5,), (3, 4)])
def test_policy_logits_and_distribution_shapes(batch_shape):
    policy = CategoricalPolicy(obs_dim=4, n_actions=3)
    obs = torch.randn(*batch_shape, 4)
    logits = policy(obs)
    assert logits.shape == (*batch_shape, 3)
    dist = policy.distribution(obs)
    torch.testing.assert_close(dist.probs, torch.softmax(logits, dim=-1))
    action = dist.sample()
    assert action.shape == batch_shape and dist.log_prob(action).shape == batch_shape
    assert dist.entropy().shape == batch_shape


def test_untrained_policy_is_close_to_uniform():
    torch.manual_seed(0)
    policy = CategoricalPolicy(obs_dim=4, n_actions=2)
    probs = policy.distribution(torch.randn(1000, 4)).probs
    # Output gain 0.01 keeps the initial logits tiny: every state starts out exploring both actions.
    assert (probs - 0.5).abs().max() < 0.05


def test_policy_rejects_a_single_action():
    with pytest.raises(ValueError, match="at least 2 actions"):
        CategoricalPolicy(obs_dim=4, n_actions=1)


@pytest.mark.parametrize("batch_shape", [(), (5,), (3, 4)])
def test_value_network_returns_one_number_per_state(batch_shape):
    value = ValueNetwork(obs_dim=4, hidden=(32,))
    assert value(torch.randn(*batch_shape, 4)).shape == batch_shape


def test_gradients_reach_every_parameter():
    policy, value = CategoricalPolicy(4, 2), ValueNetwork(4)
    obs = torch.randn(16, 4)
    (policy.distribution(obs).log_prob(torch.zeros(16, dtype=torch.long)).sum() + value(obs).sum()).backward()
    for p in [*policy.parameters(), *value.parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0
