"""Deep Q-learning (DQN) as a reference implementation: one readable loop.

Notebook 08 ("The DQN loop") writes this loop out and checks that it agrees
with this module: the same TD targets as :func:`td_target`, and bit for bit the
same run as :func:`train` for the paper's configuration, ``DQNConfig.nature()``;
the defaults add what section 8b finds against late collapse. The benchmark
``benchmarks/cartpole.py`` and later notebooks import :func:`train`.

The algorithm (Mnih et al. 2015), with θ the online network and θ⁻ a frozen copy::

    for each environment step:
        a_t = random action with probability ε, else argmax_a Q(s_t, a; θ)   (ε-greedy)
        store (s_t, a_t, r_{t+1}, s_{t+1}, terminated) in the replay memory D
        every `train_freq` steps, `gradient_steps` times:
            sample a minibatch of B transitions from D (uniformly, or by priority: see below)
            y = r + γ (1 − terminated) max_a' Q(s', a'; θ⁻)                  (TD target, no gradient)
            take a gradient step on  mean (y − Q(s, a; θ))²   (or Huber; weighted when prioritized)
            every C updates: θ⁻ ← τ θ + (1 − τ) θ⁻                          (τ = 1: hard copy)

Symbols and shapes (B = batch size, A = number of actions)::

    obs, next_obs   (B, *obs_shape)   s, s'
    action          (B,)  int64       a
    reward          (B,)  float32     r
    terminated      (B,)  float32     1.0 where s' is terminal; truncation is NOT termination
    q_net(obs)      (B, A)            Q(s, ·; θ)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..replay import PrioritizedReplayBuffer, ReplayBuffer
from ..seeding import make_env, seed_everything
from ..torch_setup import pick_device
from .common import OnUpdate, Timer, TrainResult, check_config, decay_lr, training_bar

LOSSES = ("huber", "mse")
# CartPole's observation (x, ẋ, angle, angular velocity) is divided by these, the ranges it usually takes:
# the track's half-length 2.4, 3 units/s, the 12° (0.21 rad) at which the pole counts as fallen, 3 rad/s.
CARTPOLE_SCALE = (2.4, 3.0, 0.21, 3.0)
# DQNConfig.nature(): the DQN of Mnih et al. (2015) as notebook 08 writes it out (Huber loss, uniform replay of raw
# observations), tuned for CartPole: the defaults before the fix of late collapse.
NATURE = dict(loss="huber", gamma=0.98, eps_end=0.04, prioritized_replay=False, obs_scale=None)


@dataclass
class DQNConfig:
    """Hyperparameters of :func:`train`; ``DQNConfig.fast()`` is the same with a budget of seconds, and
    ``DQNConfig.nature()`` the paper's pieces that notebook 08 writes out (its sections 8 and 9 train it).

    The defaults are tuned for CartPole-v1 to reach a greedy evaluation return of 475, hold it
    and *end* there (``benchmarks/cartpole.py`` compares them with stable-baselines3's DQN on
    rl-baselines3-zoo's settings). Against the zoo's they use a smaller network (64-64 instead
    of 256-256), larger minibatches (256 instead of 64), one update per 4 steps instead of one
    per 2, a faster ε decay (4,000 steps instead of 8,000) and a slightly larger step size,
    which decays linearly to 0 over the budget (``anneal_lr``, as in A2C and PPO).

    Against late collapse (a run that balanced for 500 steps falling back, mostly with the cart
    driven off the track, by the end of the budget) five choices work together (notebook 08,
    section 8b; ``benchmarks/RESULTS.md``, "DQN's late collapse", screens 31 configurations): the
    squared TD error (terminal transitions pull with their full error), γ = 0.99 (a horizon of
    100 steps), ε ending at 0.1, prioritized replay (``PrioritizedReplayBuffer``: the rare
    transitions near failure keep being drawn) and observations divided by CartPole's usual
    ranges (``obs_scale``). Measured with the benchmark's protocol, 50k steps: held and ended at
    475 or more on 27 of 30 seeds (9 of seeds 0-9); the first three alone ended solved on 16 of
    20, the former defaults (``nature()``) on 10 of 20. ``obs_scale`` is CartPole's: set it to
    None, or to your environment's ranges, for another task.
    """

    env_id: str = "CartPole-v1"  # gymnasium id: vector observations, discrete actions
    max_episode_steps: int | None = None  # time limit (truncation) of training episodes; None keeps the env's own
    seed: int = 0  # seeds network init, environment, and (as two separate streams) exploration and replay sampling
    total_steps: int = 50_000  # environment steps to train for (on_update may stop earlier)
    gamma: float = 0.99  # discount γ in the TD target (horizon 1/(1 − γ) = 100 steps)
    hidden: tuple[int, ...] = (64, 64)  # widths of the Q-network's hidden layers (ReLU)
    lr: float = 3e-3  # Adam step size
    anneal_lr: bool = True  # decay the step size linearly from lr to 0 over total_steps (against late collapse)
    batch_size: int = 256  # transitions per gradient step (B)
    buffer_size: int = 100_000  # replay memory capacity N (oldest transitions are overwritten)
    learning_starts: int = 1_000  # environment steps collected before the first gradient step
    train_freq: int = 128  # environment steps between training rounds
    gradient_steps: int = 32  # gradient steps per training round (here 1 per 4 environment steps)
    target_update_interval: int = 32  # C: gradient steps between target-network updates (here: once per round)
    tau: float = 1.0  # target update θ⁻ ← τθ + (1 − τ)θ⁻; 1.0 is a hard copy, small τ is Polyak averaging
    eps_start: float = 1.0  # ε at step 0 (1.0: act uniformly at random)
    eps_end: float = 0.1  # ε after the decay, kept until the end
    eps_decay_steps: int = 4_000  # environment steps over which ε falls linearly from eps_start to eps_end
    loss: str = "mse"  # "mse" (squared TD error) or "huber" (quadratic for |TD error| < 1, linear beyond)
    max_grad_norm: float = 10.0  # clip the gradient's global L2 norm to this (0 = no clipping)
    use_replay: bool = True  # False (ablation): train on the latest batch_size transitions, in order
    use_target_network: bool = True  # False (ablation): targets use the online network θ itself
    prioritized_replay: bool = True  # draw transitions ∝ |TD error|^α, importance-weighted (PrioritizedReplayBuffer)
    priority_alpha: float = 0.6  # α: 0 is uniform replay, 1 fully proportional to |δ|
    priority_beta: float = 0.4  # β at the first gradient step, rising linearly to 1 at the last
    obs_scale: tuple[float, ...] | None = CARTPOLE_SCALE  # divide observations by these before the first layer
    device: str = "auto"  # "auto" picks CUDA if available (see pick_device), else e.g. "cpu"

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)
        if self.obs_scale is not None:
            self.obs_scale = tuple(self.obs_scale)
            if not self.obs_scale or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x < float("inf") for x in self.obs_scale
            ):
                raise ValueError(f"DQNConfig.obs_scale must be None or positive finite numbers, got {self.obs_scale!r}")
        check_config(
            self,
            positive_ints=(
                "total_steps",
                "batch_size",
                "buffer_size",
                "train_freq",
                "gradient_steps",
                "target_update_interval",
                "eps_decay_steps",
            ),
            positive=("lr", "tau"),
            unit_interval=("gamma", "tau", "eps_start", "eps_end", "priority_alpha", "priority_beta"),
            non_negative=("max_grad_norm",),
        )
        if (
            isinstance(self.learning_starts, bool)
            or not isinstance(self.learning_starts, int)
            or self.learning_starts < 0
        ):
            raise ValueError(f"DQNConfig.learning_starts must be a non-negative integer, got {self.learning_starts!r}")
        if self.max_episode_steps is not None and (
            not isinstance(self.max_episode_steps, int) or self.max_episode_steps < 1
        ):
            raise ValueError(
                f"DQNConfig.max_episode_steps must be a positive integer or None, got {self.max_episode_steps!r}"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"DQNConfig.loss must be one of {LOSSES}, got {self.loss!r}")
        if self.use_replay and self.batch_size > self.buffer_size:
            raise ValueError(f"DQNConfig.batch_size {self.batch_size} is larger than buffer_size {self.buffer_size}")

    @classmethod
    def fast(cls, **overrides) -> DQNConfig:
        """The same tuned hyperparameters with a budget of seconds (8,192 steps), for tests and fast mode.

        Keyword arguments override single fields, e.g. ``DQNConfig.fast(seed=3)``.
        """
        return cls(**{"total_steps": 8_192, **overrides})

    @classmethod
    def nature(cls, **overrides) -> DQNConfig:
        """The paper's DQN (Huber loss, γ = 0.98, ε down to 0.04, uniform replay of raw observations), tuned for
        CartPole: the loop that notebook 08 writes out, which ends solved on about half the seeds. Keyword
        arguments override single fields, e.g. ``DQNConfig.nature(use_target_network=False)``."""
        return cls(**{**NATURE, **overrides})


def epsilon(step: int, eps_start: float, eps_end: float, decay_steps: int) -> float:
    """ε of the linear schedule after ``step`` environment steps.

    Falls in a straight line from ``eps_start`` at step 0 to ``eps_end`` at
    ``decay_steps`` and stays there.
    """
    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}")
    fraction = min(step / decay_steps, 1.0)
    return eps_start + fraction * (eps_end - eps_start)


class ObsScale(nn.Module):
    """Divides observations by fixed scales, e.g. CartPole's by the ranges its states usually take."""

    def __init__(self, scale: Sequence[float]):
        super().__init__()
        self.register_buffer("inverse", 1.0 / torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs * self.inverse


def make_q_network(
    obs_dim: int, n_actions: int, hidden: Sequence[int] = (64, 64), obs_scale: Sequence[float] | None = None
) -> nn.Sequential:
    """An MLP ``(B, obs_dim) -> (B, n_actions)``: one Q-value per action from one forward pass.

    ``obs_scale`` (one positive number per observation entry) puts an :class:`ObsScale` first.
    """
    if obs_scale is not None and len(obs_scale) != obs_dim:
        raise ValueError(f"obs_scale has {len(obs_scale)} entries for observations of {obs_dim}")
    layers, width = ([ObsScale(obs_scale)] if obs_scale is not None else []), obs_dim
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, n_actions))
    return nn.Sequential(*layers)


