"""World-model pieces (notebook 11): shapes, a learned linear system, pathwise gradients against finite differences."""

import pytest
import torch
import torch.nn.functional as F

from course_utils.networks import CategoricalPolicy
from course_utils.world_model import (
    RewardModel,
    StateVAE,
    Transition,
    dream_returns,
    gaussian_nll,
    imagine,
)


def tiny_model(seed=0, dtype=torch.float32, latent_dim=3, n_actions=2):
    torch.manual_seed(seed)
    policy = CategoricalPolicy(latent_dim, n_actions, hidden=(8,)).to(dtype)
    transition = Transition(latent_dim, n_actions, hidden=(8,)).to(dtype)
    reward_model = RewardModel(latent_dim, hidden=(8,)).to(dtype)
    return policy, transition, reward_model


def test_shapes():
    vae = StateVAE(obs_dim=4, latent_dim=3)
    s = torch.randn(5, 4)
    mu, log_sigma = vae.encode(s)
    assert mu.shape == log_sigma.shape == (5, 3)
    assert vae.decode(mu).shape == (5, 4)
    loss, parts = vae.loss(s, beta=0.5)
    assert loss.shape == () and set(parts) == {"recon", "kl"}

    policy, transition, reward_model = tiny_model()
    mu, log_sigma = transition(torch.randn(5, 3), F.one_hot(torch.tensor([0, 1, 0, 1, 1]), 2).float())
    assert mu.shape == log_sigma.shape == (5, 3)
    reward, continue_logit = reward_model(torch.randn(5, 3))
    assert reward.shape == continue_logit.shape == (5,)
    for pathwise in (False, True):
        dream = imagine(policy, transition, reward_model, torch.randn(6, 3), horizon=4, pathwise=pathwise)
        assert dream.z.shape == (5, 6, 3) and dream.actions.shape == (4, 6, 2)
        assert dream.log_probs.shape == dream.entropy.shape == dream.rewards.shape == dream.continues.shape == (4, 6)
        assert torch.all((dream.continues > 0) & (dream.continues < 1))
        assert torch.all(dream.actions.detach().sum(-1) == 1), "actions are one-hot in the forward pass"
    with pytest.raises(ValueError, match="horizon"):
        imagine(policy, transition, reward_model, torch.randn(6, 3), horizon=0)


def test_score_function_dream_carries_gradient_only_in_log_probs():
    policy, transition, reward_model = tiny_model()
    dream = imagine(policy, transition, reward_model, torch.randn(6, 3), horizon=3)
    assert dream.log_probs.requires_grad
    assert not dream.z.requires_grad and not dream.actions.requires_grad


def test_dream_returns_matches_the_explicit_sum():
    torch.manual_seed(1)
    rewards, continues, gamma = torch.rand(5, 3), torch.rand(5, 3), 0.9
    G = dream_returns(rewards, continues, gamma)
    alive = torch.cat([torch.ones(1, 3), torch.cumprod(continues[:-1], 0)])  # Π_{k=1}^{t} c_k
    explicit = (gamma ** torch.arange(5.0)[:, None] * alive * rewards).sum(0)
    assert torch.allclose(G[0], explicit)
    assert torch.allclose(G[-1], rewards[-1])
    with pytest.raises(ValueError):
        dream_returns(rewards, continues[:-1], gamma)


def test_gaussian_nll_matches_torch_distributions():
    x, mu, log_sigma = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3) * 0.3
    expected = -torch.distributions.Normal(mu, log_sigma.exp()).log_prob(x).sum(-1)
    assert torch.allclose(gaussian_nll(x, mu, log_sigma), expected, atol=1e-5)


def test_a_learned_transition_recovers_a_known_linear_system():
    """z' = A z + B[a] + noise: the learned mean matches the true one and σ the noise level."""
    gen = torch.Generator().manual_seed(0)
    A = torch.tensor([[1.0, 0.1], [-0.2, 0.9]])
    B = torch.tensor([[0.0, 0.2], [0.1, -0.1]])  # row a: the change pushed by action a
    noise = 0.05
    z = torch.randn(4000, 2, generator=gen)
    a = torch.randint(2, (4000,), generator=gen)
    z_next = z @ A.T + B[a] + noise * torch.randn(4000, 2, generator=gen)
    torch.manual_seed(0)
    transition = Transition(2, 2, hidden=(32,))
    opt = torch.optim.Adam(transition.parameters(), lr=2e-2)
    one_hot = F.one_hot(a, 2).float()
    for _ in range(300):
        idx = torch.randint(4000, (256,), generator=gen)
        loss = transition.loss(z[idx], one_hot[idx], z_next[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    z_test = torch.randn(500, 2, generator=gen) * 0.8
    a_test = torch.randint(2, (500,), generator=gen)
    with torch.no_grad():
        mu, log_sigma = transition(z_test, F.one_hot(a_test, 2).float())
    err = (mu - (z_test @ A.T + B[a_test])).pow(2).mean().sqrt()
    assert err < 0.03, f"the learned mean should match A z + B[a] (RMS error {err:.3f})"
    assert torch.allclose(log_sigma[0].exp(), torch.full((2,), noise), rtol=0.3), log_sigma[0].exp()


def test_pathwise_gradients_match_finite_differences():
    """With the noise fixed by a seeded generator, a dream's return is a smooth function of the model's
    parameters and of z0: autograd through the imagined rollout agrees with central differences.

    The policy here ignores z (fixed logits): the straight-through path into the policy's probabilities is a
    surrogate gradient that finite differences of the (piecewise constant) sampled actions cannot see."""
    _, transition, reward_model = tiny_model(seed=2, dtype=torch.float64)

    class FixedLogits(torch.nn.Module):
        def forward(self, z):
            return torch.tensor([0.3, -0.2], dtype=z.dtype).expand(z.shape[0], 2)

    policy = FixedLogits()
    z0 = torch.randn(4, 3, dtype=torch.float64)

    def J(z0, params=None):
        dream = imagine(
            policy, transition, reward_model, z0, horizon=5, pathwise=True,
            generator=torch.Generator().manual_seed(7),
        )  # fmt: skip
        return dream_returns(dream.rewards, dream.continues, 0.9)[0].sum()

    z0 = z0.requires_grad_()
    grad_z0 = torch.autograd.grad(J(z0), z0)[0]
    weight = transition.net[0].weight
    grad_w = torch.autograd.grad(J(z0.detach()), weight)[0]
    h = 1e-6
    with torch.no_grad():
        for index in [(0, 0), (1, 2), (3, 1)]:
            e = torch.zeros_like(z0)
            e[index] = h
            fd = (J(z0 + e) - J(z0 - e)) / (2 * h)
            assert torch.isclose(grad_z0[index], fd, rtol=1e-5, atol=1e-8), (index, grad_z0[index], fd)
        for index in [(0, 0), (2, 3), (5, 1)]:
            old = weight[index].item()
            weight[index] = old + h
            plus = J(z0)
            weight[index] = old - h
            minus = J(z0)
            weight[index] = old
            fd = (plus - minus) / (2 * h)
            assert torch.isclose(grad_w[index], fd, rtol=1e-5, atol=1e-8), (index, grad_w[index], fd)
