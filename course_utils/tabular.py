"""Small tabular MDPs with exact answers: V^π, Q^π, J(θ) and its gradient, Q* by value iteration.

Explained in notebook 01 (the MDP, p(τ|θ), exact J(θ), value iteration) and
notebook 02 (the score-function gradient, checked against the exact ∇_θ J);
later notebooks use the exact numbers as ground truth for their estimators.

A :class:`TabularMDP` lists its dynamics as arrays (lecture notation;
``rewards[t]`` of a trajectory is r_{t+1}, the reward that follows a_t)::

    P[s, a, s']    p(s_{t+1} = s' | s_t = s, a_t = a)            (S, A, S)
    R[s, a]        r_{t+1} received for taking a in s           (S, A)
    p0[s]          p(s_0 = s)                                    (S,)
    terminal[s]    entering s ends the episode                   (S,) bool

A softmax-tabular policy has one logit per state and action::

    theta          (S, A) logits;  π_θ(a|s) = softmax(theta[s])[a]
    pi             (S, A) probabilities, rows sum to 1

Exact quantities come from the Bellman expectation equation, a linear system
over the non-terminal states (V = 0 on terminal states)::

    V^π(s)    = Σ_a π(a|s) [R(s,a) + γ Σ_s' P(s'|s,a) V^π(s')]
    Q^π(s,a)  = R(s,a) + γ Σ_s' P(s'|s,a) V^π(s')
    J(θ)      = Σ_s p0(s) V^{π_θ}(s) = E_{p(τ|θ)}[R_γ]

They are computed in float64 torch, so autograd gives the exact ∇_θ J(θ).
Sampling (:func:`sample_episode`, :func:`score_function_gradients`) runs in
NumPy from an explicit ``np.random.Generator``: the same generator state gives
the same episodes.

:func:`score_function_gradients`, the course's reference estimator, lives in
:mod:`course_utils.tabular_gradients` and is loaded from there on first use
(``from course_utils.tabular import score_function_gradients`` still works).
It sits apart so that a grading sandbox can hide it, together with
:mod:`course_utils.returns` which it uses, while this module (the MDPs, the
sampler, the exact answers) stays importable.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from .rollout import Trajectory

__all__ = [
    "DEFAULT_MAX_STEPS",
    "TabularEnv",
    "TabularMDP",
    "exact_J",
    "exact_Q",
    "exact_V",
    "greedy_policy",
    "make_example_mdp",
    "sample_episode",
    "score_function_gradients",  # noqa: F822 (loaded by __getattr__ below)
    "softmax_policy",
    "value_iteration",
]

DEFAULT_MAX_STEPS = 1000
"""Time limit of :func:`sample_episode`. With γ < 1 the rewards it can cut off are worth at most
γ^1000 · max|R| / (1 − γ) (1.7e-44 for the example MDP at γ = 0.9): negligible."""

_PROB_ATOL = 1e-8  # how far a row of probabilities may be from summing to 1


def __getattr__(name: str):
    """Load :func:`score_function_gradients` lazily from :mod:`course_utils.tabular_gradients` (see above)."""
    if name == "score_function_gradients":
        from .tabular_gradients import score_function_gradients

        return score_function_gradients
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True, eq=False)
class TabularMDP:
    """A finite MDP with deterministic rewards, stored as arrays (explained in notebook 01).

    Shapes: ``P`` (S, A, S) with ``P[s, a, s'] = p(s'|s, a)``; ``R`` (S, A),
    the reward r_{t+1} for taking a in s (whatever s' turns out to be); ``p0``
    (S,) the initial-state distribution; ``terminal`` (S,) bool. Entering a
    terminal state ends the episode; terminal states must absorb
    (``P[s, a, s] = 1``) with reward 0, and p0 may not start in one.
    ``gamma`` ∈ [0, 1] is the discount. The arrays are copied and made
    read-only, so an MDP cannot change after it was checked.
    """

    P: np.ndarray
    R: np.ndarray
    p0: np.ndarray
    terminal: np.ndarray
    gamma: float
    state_names: tuple[str, ...]
    action_names: tuple[str, ...]

    def __post_init__(self) -> None:
        P = _frozen_float(self.P, "P")
        if P.ndim != 3 or P.shape[0] != P.shape[2] or P.shape[0] == 0 or P.shape[1] == 0:
            raise ValueError(f"P must have shape (S, A, S) with p(s'|s,a) = P[s, a, s'], got shape {P.shape}")
        S, A = P.shape[0], P.shape[1]
        _check_distribution(P, "P[s, a, :]", "each P[s, a, :] is p(·|s, a) over next states")
        R = _frozen_float(self.R, "R")
        if R.shape != (S, A):
            raise ValueError(f"R must have shape (S, A) = {(S, A)} (one reward per state and action), got {R.shape}")
        p0 = _frozen_float(self.p0, "p0")
        if p0.shape != (S,):
            raise ValueError(f"p0 must have shape (S,) = ({S},), got {p0.shape}")
        _check_distribution(p0, "p0", "p0 is the initial-state distribution")
        terminal = np.array(self.terminal)
        if terminal.shape != (S,):
            raise ValueError(f"terminal must have shape (S,) = ({S},), got {terminal.shape}")
        if terminal.dtype != bool:
            if not np.isin(terminal, (0, 1)).all():
                raise ValueError(f"terminal must be booleans (True = terminal state), got {terminal.tolist()}")
            terminal = terminal.astype(bool)
        terminal.setflags(write=False)
        for s in np.flatnonzero(terminal):
            if not np.allclose(P[s, :, s], 1.0, atol=_PROB_ATOL) or np.any(R[s] != 0):
                raise ValueError(
                    f"terminal state {s} must absorb with reward 0: set P[{s}, a, {s}] = 1 and R[{s}, a] = 0 for every a"
                )
        if np.any(p0[terminal] > 0):
            raise ValueError(
                f"p0 puts probability on terminal states {np.flatnonzero(terminal & (p0 > 0)).tolist()}; episodes must start in a non-terminal state"
            )
        gamma = float(self.gamma)
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"the discount gamma must lie in [0, 1], got {self.gamma}")
        state_names = _names(self.state_names, S, "state_names", "S states")
        action_names = _names(self.action_names, A, "action_names", "A actions")
        for name, value in [
            ("P", P),
            ("R", R),
            ("p0", p0),
            ("terminal", terminal),
            ("gamma", gamma),
            ("state_names", state_names),
            ("action_names", action_names),
        ]:
            object.__setattr__(self, name, value)
        # Plain-list copies for the samplers (a step costs two bisections instead of NumPy calls).
        object.__setattr__(self, "_lists", (_cdf(p0).tolist(), _cdf(P).tolist(), R.tolist(), terminal.tolist()))

    @property
    def n_states(self) -> int:
        """S, the number of states (terminal ones included)."""
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        """A, the number of actions (the same in every state)."""
        return self.P.shape[1]

    def with_gamma(self, gamma: float) -> TabularMDP:
        """The same MDP with another discount γ."""
        return TabularMDP(self.P, self.R, self.p0, self.terminal, gamma, self.state_names, self.action_names)

    def describe(self) -> str:
        """A table of every non-terminal state and action: reward and next-state probabilities."""
        lines = [f"{'s':>10} {'a':>8} {'r':>6}   p(s'|s,a)"]
        for s in np.flatnonzero(~self.terminal):
            for a in range(self.n_actions):
                nexts = ", ".join(f"{self.state_names[n]} {self.P[s, a, n]:.2f}" for n in np.flatnonzero(self.P[s, a]))
                lines.append(f"{self.state_names[s]:>10} {self.action_names[a]:>8} {self.R[s, a]:+6.1f}   {nexts}")
        start = ", ".join(f"{self.state_names[s]} {self.p0[s]:.2f}" for s in np.flatnonzero(self.p0))
        ends = ", ".join(self.state_names[s] for s in np.flatnonzero(self.terminal)) or "none"
        lines.append(f"p(s_0): {start};  terminal: {ends};  gamma = {self.gamma}")
        return "\n".join(lines)


def _frozen_float(value, name: str) -> np.ndarray:
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of numbers ({err})") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    array.setflags(write=False)
    return array


def _check_distribution(p: np.ndarray, name: str, meaning: str) -> None:
    if np.any(p < 0):
        raise ValueError(f"{name} has negative probabilities; {meaning}")
    sums = p.sum(axis=-1)
    if not np.allclose(sums, 1.0, atol=_PROB_ATOL):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise ValueError(f"{name} must sum to 1 ({meaning}); the worst sum is off by {worst:.3g}")


def _names(names, n: int, field: str, what: str) -> tuple[str, ...]:
    names = tuple(names)
    if len(names) != n or not all(isinstance(x, str) for x in names) or len(set(names)) != n:
        raise ValueError(f"{field} must be {n} distinct strings, one per state/action ({what}), got {names!r}")
    return names


# ----------------------------------------------------------------------------- policies and exact values


def softmax_policy(theta: torch.Tensor) -> torch.Tensor:
    """π_θ(a|s) = softmax(θ[s])[a]: logits ``theta`` (..., S, A) -> probabilities (..., S, A), rows sum to 1.

    Differentiable; NumPy arrays are accepted and become tensors. Notebook 01.
    """
    theta = torch.as_tensor(theta)
    if theta.ndim < 2 or not theta.is_floating_point():
        raise ValueError(
            f"theta must be a floating-point (S, A) array of logits, got shape {tuple(theta.shape)}, dtype {theta.dtype}"
        )
    return torch.softmax(theta, dim=-1)


def _check_pi(mdp: TabularMDP, pi) -> torch.Tensor:
    pi = torch.as_tensor(pi, dtype=torch.float64) if not isinstance(pi, torch.Tensor) else pi.to(torch.float64)
    if pi.ndim < 2 or tuple(pi.shape[-2:]) != (mdp.n_states, mdp.n_actions):
        raise ValueError(
            f"pi must have shape (..., S, A) = (..., {mdp.n_states}, {mdp.n_actions}) with pi[s, a] = π(a|s), "
            f"got {tuple(pi.shape)}"
        )
    with torch.no_grad():
        if torch.any(pi < 0) or not torch.allclose(pi.sum(-1), torch.ones((), dtype=pi.dtype), atol=1e-6):
            raise ValueError(
                "every row pi[s, :] must be a probability distribution over actions (non-negative, summing to 1); "
                "from logits use softmax_policy(theta)"
            )
    return pi


def exact_V(mdp: TabularMDP, pi: torch.Tensor) -> torch.Tensor:
    """V^π(s) for every state, by solving the Bellman expectation equation (notebook 01).

    ``pi`` (..., S, A) -> V (..., S), float64 (batches of policies are solved
    at once). Terminal states have V = 0. Differentiable in ``pi``. With
    γ = 1 the policy must reach a terminal state with probability 1 from
    every state; otherwise V is infinite and a ValueError says so.
    """
    pi = _check_pi(mdp, pi)
    P, R = torch.tensor(mdp.P), torch.tensor(mdp.R)  # copies: mdp's arrays are read-only
    alive = torch.tensor(~mdp.terminal, dtype=torch.float64)  # 1 on non-terminal states
    P_pi = torch.einsum("...sa,sat->...st", pi, P) * alive[:, None] * alive[None, :]  # transitions among live states
    r_pi = (pi * R).sum(-1) * alive  # expected reward r_π(s)
    eye = torch.eye(mdp.n_states, dtype=torch.float64)
    try:
        V = torch.linalg.solve(eye - mdp.gamma * P_pi, r_pi.unsqueeze(-1)).squeeze(-1)
    except RuntimeError:
        V = None
    if V is None or not torch.all(torch.isfinite(V)) or (mdp.gamma == 1.0 and V.abs().max() > 1e12):
        raise ValueError(
            "V^π is not finite: with gamma = 1 this policy can avoid the terminal states forever; "
            "use gamma < 1 or a policy that terminates with probability 1"
        )
    return V


def exact_Q(mdp: TabularMDP, pi: torch.Tensor) -> torch.Tensor:
    """Q^π(s, a) = R(s,a) + γ Σ_s' P(s'|s,a) V^π(s'): ``pi`` (..., S, A) -> Q (..., S, A), float64 (notebook 01).

    Q is 0 on terminal states. Differentiable in ``pi``.
    """
    V = exact_V(mdp, pi)
    return torch.tensor(mdp.R) + mdp.gamma * torch.einsum("sat,...t->...sa", torch.tensor(mdp.P), V)


def exact_J(mdp: TabularMDP, theta: torch.Tensor) -> torch.Tensor:
    """J(θ) = Σ_s p0(s) V^{π_θ}(s) = E_{p(τ|θ)}[R_γ] for softmax logits ``theta`` (S, A) (notebooks 01, 02).

    Returns a float64 scalar (or one value per policy for a batch (..., S, A)).
    ``exact_J(mdp, theta).backward()`` puts the exact ∇_θ J(θ) in ``theta.grad``.
    """
    theta = torch.as_tensor(theta)
    if theta.ndim < 2 or tuple(theta.shape[-2:]) != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"theta must have shape (S, A) = ({mdp.n_states}, {mdp.n_actions}), got {tuple(theta.shape)}")
    V = exact_V(mdp, softmax_policy(theta.to(torch.float64) if theta.is_floating_point() else theta))
    return V @ torch.tensor(mdp.p0)


def value_iteration(mdp: TabularMDP, tol: float = 1e-10, max_iters: int = 10_000) -> tuple[np.ndarray, list[float]]:
    """Q* by repeating the Bellman optimality update from Q = 0 (notebook 01).

    One sweep: Q(s,a) <- R(s,a) + γ Σ_s' P(s'|s,a) max_a' Q(s',a'), with
    max_a' Q = 0 on terminal states. Returns ``Q`` (S, A) and the Bellman
    residual max|Q_new − Q| after each sweep; it stops once the residual is
    below ``tol``. The update is a γ-contraction, so each residual is at most
    γ times the previous one. Raises RuntimeError after ``max_iters`` sweeps
    (possible only with γ = 1).
    """
    if not tol > 0 or not isinstance(max_iters, int) or max_iters < 1:
        raise ValueError(f"need tol > 0 and a positive integer max_iters, got tol={tol}, max_iters={max_iters}")
    Q = np.zeros((mdp.n_states, mdp.n_actions))
    residuals: list[float] = []
    for _ in range(max_iters):
        V = np.where(mdp.terminal, 0.0, Q.max(axis=1))  # nothing follows a terminal state
        Q_new = mdp.R + mdp.gamma * mdp.P @ V
        residuals.append(float(np.max(np.abs(Q_new - Q))))
        Q = Q_new
        if residuals[-1] < tol:
            return Q, residuals
    raise RuntimeError(
        f"value iteration did not reach residual {tol} in {max_iters} sweeps (last {residuals[-1]:.3g}); "
        "with gamma = 1 some policy may never terminate"
    )


def greedy_policy(Q: np.ndarray) -> np.ndarray:
    """argmax_a Q(s, a) for every state: ``Q`` (S, A) -> actions (S,) (ties go to the first action). Notebook 01."""
    Q = np.asarray(Q.detach() if isinstance(Q, torch.Tensor) else Q, dtype=np.float64)
    if Q.ndim != 2:
        raise ValueError(f"Q must have shape (S, A), got {Q.shape}")
    return Q.argmax(axis=1)


# ----------------------------------------------------------------------------- sampling


def _policy_array(mdp: TabularMDP, pi) -> np.ndarray:
    if isinstance(pi, torch.Tensor):
        pi = pi.detach().cpu().numpy()
    pi = np.asarray(pi, dtype=np.float64)
    if pi.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(
            f"pi must have shape (S, A) = ({mdp.n_states}, {mdp.n_actions}) with pi[s, a] = π(a|s), got {pi.shape}"
        )
    if pi.min() < 0 or np.abs(pi.sum(axis=1) - 1.0).max() > _PROB_ATOL:
        _check_distribution(pi, "pi[s, :]", "each row is π(·|s); from logits use softmax_policy(theta)")
    return pi


def _check_max_steps(max_steps) -> int:
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
    return int(max_steps)


def _cdf(p: np.ndarray) -> np.ndarray:
    """Cumulative probabilities along the last axis, exactly 1 from the last possible outcome on.

    Setting the tail to exactly 1 means rounding in the cumulative sum can never
    select an outcome of probability zero.
    """
    cdf = np.cumsum(p, axis=-1)
    n = p.shape[-1]
    last = n - 1 - np.argmax(p[..., ::-1] > 0, axis=-1)
    cdf[np.arange(n) >= last[..., None]] = 1.0
    return cdf


def _draw(cdf, u: float) -> int:
    """Inverse-CDF sampling: the first index whose cumulative probability exceeds u ∈ [0, 1)."""
    return bisect.bisect_right(cdf, u)


class _Sampler:
    """The MDP and a policy as Python lists, so one step costs two bisections instead of NumPy calls."""

    def __init__(self, mdp: TabularMDP, pi: np.ndarray):
        self.p0_cdf, self.P_cdf, self.R, self.terminal = mdp._lists
        self.pi_cdf = _cdf(pi).tolist()

    def episode(self, rng: np.random.Generator, max_steps: int) -> Trajectory:
        s = _draw(self.p0_cdf, rng.random())
        states, actions, rewards = [s], [], []
        terminated = False
        while len(actions) < max_steps:
            a = _draw(self.pi_cdf[s], rng.random())  # a_t ~ π(·|s_t)
            rewards.append(self.R[s][a])  # r_{t+1} follows a_t
            s = _draw(self.P_cdf[s][a], rng.random())  # s_{t+1} ~ p(·|s_t, a_t)
            actions.append(a)
            states.append(s)
            if self.terminal[s]:
                terminated = True
                break
        return Trajectory(
            obs=np.array(states, dtype=np.int64),
            actions=np.array(actions, dtype=np.int64),
            rewards=np.array(rewards, dtype=np.float64),
            terminated=terminated,
            truncated=not terminated,
        )


def sample_episode(
    mdp: TabularMDP, pi: np.ndarray, rng: np.random.Generator, max_steps: int = DEFAULT_MAX_STEPS
) -> Trajectory:
    """Sample one episode τ ~ p(τ|π) (notebook 01).

    ``pi`` (S, A) holds π(a|s). Returns a :class:`~course_utils.rollout.Trajectory`
    with integer ``obs`` (T+1,) = s_0..s_T and ``actions`` (T,) = a_0..a_{T-1},
    float ``rewards`` (T,) = r_1..r_T. ``terminated`` when s_T is terminal;
    ``truncated`` when ``max_steps`` steps ran out first (for γ < 1 the missed
    rewards are worth at most γ^max_steps · max|R| / (1 − γ)). Randomness: one
    ``rng.random()`` for s_0, then two per step (the action, then the next state).
    """
    return _Sampler(mdp, _policy_array(mdp, pi)).episode(rng, _check_max_steps(max_steps))


# ----------------------------------------------------------------------------- gymnasium environment


class TabularEnv(gym.Env):
    """A gymnasium environment that samples from a :class:`TabularMDP` (notebook 01).

    Observations are state indices (``Discrete(S)``), actions ``Discrete(A)``.
    ``reset(seed=...)`` seeds the environment's RNG; ``step`` draws
    s_{t+1} ~ P[s_t, a_t] and returns r_{t+1} = R[s_t, a_t] and
    ``terminated`` when s_{t+1} is terminal. With ``max_episode_steps`` a time
    limit cuts episodes off and reports ``truncated=True`` (the state was not
    terminal). ``info["state_name"]`` names the state.
    ``reset(options={"state": s})`` starts in state ``s`` (index or name)
    instead of sampling s_0 from p0.
    """

    metadata = {"render_modes": []}

    def __init__(self, mdp: TabularMDP, max_episode_steps: int | None = None):
        if not isinstance(mdp, TabularMDP):
            raise ValueError(f"TabularEnv needs a TabularMDP, got {type(mdp).__name__}")
        self.mdp = mdp
        self.max_episode_steps = None if max_episode_steps is None else _check_max_steps(max_episode_steps)
        self.observation_space = gym.spaces.Discrete(mdp.n_states)
        self.action_space = gym.spaces.Discrete(mdp.n_actions)
        self._p0_cdf, self._P_cdf = mdp._lists[:2]
        self._state: int | None = None
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        start = (options or {}).get("state")
        if start is None:
            self._state = _draw(self._p0_cdf, self.np_random.random())
        else:
            names = self.mdp.state_names
            index = names.index(start) if start in names else start
            if (
                isinstance(index, bool)
                or not isinstance(index, (int, np.integer))
                or not 0 <= index < self.mdp.n_states
            ):
                raise ValueError(
                    f"options['state'] = {start!r} names no state; use an index below {self.mdp.n_states} or one of {names}"
                )
            if self.mdp.terminal[index]:
                raise ValueError(f"cannot start in terminal state {names[index]!r}")
            self._state = int(index)
        self._steps = 0
        return self._state, {"state_name": self.mdp.state_names[self._state]}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step(), and again after an episode ends")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an integer in 0..{self.mdp.n_actions - 1}, got {action!r}")
        s, a = self._state, int(action)
        reward = float(self.mdp.R[s, a])
        s_next = _draw(self._P_cdf[s][a], self.np_random.random())
        self._steps += 1
        terminated = bool(self.mdp.terminal[s_next])
        truncated = not terminated and self.max_episode_steps is not None and self._steps >= self.max_episode_steps
        self._state = None if (terminated or truncated) else s_next
        return s_next, reward, terminated, truncated, {"state_name": self.mdp.state_names[s_next]}


# ----------------------------------------------------------------------------- the course's example


def make_example_mdp(gamma: float = 0.9) -> TabularMDP:
    r"""The course's small MDP: a treasure hunt through a cave of junctions (notebooks 01 and 02).

    At every junction the explorer turns ``left`` or ``right``::

                 +1              0              -1 (toll)           +10
         coin <--left-- start ~~right~~> hall ==left==> bridge --right--> treasure
                          ^               |  <==left===   |
                          +-----right-----+       |       |
                                                  v       v
                                                  +- pit -+

        ~~> a narrow crawl: reaches the hall w.p. 0.5, else the explorer is back at the start
        ==> the rope bridge sways: reaches the intended state w.p. 0.8, drops into the pit w.p. 0.2

    ==============  =======================  ==========  ==============================
    state, action   meaning                  reward r    next state s'
    ==============  =======================  ==========  ==============================
    start, left     grab the coin and leave  +1          coin (terminal)
    start, right    crawl into the hall      0           hall 0.5, start 0.5
    hall, left      cross the rope bridge    -1 (toll)   bridge 0.8, pit 0.2
    hall, right     walk back                0           start
    bridge, left    turn back                0           hall 0.8, pit 0.2
    bridge, right   open the chest           +10         treasure (terminal)
    ==============  =======================  ==========  ==============================

    States ``start, hall, bridge`` (non-terminal) and ``coin, treasure, pit``
    (terminal); p(s_0): start 0.8, hall 0.2. The +10 comes three decisions
    after the start and only after paying the toll, so discounting and credit
    assignment matter. At γ = 0.9 the optimal policy is right, left, right
    (start, hall, bridge) with J* = 5.298; the policy greedy in the immediate
    reward (left, right, right) is optimal only for γ ≤ 1/7. Under the
    uniform policy an episode lasts 2.5 steps on average, so
    thousands of episodes sample in well under a second. ``hall`` and
    ``bridge`` need opposite actions: notebook 01 makes them look alike
    to show what breaking the Markov assumption costs.

    Truncation: :func:`sample_episode`'s default limit of 1000 steps can cut
    off rewards worth at most γ^1000 · 10 / (1 − γ) (1.7e-44 at γ = 0.9), so
    Monte Carlo estimates agree with :func:`exact_J` to within their
    standard errors. (At γ = 1 the bound relies on termination instead:
    every softmax policy with finite θ terminates with probability 1.)
    """
    names = ("start", "hall", "bridge", "coin", "treasure", "pit")
    start, hall, bridge, coin, treasure, pit = range(6)
    left, right = 0, 1
    P = np.zeros((6, 2, 6))
    R = np.zeros((6, 2))
    P[start, left, coin] = 1.0
    R[start, left] = 1.0
    P[start, right, hall], P[start, right, start] = 0.5, 0.5
    P[hall, left, bridge], P[hall, left, pit] = 0.8, 0.2
    R[hall, left] = -1.0
    P[hall, right, start] = 1.0
    P[bridge, left, hall], P[bridge, left, pit] = 0.8, 0.2
    P[bridge, right, treasure] = 1.0
    R[bridge, right] = 10.0
    for s in (coin, treasure, pit):
        P[s, :, s] = 1.0
    p0 = np.zeros(6)
    p0[start], p0[hall] = 0.8, 0.2
    terminal = np.array([False, False, False, True, True, True])
    return TabularMDP(P, R, p0, terminal, gamma, names, ("left", "right"))
