"""Soft actor-critic (SAC) for continuous actions: reparameterization inside an RL algorithm.

Notebook 10 builds it piece by piece; ``benchmarks/pendulum.py`` compares :func:`train`
with stable-baselines3's SAC on Pendulum-v1.

The policy is a **tanh-squashed Gaussian**: the actor outputs μ_θ(s) and log σ_θ(s), and

    u = μ_θ(s) + σ_θ(s) · ε,   ε ~ N(0, I),      a = tanh(u) ∈ (−1, 1)^d

(the environment receives ``action_scale · a``). Because a is a smooth function of θ and the
noise ε, the actor's loss can be differentiated *through the sample* (the pathwise gradient of
notebook 06) — the critic Q_φ(s, a) makes the return a differentiable function of a. The density
of a follows from the change of variables u → tanh(u) (:func:`squashed_log_prob`)::

    log π(a|s) = log N(u; μ, σ²) − Σ_i log(1 − tanh²(u_i))

One update on a minibatch (s, a, r, s', terminated) from the replay memory, with α = exp(log α)::

    y      = r + γ (1 − terminated) (min_k Q_φ̄k(s', a') − α log π(a'|s')),  a' ~ π(·|s')   (critic_target)
    critic : mean over k of ½ (Q_φk(s, a) − y)²            (two critics, k = 1, 2: the "twin" trick)
    actor  : mean( α log π(ã|s) − min_k Q_φk(s, ã) ),  ã = tanh(μ + σε), gradient through ã
    α      : mean( −log α · (log π(ã|s) + H̄) )            (raises α while the entropy is below H̄ = −dim A)
    φ̄k     ← (1 − τ) φ̄k + τ φk                             (Polyak-averaged target critics)

The three losses are summed and minimised by ONE backward pass and one Adam step (a speed choice:
the actor's loss uses the critics' weights detached, so each loss moves only its own
parameters; the actor sees the critics as they were before this step's critic update).

Symbols and shapes (B = batch size, d = action dimension, K = 2 critics)::

    obs, next_obs   (B, obs_dim)     s, s'
    action          (B, d)           a in (−1, 1), the squashed action (before action_scale)
    reward          (B,)             r
    terminated      (B,)             1.0 where s' is terminal; a time limit is NOT termination
    critic(obs, a)  (K, B)           Q_φ1(s, a) and Q_φ2(s, a)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..seeding import make_env, seed_everything
from ..torch_setup import pick_device
from .common import OnUpdate, Timer, TrainResult, check_config, training_bar

__all__ = [
    "SACConfig",
    "SquashedGaussianActor",
    "TransitionMemory",
    "TwinCritic",
    "critic_target",
    "evaluate_actor",
    "sac_losses",
    "squashed_log_prob",
    "train",
]

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # σ between 2e-9 and 7.4: keeps exp(log σ) finite early in training


@dataclass
class SACConfig:
    """Hyperparameters of :func:`train`; ``SACConfig.fast()`` is the same with a budget of seconds.

    The defaults are tuned for Pendulum-v1 and wall-clock on a CPU. Against rl-baselines3-zoo's
    (stable-baselines3 defaults with lr 1e-3, 20k steps) they use 64-64 networks instead of 256-256
    and 1,000 uniformly random steps before learning instead of 100; the rest is the same
    (batch 256, γ = 0.99, τ = 0.005, one gradient step per environment step, α tuned automatically
    towards the entropy −dim A, starting at α = 1).
    """

    env_id: str = "Pendulum-v1"  # gymnasium id: vector observations, a Box action space
    seed: int = 0  # seeds networks, environment, the random warm-up actions and replay sampling
    total_steps: int = 15_000  # environment steps to train for (on_update may stop earlier)
    learning_starts: int = 1_000  # uniformly random actions (and no updates) for the first steps
    buffer_size: int = 100_000  # replay memory capacity (transitions)
    batch_size: int = 256  # transitions per gradient step
    train_freq: int = 1  # environment steps between rounds of gradient steps
    gradient_steps: int = 1  # gradient steps per round (SB3's meaning: 1 and 1 = one step per env step)
    lr: float = 1e-3  # Adam step size of the actor, both critics and log α
    hidden: tuple[int, ...] = (64, 64)  # hidden layer widths of the actor and of each critic
    gamma: float = 0.99  # discount γ
    tau: float = 0.005  # Polyak rate τ of the target critics
    init_alpha: float = 1.0  # temperature α at the start
    autotune_alpha: bool = True  # learn α towards target_entropy; False keeps α = init_alpha (0: no entropy bonus)
    target_entropy: float | None = None  # H̄; None means −dim A
    device: str = "auto"  # "auto" (CUDA if available, else CPU), "cpu" or "cuda"

    @classmethod
    def fast(cls, **overrides) -> SACConfig:
        """A budget of a few seconds for tests and fast mode: same algorithm, fewer steps."""
        return cls(**{"total_steps": 1_500, "learning_starts": 500, **overrides})

    def __post_init__(self) -> None:
        check_config(
            self,
            positive_ints=("total_steps", "buffer_size", "batch_size", "train_freq", "gradient_steps"),
            positive=("lr",),
            unit_interval=("gamma", "tau"),
            non_negative=("learning_starts", "init_alpha"),
        )
        if self.autotune_alpha and self.init_alpha <= 0:
            raise ValueError("SACConfig.init_alpha must be positive when autotune_alpha is True (α = exp(log α))")


# --- The squashed Gaussian policy -----------------------------------------------------------------


def squashed_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log π(a|s) of a = tanh(u), u ~ N(mean, exp(log_std)²) per dimension; all (..., d) -> (...,).

    Change of variables: log p_a(a) = log p_u(u) − Σ_i log |d tanh(u_i)/du_i|, and
    log(1 − tanh²u) = 2 (log 2 − u − softplus(−2u)) is the same number without the
    cancellation of 1 − tanh²u at large |u|.
    """
    gaussian = -0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
    log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return (gaussian - log_det).sum(-1)