def td_target(target_net: nn.Module, batch: dict[str, torch.Tensor], gamma: float) -> torch.Tensor:
    """y = r + γ (1 − terminated) max_a' Q(s', a'; θ⁻), shape ``(B,)``, with no gradient.

    ``batch`` holds ``reward``, ``next_obs`` and ``terminated`` as sampled from
    :class:`~course_utils.replay.ReplayBuffer`. A truncated transition has
    ``terminated = 0`` and so still bootstraps from s'.
    """
    with torch.no_grad():
        next_q = target_net(batch["next_obs"].float()).max(dim=1).values  # max_a' Q(s', a'; θ⁻), (B,)
        return batch["reward"] + gamma * (1.0 - batch["terminated"]) * next_q  # no future after a terminal s'


def taken_q_values(q_net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Q(s, a; θ) of the actions the batch took, shape ``(B,)``, with gradient."""
    return q_net(batch["obs"].float()).gather(1, batch["action"].unsqueeze(1)).squeeze(1)


def td_loss(
    q_net: nn.Module, target_net: nn.Module, batch: dict[str, torch.Tensor], gamma: float, loss: str = "huber"
) -> torch.Tensor:
    """The DQN loss: mean over the batch of Huber (or squared) TD error y − Q(s, a; θ). A scalar."""
    q_taken = taken_q_values(q_net, batch)
    y = td_target(target_net, batch, gamma)
    return F.smooth_l1_loss(q_taken, y) if loss == "huber" else F.mse_loss(q_taken, y)


def prioritized_td_loss(
    q_net: nn.Module, target_net: nn.Module, batch: dict[str, torch.Tensor], gamma: float, loss: str = "huber"
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`td_loss` for a minibatch of :class:`~course_utils.replay.PrioritizedReplayBuffer`: each transition's
    Huber (or squared) TD error weighted by ``batch["weight"]``, and the TD errors δ = y − Q(s, a; θ), ``(B,)``
    without gradient, for the buffer's new priorities."""
    q_taken = taken_q_values(q_net, batch)
    error = td_target(target_net, batch, gamma) - q_taken
    per_item = F.huber_loss(error, torch.zeros_like(error), reduction="none") if loss == "huber" else error**2
    return (batch["weight"] * per_item).mean(), error.detach()


def n_gradient_steps(config: DQNConfig) -> int:
    """How many gradient steps :func:`train` takes over the whole budget (rounds × ``gradient_steps``)."""
    first_round = max(config.learning_starts, config.batch_size, 1)
    rounds = config.total_steps // config.train_freq - (first_round - 1) // config.train_freq
    return max(rounds, 0) * config.gradient_steps


@torch.no_grad()
def update_target(target_net: nn.Module, q_net: nn.Module, tau: float) -> None:
    """θ⁻ ← τ θ + (1 − τ) θ⁻ in place; ``tau=1`` copies θ exactly."""
    for target_param, param in zip(target_net.parameters(), q_net.parameters()):
        if tau == 1.0:
            target_param.copy_(param)
        else:
            target_param.lerp_(param, tau)


def train(
    config: DQNConfig,
    *,
    on_update: OnUpdate | None = None,
    progress_bar: bool = True,
) -> TrainResult:
    """Train a Q-network with DQN and return a :class:`~course_utils.algorithms.TrainResult`.

    ``on_update(steps, q_net)`` is called after every training round (every
    ``train_freq`` environment steps once learning has started), with the
    number of environment steps so far; returning True stops training.
    Re-seeds torch, NumPy and Python with ``config.seed`` first, so the same
    config gives the same run.

    ``result.policy`` is the online network (obs ``(B, obs_dim)`` → Q-values
    ``(B, A)``; greedy action = argmax). ``result.extras`` logs one entry per
    round: ``update_steps`` (environment steps so far), ``loss`` (mean TD loss
    of the round's updates) and ``epsilon`` (ε of the last action); it also
    holds the counts ``n_updates`` and ``target_updates``, and the ``replay``
    buffer and ``target_net`` themselves for inspection (notebook 08 measures
    the Bellman residual on the replay memory).
    """
    timer = Timer()
    seed_everything(config.seed)
    device = pick_device() if config.device == "auto" else torch.device(config.device)
    env_kwargs = {} if config.max_episode_steps is None else {"max_episode_steps": config.max_episode_steps}
    env = make_env(config.env_id, seed=config.seed, **env_kwargs)
    if not isinstance(env.action_space, gym.spaces.Discrete) or len(env.observation_space.shape) != 1:
        raise ValueError(
            f"{config.env_id}: DQN here needs a vector observation and discrete actions, "
            f"got {env.observation_space} and {env.action_space}"
        )
    obs_shape, n_actions = env.observation_space.shape, int(env.action_space.n)
    if config.obs_scale is not None and len(config.obs_scale) != obs_shape[0]:
        raise ValueError(
            f"{config.env_id}: observations have {obs_shape[0]} entries but obs_scale has {len(config.obs_scale)} "
            "(the default is CartPole's ranges); pass obs_scale=None or one scale per entry"
        )

    q_net = make_q_network(obs_shape[0], n_actions, config.hidden, config.obs_scale).to(device)
    # The frozen copy θ⁻; in the ablation the "target" is the online network itself.
    target_net = copy.deepcopy(q_net).requires_grad_(False) if config.use_target_network else q_net
    # fused=True: one kernel for the whole Adam step, 3x faster for a small MLP on a CPU (same maths).
    optimizer = torch.optim.Adam(q_net.parameters(), lr=config.lr, fused=True)
    # Without replay the memory holds just the latest batch_size transitions, used in time order.
    capacity = config.buffer_size if config.use_replay else config.batch_size
    # Two independent random streams from one seed: exploration (ε-greedy coin flips and random actions)
    # and replay sampling. Changing how often one is drawn from (ε, batch size) leaves the other unchanged.
    explore_seed, replay_seed = np.random.SeedSequence(config.seed).spawn(2)
    if config.prioritized_replay and config.use_replay:
        buffer = PrioritizedReplayBuffer(
            capacity, obs_shape, np.float32, seed=replay_seed, device=device, alpha=config.priority_alpha,
            beta=config.priority_beta, beta_steps=max(n_gradient_steps(config), 1),
        )  # fmt: skip
    else:
        buffer = ReplayBuffer(capacity, obs_shape, np.float32, seed=replay_seed, device=device)
    rng = np.random.default_rng(explore_seed)  # ε-greedy coin flips and random actions

    result = TrainResult(policy=q_net, episode_returns=[], episode_end_steps=[], steps=0, seconds=0.0)
    n_updates = target_updates = 0
    episode_return, stop = 0.0, False
    bar = training_bar(config.total_steps, f"DQN {config.env_id} seed {config.seed}", progress_bar)
    obs, _ = env.reset(seed=config.seed)
    step = 0
    while step < config.total_steps and not stop:
        # --- act: ε-greedy in the online network ---
        eps = epsilon(step, config.eps_start, config.eps_end, config.eps_decay_steps)
        if rng.random() < eps:
            action = int(rng.integers(n_actions))
        else:
            with torch.no_grad():
                action = int(q_net(torch.as_tensor(obs, device=device).unsqueeze(0)).argmax())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        step += 1
        # Store `terminated` only: after a truncation the target must still bootstrap from next_obs.
        buffer.add(obs, action, reward, next_obs, terminated)
        episode_return += float(reward)
        if terminated or truncated:
            result.episode_returns.append(episode_return)
            result.episode_end_steps.append(step)
            bar.set_postfix(ret=episode_return, eps=round(eps, 3), refresh=False)
            episode_return = 0.0
            obs, _ = env.reset()  # continues the environment's seeded stream
        else:
            obs = next_obs

        # --- learn: a round of gradient steps every train_freq environment steps ---
        if step >= config.learning_starts and step % config.train_freq == 0 and len(buffer) >= config.batch_size:
            if config.anneal_lr:  # the same schedule as A2C's and PPO's (course_utils.algorithms.common.decay_lr)
                decay_lr(optimizer, config, step)
            round_loss = 0.0
            for _ in range(config.gradient_steps):
                batch = buffer.sample(config.batch_size) if config.use_replay else buffer.latest(config.batch_size)
                if isinstance(buffer, PrioritizedReplayBuffer):
                    loss, errors = prioritized_td_loss(q_net, target_net, batch, config.gamma, config.loss)
                    buffer.update_priorities(batch["index"], errors)
                else:
                    loss = td_loss(q_net, target_net, batch, config.gamma, config.loss)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.max_grad_norm > 0:
                    nn.utils.clip_grad_norm_(q_net.parameters(), config.max_grad_norm)
                optimizer.step()
                n_updates += 1
                round_loss += loss.item()
                if config.use_target_network and n_updates % config.target_update_interval == 0:
                    update_target(target_net, q_net, config.tau)
                    target_updates += 1
            result.log(update_steps=step, loss=round_loss / config.gradient_steps, epsilon=eps)
            bar.update(step - bar.n)
            if on_update is not None and on_update(step, q_net):
                stop = True
    bar.update(step - bar.n)
    bar.close()
    env.close()
    result.steps, result.seconds = step, timer.seconds()
    result.extras.update(n_updates=n_updates, target_updates=target_updates, replay=buffer, target_net=target_net)
    return result
