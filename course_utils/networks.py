"""Small networks for policy-gradient methods: an MLP builder, a categorical policy, a value network.

Introduced in notebook 03 (the policy π_θ(a|s) as a network that outputs
logits) and notebook 04 (the value network V_φ(s) used as a baseline); notebook
05 trains both together as actor and critic.

Shapes (B = any batch shape, e.g. (N,) environments or (T, N) steps)::

    obs      (*B, obs_dim)   float32
    logits   (*B, n_actions) unnormalised log-probabilities
    value    (*B,)           V(s), one number per state
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Categorical

__all__ = ["CategoricalPolicy", "ValueNetwork", "mlp"]


def mlp(
    sizes: Sequence[int],
    activation: type[nn.Module] = nn.Tanh,
    output_gain: float = 1.0,
    orthogonal: bool = True,
) -> nn.Sequential:
    """A fully connected network ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    ``activation`` goes between layers, none after the last one (the output is
    a logit, a value or a Q-value, never squashed). With ``orthogonal=True``
    (the default) weights get orthogonal initialisation, gain √2 in hidden
    layers and ``output_gain`` in the last, and biases start at 0: the
    initialisation used by PPO implementations, where a small output gain
    (0.01 for a policy) makes the initial policy close to uniform. With
    ``orthogonal=False`` PyTorch's default initialisation is kept and
    ``output_gain`` is ignored. Notebook 03.
    """
    sizes = list(sizes)
    if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"sizes must list at least an input and an output size, all positive integers; got {sizes}")
    if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
        raise ValueError(f"activation must be an nn.Module class such as nn.Tanh (not an instance), got {activation!r}")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(n_in, n_out)
        last = i == len(sizes) - 2
        if orthogonal:
            nn.init.orthogonal_(linear.weight, gain=output_gain if last else math.sqrt(2))
            nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(activation())
    return nn.Sequential(*layers)


class CategoricalPolicy(nn.Module):
    """π_θ(a|s) over ``n_actions`` discrete actions: an MLP from observations to logits.

    ``policy(obs)`` returns the logits, shape (*B, n_actions);
    ``policy.distribution(obs)`` wraps them in a ``torch.distributions.Categorical``
    whose ``sample()``, ``log_prob(action)`` and ``entropy()`` have shape (*B,).
    The network outputs logits, never probabilities: ``Categorical(logits=...)``
    normalises them with a numerically stable log-softmax. Notebook 03.
    """

    def __init__(
        self, obs_dim: int, n_actions: int, hidden: Sequence[int] = (64, 64), activation: type[nn.Module] = nn.Tanh
    ):
        super().__init__()
        if n_actions < 2:
            raise ValueError(f"a categorical policy needs at least 2 actions, got n_actions={n_actions}")
        self.obs_dim, self.n_actions = obs_dim, n_actions
        # Output gain 0.01: the initial logits are nearly equal, so the first policy explores uniformly.
        self.net = mlp([obs_dim, *hidden, n_actions], activation, output_gain=0.01)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Logits, shape (*B, n_actions), for observations of shape (*B, obs_dim)."""
        return self.net(obs)

    def distribution(self, obs: torch.Tensor, validate_args: bool | None = None) -> Categorical:
        """π_θ(·|s) as a Categorical distribution with batch shape B.

        ``validate_args=False`` skips torch's checks of the logits and of the actions scored (the
        training loops' inner steps, where they cost more than the arithmetic); the values are the same.
        """
        return Categorical(logits=self(obs), validate_args=validate_args)


class ValueNetwork(nn.Module):
    """V_φ(s): an MLP from observations (*B, obs_dim) to one value per state, shape (*B,). Notebook 04."""

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (64, 64), activation: type[nn.Module] = nn.Tanh):
        super().__init__()
        self.obs_dim = obs_dim
        self.net = mlp([obs_dim, *hidden, 1], activation, output_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)  # (*B, 1) -> (*B,): one value per state, not a column