class SquashedGaussianActor(nn.Module):
    """π_θ(a|s): an MLP gives μ_θ(s) and log σ_θ(s) (each (B, d)); a = tanh(μ + σε).

    ``actor(obs)`` returns ``(mean, log_std)``; :meth:`sample` a reparameterized squashed action
    and its log-density; :meth:`greedy` the deterministic action tanh(μ) used for evaluation.
    ``action_scale`` (a buffer) maps (−1, 1) to the environment's range.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (64, 64), action_scale=1.0):
        super().__init__()
        sizes = [obs_dim, *hidden]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(sizes[-1], 2 * act_dim)  # μ and log σ side by side
        self.act_dim = act_dim
        self.register_buffer("action_scale", torch.as_tensor(action_scale, dtype=torch.float32).reshape(-1))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.head(self.trunk(obs)).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterized sample a = tanh(μ + σε) in (−1, 1)^d and log π(a|s); shapes (B, d), (B,)."""
        mean, log_std = self(obs)
        u = mean + log_std.exp() * torch.randn_like(mean)
        return torch.tanh(u), squashed_log_prob(u, mean, log_std)

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action tanh(μ_θ(s)) in environment units (× action_scale), (B, d)."""
        return torch.tanh(self(obs)[0]) * self.action_scale


class TwinCritic(nn.Module):
    """K = 2 Q-networks Q_φk(s, a) evaluated together: ``critic(obs, action)`` has shape (2, B).

    Each layer holds both critics' weights in one (2, n_in, n_out) tensor, so the two MLPs cost
    one batched matrix product per layer (``torch.baddbmm``), not two. They are independent
    networks with independent initialisations (PyTorch's ``nn.Linear`` default, uniform in
    ±1/√n_in). ``detach_weights=True`` evaluates them with their weights cut from the graph:
    the gradient then reaches the action only (the actor's loss).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (64, 64), n_critics: int = 2):
        super().__init__()
        sizes = [obs_dim + act_dim, *hidden, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(n_in)
            self.weights.append(nn.Parameter(torch.empty(n_critics, n_in, n_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n_critics, 1, n_out).uniform_(-bound, bound)))

    def forward(self, obs: torch.Tensor, action: torch.Tensor, detach_weights: bool = False) -> torch.Tensor:
        x = torch.cat([obs, action], dim=-1).expand(len(self.weights[0]), -1, -1)  # (K, B, obs_dim + d)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if detach_weights:
                w, b = w.detach(), b.detach()
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = F.relu(x)
        return x.squeeze(-1)  # (K, B)


# --- The losses -----------------------------------------------------------------------------------


def critic_target(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    next_q: torch.Tensor,
    next_log_prob: torch.Tensor,
    alpha: float | torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """The soft TD target y = r + γ (1 − terminated) (min_k Q_φ̄k(s', a') − α log π(a'|s')), shape (B,).

    ``next_q`` (K, B) are the target critics at (s', a') with a' ~ π(·|s'); ``next_log_prob`` (B,)
    is log π(a'|s'). The minimum over the twins counters the overestimation that a max (or an
    argmax of the actor) over noisy critics creates; −α log π adds the entropy bonus of the next
    state. A truncated (time-limit) transition keeps terminated = 0 and bootstraps.
    """
    soft_value = next_q.min(dim=0).values - alpha * next_log_prob
    return reward + gamma * (1.0 - terminated) * soft_value


def sac_losses(
    actor: SquashedGaussianActor,
    critic: TwinCritic,
    target_critic: TwinCritic,
    log_alpha: torch.Tensor,
    batch: dict[str, torch.Tensor],
    gamma: float,
    target_entropy: float,
) -> dict[str, torch.Tensor]:
    """The critic, actor and temperature losses of one minibatch, and what they were computed from.

    Returns scalars ``critic``, ``actor``, ``alpha`` (losses; their sum is what one Adam step
    minimises) and ``log_prob`` (B,) = log π(ã|s) of the actor's fresh samples (its negative mean
    estimates the policy's entropy), ``q`` (K, B) the critics at the stored actions.
    """
    alpha = log_alpha.detach().exp()
    with torch.no_grad():
        next_action, next_log_prob = actor.sample(batch["next_obs"])
        y = critic_target(
            batch["reward"],
            batch["terminated"],
            target_critic(batch["next_obs"], next_action),
            next_log_prob,
            alpha,
            gamma,
        )
    q = critic(batch["obs"], batch["action"])
    critic_loss = 0.5 * ((q - y) ** 2).mean(dim=1).sum()
    action, log_prob = actor.sample(batch["obs"])  # ã = tanh(μ + σε): differentiable in θ
    q_pi = critic(batch["obs"], action, detach_weights=True).min(dim=0).values
    actor_loss = (alpha * log_prob - q_pi).mean()
    alpha_loss = -(log_alpha * (log_prob.detach() + target_entropy)).mean()
    return {"critic": critic_loss, "actor": actor_loss, "alpha": alpha_loss, "log_prob": log_prob, "q": q}


# --- Replay memory for continuous actions ---------------------------------------------------------


class TransitionMemory:
    """A ring buffer of (s, a, r, s', terminated) rows in ONE preallocated tensor, sampled uniformly.

    :class:`course_utils.replay.ReplayBuffer` (notebook 08) stores integer actions; this one
    stores float action vectors, and keeps each transition as one row so that a minibatch is a
    single indexing operation. ``sample(B)`` returns the same dict of tensors as ReplayBuffer's,
    with ``action`` of shape (B, d).
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, *, seed: int, device="cpu"):
        self.capacity, self.obs_dim, self.act_dim = int(capacity), obs_dim, act_dim
        self.rows = torch.zeros(self.capacity, 2 * obs_dim + act_dim + 2, device=device)
        self.pos = self.size = 0
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward, next_obs, terminated) -> None:
        row = np.concatenate([obs, action, next_obs, [reward, float(terminated)]], dtype=np.float32)
        self.rows[self.pos] = torch.from_numpy(row)
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        index = torch.randint(self.size, (batch_size,), generator=self.generator, device=self.rows.device)
        obs, action, next_obs, rest = self.rows[index].split([self.obs_dim, self.act_dim, self.obs_dim, 2], dim=1)
        return {"obs": obs, "action": action, "reward": rest[:, 0], "next_obs": next_obs, "terminated": rest[:, 1]}


# --- Evaluation and training ------------------------------------------------------------------------


def evaluate_actor(
    actor: SquashedGaussianActor, env_id: str = "Pendulum-v1", n_episodes: int = 10, seed: int = 10_000
) -> tuple[float, float]:
    """Mean and standard deviation of the greedy action tanh(μ)'s undiscounted return.

    The continuous-action counterpart of :func:`course_utils.evaluation.evaluate`: the same
    protocol (episode k reset with seed ``seed + k``), the episodes stepped side by side with one
    batched forward pass per step.
    """
    envs = [gym.make(env_id) for _ in range(n_episodes)]
    device = next(actor.parameters()).device
    obs = np.stack([env.reset(seed=seed + k)[0] for k, env in enumerate(envs)])
    returns, running = np.zeros(n_episodes), np.ones(n_episodes, dtype=bool)
    with torch.no_grad():
        while running.any():
            actions = actor.greedy(torch.as_tensor(obs, dtype=torch.float32, device=device)).cpu().numpy()
            for k in np.flatnonzero(running):
                obs[k], reward, terminated, truncated, _ = envs[k].step(actions[k])
                returns[k] += reward
                running[k] = not (terminated or truncated)
    for env in envs:
        env.close()
    return float(returns.mean()), float(returns.std())


def train(config: SACConfig, *, on_update: OnUpdate | None = None, progress_bar: bool = True) -> TrainResult:
    """Train SAC and return a :class:`~course_utils.algorithms.TrainResult`.

    ``result.policy`` is the :class:`SquashedGaussianActor` (its ``greedy(obs)`` is the evaluated
    action; :func:`evaluate_actor` scores it); ``result.value`` the :class:`TwinCritic`.
    ``on_update(steps, actor)`` is called after every round of gradient steps; returning True stops.
    ``result.extras`` logs every 100 environment steps once learning has started: ``update_steps``,
    ``critic_loss``, ``actor_loss``, ``alpha``, ``entropy`` (−mean log π of the batch's fresh
    actions) and ``q`` (mean Q of the stored actions); plus ``target_entropy``, and the
    ``target_critic``, ``log_alpha`` and ``memory`` themselves for inspection.
    """
    timer = Timer()
    seed_everything(config.seed)
    device = pick_device() if config.device == "auto" else torch.device(config.device)
    env = make_env(config.env_id, seed=config.seed)
    if not isinstance(env.action_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
        raise ValueError(f"{config.env_id}: SAC here needs vector observations and a Box action space")
    if not np.allclose(env.action_space.low, -env.action_space.high):
        raise ValueError(f"{config.env_id}: the action range must be symmetric, got {env.action_space}")
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    target_entropy = -float(act_dim) if config.target_entropy is None else float(config.target_entropy)

    actor = SquashedGaussianActor(obs_dim, act_dim, config.hidden, env.action_space.high).to(device)
    critic = TwinCritic(obs_dim, act_dim, config.hidden).to(device)
    target_critic = copy.deepcopy(critic).requires_grad_(False)
    # α = exp(log α); a fixed α = 0 (no entropy bonus) is stored as exp(−69) ≈ 1e-30
    log_alpha = torch.tensor(
        math.log(max(config.init_alpha, 1e-30)), device=device, requires_grad=config.autotune_alpha
    )
    parameters = [*actor.parameters(), *critic.parameters()] + ([log_alpha] if config.autotune_alpha else [])
    optimizer = torch.optim.Adam(parameters, lr=config.lr, fused=True)  # one kernel for every tensor
    critic_params, target_params = list(critic.parameters()), list(target_critic.parameters())
    memory = TransitionMemory(config.buffer_size, obs_dim, act_dim, seed=config.seed + 1, device=device)
    rng = np.random.default_rng(config.seed + 2)  # the warm-up's uniformly random actions

    result = TrainResult(policy=actor, episode_returns=[], episode_end_steps=[], steps=0, seconds=0.0, value=critic)
    bar = training_bar(config.total_steps, f"SAC {config.env_id} seed {config.seed}", progress_bar)
    scale = env.action_space.high
    obs, _ = env.reset(seed=config.seed)
    episode_return, step, stop = 0.0, 0, False
    while step < config.total_steps and not stop:
        # --- act: uniformly random during the warm-up, then a sample of π_θ(·|s) ---
        if step < config.learning_starts:
            action = rng.uniform(-1.0, 1.0, size=act_dim).astype(np.float32)
        else:
            with torch.no_grad():
                action = actor.sample(torch.as_tensor(obs, device=device)[None])[0][0].cpu().numpy()
        next_obs, reward, terminated, truncated, _ = env.step(action * scale)
        step += 1
        memory.add(obs, action, reward, next_obs, terminated)  # terminated only: truncations bootstrap
        episode_return += float(reward)
        if terminated or truncated:
            result.episode_returns.append(episode_return)
            result.episode_end_steps.append(step)
            bar.set_postfix(ret=f"{episode_return:.0f}", refresh=False)
            episode_return = 0.0
            obs, _ = env.reset()
        else:
            obs = next_obs

        # --- learn: one Adam step on the sum of the three losses, then move the target critics ---
        if step >= config.learning_starts and step % config.train_freq == 0 and len(memory) >= config.batch_size:
            for _ in range(config.gradient_steps):
                losses = sac_losses(
                    actor,
                    critic,
                    target_critic,
                    log_alpha,
                    memory.sample(config.batch_size),
                    config.gamma,
                    target_entropy,
                )
                loss = losses["critic"] + losses["actor"] + losses["alpha"]  # α's loss is constant if not tuned
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    torch._foreach_lerp_(target_params, critic_params, config.tau)  # φ̄ ← φ̄ + τ (φ − φ̄)
            if step % (100 * config.train_freq) < config.train_freq:
                result.log(
                    update_steps=step,
                    critic_loss=losses["critic"].item(),
                    actor_loss=losses["actor"].item(),
                    alpha=log_alpha.exp().item(),
                    entropy=-losses["log_prob"].mean().item(),
                    q=losses["q"].mean().item(),
                )
                bar.update(step - bar.n)
            if on_update is not None and on_update(step, actor):
                stop = True
    bar.update(step - bar.n)
    bar.close()
    env.close()
    result.steps, result.seconds = step, timer.seconds()
    result.extras.update(target_entropy=target_entropy, target_critic=target_critic, log_alpha=log_alpha, memory=memory)
    return result
