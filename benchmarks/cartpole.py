#!/usr/bin/env python3
"""CartPole-v1: when does each algorithm reach 475, does it stay there, and where does it end?

    .venv/bin/python benchmarks/cartpole.py                       # every entry, seeds 0-9
    .venv/bin/python benchmarks/cartpole.py --algos ppo sb3-ppo --seeds 0 1 2

Each run trains one algorithm with one seed **for its whole budget** (each side its own documented
budget, below) and applies the course's evaluation protocol (``course_utils.evaluation.evaluate``:
greedy policy, 10 episodes on the fixed evaluation seeds 10000-10009) every ``--eval-every`` env
steps, at the first update after each multiple of it (for stable-baselines3, at the start of the
first rollout after it, i.e. right after an update too). Three criteria:

- **first reached**: the first evaluation whose mean is >= 475 (CartPole-v1's reward threshold);
- **reached and held**: the first evaluation from which the next three are all >= 475 too (the
  evaluation itself and the three after it, about 3,000 env steps); once held, evaluations stop
  (training goes on to the end of the budget);
- **final**: a 20-episode evaluation (seeds 10000-10019) of the network at the end of the budget,
  counted as solved when its mean is >= 475; "both" counts the seeds that held and end solved.

Steps, wall-clock and CPU time are reported at the evaluation that counts; **evaluation time is
excluded** on both sides; the clock starts before the environments and networks are built.

Budgets (env steps): ours are the config defaults (``ReinforceConfig``, ``A2CConfig``,
``PPOConfig``, ``TRPOConfig``: 100k; ``DQNConfig``: 50k); stable-baselines3 (sb3-contrib for
TRPO) uses the rl-baselines3-zoo hyperparameters and budgets for CartPole-v1 (``hyperparams/ppo.yml``
1e5, ``a2c.yml`` 5e5, ``dqn.yml`` 5e4, ``trpo.yml`` 1e5), copied below; the pytorch/examples
REINFORCE entry has no budget of its own: it trains until its running average of training returns
passes 475 (the example's own end), at most 200k.

Every run executes in a fresh process with one torch thread; it stops itself after ``--timeout``
seconds of training and is killed 60 s later if it hangs. Runs are interleaved seed by seed so that
a busy machine slows every entry alike; the machine's load average is printed before and after each
run. Before the runs, the script measures the policy-in-the-loop ceiling: a 4-64-2 MLP sampling
actions in 8 synchronous CartPoles, no learning; each entry's training throughput (env steps per
second of training, updates included, evaluations excluded) is printed beside it.
``benchmarks/RESULTS.md`` holds a measured table and how to read it. Requires the ``bench`` extra
(stable-baselines3, sb3-contrib).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

TARGET = 475.0  # CartPole-v1's reward threshold (env.spec.reward_threshold)
ENV_ID = "CartPole-v1"
HOLD = 3  # "held": the next HOLD evaluations after the first success are >= TARGET too
FINAL_EPISODES = 20  # the evaluation at the end of the budget


# --------------------------------------------------------------------------------------------------
# The evaluation protocol, shared by every entry
# --------------------------------------------------------------------------------------------------


def first_held(history, target: float = TARGET, hold: int = HOLD):
    """The first entry of ``history`` (tuples whose second item is an evaluation's mean) that is >= ``target`` and
    followed by ``hold`` more that are all >= ``target``, or None: the "held" criterion."""
    for i in range(len(history) - hold):
        if all(h[1] >= target for h in history[i : i + hold + 1]):
            return history[i]
    return None


class Protocol:
    """Callable ``(steps, net) -> stop`` applying the evaluation protocol during training.

    Evaluates at the first call at or after each multiple of ``eval_every`` env steps until the
    target is reached and held; asks training to stop only when ``budget`` steps are used up or the
    training wall-clock exceeds ``time_limit``. ``history`` holds (steps, mean, training seconds,
    training CPU seconds) of every evaluation; evaluation time is excluded from both clocks.
    ``target``, ``hold`` and :meth:`evaluate` are what another task's benchmark overrides
    (``benchmarks/pendulum.py``).
    """

    target, hold = TARGET, HOLD

    def __init__(self, eval_every: int, budget: int, time_limit: float):
        self.eval_every, self.budget, self.time_limit = eval_every, budget, time_limit
        self.next_eval = eval_every
        self.eval_seconds = self.eval_cpu_seconds = 0.0
        self.history: list[tuple[int, float, float, float]] = []
        self.steps = 0
        self.restart_clock()

    def restart_clock(self) -> None:
        self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def training_seconds(self) -> float:
        return time.perf_counter() - self.start - self.eval_seconds

    def training_cpu_seconds(self) -> float:
        return time.process_time() - self.cpu_start - self.eval_cpu_seconds

    def out_of_budget(self, steps: int) -> bool:
        return steps >= self.budget or self.training_seconds() > self.time_limit

    def first_hit(self):
        return next((h for h in self.history if h[1] >= self.target), None)

    def held(self):
        """The first evaluation >= target followed by ``hold`` more that are all >= target, or None."""
        return first_held(self.history, self.target, self.hold)

    def evaluate(self, net) -> float:
        """The greedy policy's mean return over 10 episodes on the evaluation seeds 10000-10009."""
        from course_utils.evaluation import evaluate

        return evaluate(net, ENV_ID, n_episodes=10, seed=10_000)[0]

    def __call__(self, steps: int, net) -> bool:
        self.steps = steps
        if steps >= self.next_eval and self.held() is None:
            self.next_eval = (steps // self.eval_every + 1) * self.eval_every
            train_seconds, train_cpu_seconds = self.training_seconds(), self.training_cpu_seconds()
            started, cpu_started = time.perf_counter(), time.process_time()
            mean = self.evaluate(net)
            self.eval_seconds += time.perf_counter() - started
            self.eval_cpu_seconds += time.process_time() - cpu_started
            self.history.append((steps, mean, train_seconds, train_cpu_seconds))
        return self.out_of_budget(steps)


# --------------------------------------------------------------------------------------------------
# Entries: one function per algorithm, (seed, protocol) -> final network. Add one by adding an entry.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    label: str  # shown in the table
    run: Callable  # run(seed, protocol) -> the trained network (obs -> action scores), trains the whole budget
    budget: int  # env steps: the entry's own documented budget
    counterpart: str | None = None  # key of the peer entry to compute ratios against
    needs: str | None = None  # module it imports


def _config_budget(module_name: str, config_name: str) -> int:
    module = importlib.import_module(module_name)
    return int(getattr(module, config_name)().total_steps)


def _run_ours(module_name: str, config_name: str):
    def run(seed: int, protocol: Protocol):
        module = importlib.import_module(module_name)
        config = getattr(module, config_name)(seed=seed, total_steps=protocol.budget)
        protocol.restart_clock()
        result = module.train(config, on_update=protocol, progress_bar=False)
        protocol.steps = result.steps
        return result.policy

    return run


# rl-baselines3-zoo hyperparams, CartPole-v1 entries (hyperparams/ppo.yml, a2c.yml, dqn.yml, trpo.yml), verbatim.
ZOO = {
    "ppo": dict(
        n_envs=8,
        n_timesteps=1e5,
        policy="MlpPolicy",
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate="lin_0.001",
        clip_range="lin_0.2",
    ),
    "a2c": dict(n_envs=8, n_timesteps=5e5, policy="MlpPolicy", ent_coef=0.0),
    "dqn": dict(
        n_timesteps=5e4,
        policy="MlpPolicy",
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100000,
        learning_starts=1000,
        gamma=0.99,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs="dict(net_arch=[256, 256])",
    ),
    # sb3-contrib's TRPO (hyperparams/trpo.yml, zoo commit 22e3ff2): no normalize, no schedules; 2 envs.
    "trpo": dict(
        n_envs=2,
        n_timesteps=1e5,
        policy="MlpPolicy",
        n_steps=512,
        batch_size=512,
        cg_damping=1e-3,
        gae_lambda=0.98,
        gamma=0.99,
        learning_rate=1e-3,
        n_critic_updates=20,
    ),
}
# The library each zoo entry's algorithm class comes from (the class is the key in capitals: ppo -> PPO).
ZOO_LIBRARY = {
    "ppo": "stable_baselines3",
    "a2c": "stable_baselines3",
    "dqn": "stable_baselines3",
    "trpo": "sb3_contrib",
}


def _zoo_kwargs(hyperparams: dict) -> tuple[dict, int, int, str]:
    """Turn a zoo entry into (model kwargs, n_envs, n_timesteps, policy) like rl_zoo3 does."""
    kwargs = dict(hyperparams)
    n_envs = int(kwargs.pop("n_envs", 1))
    n_timesteps = int(kwargs.pop("n_timesteps"))
    policy = kwargs.pop("policy")
    for key, value in list(kwargs.items()):
        if isinstance(value, str) and value.startswith("lin_"):
            initial = float(value[len("lin_") :])
            # rl_zoo3's linear_schedule: value decays linearly from `initial` to 0 over n_timesteps.
            kwargs[key] = lambda progress_remaining, initial=initial: progress_remaining * initial
        elif key == "policy_kwargs" and isinstance(value, str):
            kwargs[key] = eval(value, {"dict": dict})  # e.g. "dict(net_arch=[256, 256])"
    return kwargs, n_envs, n_timesteps, policy


def _run_sb3(algo: str):
    def run(seed: int, protocol: Protocol):
        import torch
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import DummyVecEnv

        class Scores(torch.nn.Module):
            """obs -> action scores of an SB3 model: policy logits (PPO, A2C, TRPO) or Q-values (DQN)."""

            def __init__(self, model):
                super().__init__()
                self.policy = model.policy

            def forward(self, obs):
                if hasattr(self.policy, "q_net"):
                    return self.policy.q_net(obs)
                return self.policy.get_distribution(obs).distribution.logits

        class ProtocolCallback(BaseCallback):
            """Evaluate right after each update: at the start of the next rollout (and at the very end)."""

            def __init__(self):
                super().__init__()
                self.stop = False

            def _check(self) -> None:
                if not self.stop and protocol(self.num_timesteps, Scores(self.model)):
                    self.stop = True  # the budget (or --max-steps, or the time limit) is used up

            def _on_rollout_start(self) -> None:
                self._check()

            def _on_training_end(self) -> None:
                self._check()

            def _on_step(self) -> bool:
                return not self.stop

        algorithm = getattr(importlib.import_module(ZOO_LIBRARY[algo]), algo.upper())
        kwargs, n_envs, n_timesteps, policy = _zoo_kwargs(ZOO[algo])
        protocol.restart_clock()
        env = make_vec_env(ENV_ID, n_envs=n_envs, seed=seed, vec_env_cls=DummyVecEnv)
        model = algorithm(policy, env, seed=seed, device="cpu", verbose=0, **kwargs)
        # total_timesteps = the zoo's n_timesteps, so the linear schedules match the zoo's exactly.
        model.learn(total_timesteps=n_timesteps, callback=ProtocolCallback())
        protocol.steps = model.num_timesteps
        env.close()
        return Scores(model)

    return run


def _run_pytorch_examples_reinforce(seed: int, protocol: Protocol):
    """pytorch/examples reinforcement_learning/reinforce.py, re-implemented (no code downloaded).

    The same algorithm as the current example: policy 4-128-2 with dropout 0.6 before the ReLU,
    Adam lr 1e-2, γ = 0.99, one update per episode on returns normalised within the episode, loss
    Σ -log π · G, and an episode ends on ``terminated or truncated`` (CartPole-v1's 500-step time
    limit), as in the example since its move to gymnasium. Scored with the protocol; training ends
    where the example ends it, when its running average of training returns (r̄ ← 0.05 R + 0.95 r̄,
    from 10) passes 475, or at 200k env steps; the final evaluation is of the network at that point.
    """
    import gymnasium as gym
    import numpy as np
    import torch
    from torch import nn
    from torch.distributions import Categorical

    torch.manual_seed(seed)
    protocol.restart_clock()
    env = gym.make(ENV_ID)
    env.reset(seed=seed)
    policy = nn.Sequential(nn.Linear(4, 128), nn.Dropout(p=0.6), nn.ReLU(), nn.Linear(128, 2))  # logits
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
    eps = np.finfo(np.float32).eps.item()
    steps, running_reward = 0, 10.0
    while True:
        state, _ = env.reset()
        log_probs, rewards = [], []
        for _ in range(1, 10000):
            dist = Categorical(logits=policy(torch.from_numpy(state).float().unsqueeze(0)))
            action = dist.sample()
            log_probs.append(dist.log_prob(action))
            state, reward, terminated, truncated, _ = env.step(action.item())
            rewards.append(reward)
            if terminated or truncated:
                break
        steps += len(rewards)
        running_reward = 0.05 * sum(rewards) + 0.95 * running_reward
        R, returns = 0.0, []
        for r in reversed(rewards):
            R = r + 0.99 * R
            returns.insert(0, R)
        returns = torch.tensor(returns)
        returns = (returns - returns.mean()) / (returns.std() + eps)
        loss = torch.cat([-lp * G for lp, G in zip(log_probs, returns)]).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if protocol(steps, policy) or running_reward > TARGET:  # the example's own end: r̄ > the threshold
            break
    env.close()
    protocol.steps = steps
    return policy


def _entries() -> dict[str, Entry]:
    ours = "course_utils.algorithms."
    return {
        "reinforce": Entry(
            "ours REINFORCE + baseline",
            _run_ours(ours + "reinforce", "ReinforceConfig"),
            _config_budget(ours + "reinforce", "ReinforceConfig"),
            counterpart="pytorch-reinforce",
        ),
        "a2c": Entry(
            "ours A2C",
            _run_ours(ours + "a2c", "A2CConfig"),
            _config_budget(ours + "a2c", "A2CConfig"),
            counterpart="sb3-a2c",
        ),
        "ppo": Entry(
            "ours PPO",
            _run_ours(ours + "ppo", "PPOConfig"),
            _config_budget(ours + "ppo", "PPOConfig"),
            counterpart="sb3-ppo",
        ),
        "dqn": Entry(
            "ours DQN",
            _run_ours(ours + "dqn", "DQNConfig"),
            _config_budget(ours + "dqn", "DQNConfig"),
            counterpart="sb3-dqn",
        ),
        "trpo": Entry(
            "ours TRPO",
            _run_ours(ours + "trpo", "TRPOConfig"),
            _config_budget(ours + "trpo", "TRPOConfig"),
            counterpart="sb3-trpo",
        ),
        "sb3-a2c": Entry("SB3 A2C (zoo)", _run_sb3("a2c"), int(ZOO["a2c"]["n_timesteps"]), needs="stable_baselines3"),
        "sb3-ppo": Entry("SB3 PPO (zoo)", _run_sb3("ppo"), int(ZOO["ppo"]["n_timesteps"]), needs="stable_baselines3"),
        "sb3-dqn": Entry("SB3 DQN (zoo)", _run_sb3("dqn"), int(ZOO["dqn"]["n_timesteps"]), needs="stable_baselines3"),
        "sb3-trpo": Entry(
            "sb3-contrib TRPO (zoo)", _run_sb3("trpo"), int(ZOO["trpo"]["n_timesteps"]), needs="sb3_contrib"
        ),
        "pytorch-reinforce": Entry("pytorch/examples REINFORCE (re-impl.)", _run_pytorch_examples_reinforce, 200_000),
    }


ENTRIES = _entries()


def available(key: str, entries: dict | None = None) -> bool:
    needs = (entries or ENTRIES)[key].needs
    if needs is None:
        return True
    try:
        return importlib.util.find_spec(needs) is not None
    except ModuleNotFoundError:  # parent package missing
        return False


# --------------------------------------------------------------------------------------------------
# Running: one fresh process per run, with a hard timeout
# --------------------------------------------------------------------------------------------------


def _warm_up() -> None:
    """First-call costs (lazy imports, allocator, gymnasium registry) paid before any clock starts."""
    import gymnasium as gym
    import torch

    from course_utils.evaluation import evaluate
    from course_utils.networks import CategoricalPolicy

    net = CategoricalPolicy(4, 2)
    evaluate(net, ENV_ID, n_episodes=2)
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.zeros(8, 4)).sum().backward()
    optimizer.step()
    gym.make(ENV_ID).close()


def run_child(entries, make_protocol, final_score, warm_up, key, seed, budget, eval_every, time_limit, conn) -> None:
    """One run, in the fresh process :func:`_spawn` starts: train ``entries[key]`` under ``make_protocol(eval_every,
    budget, time_limit)``, score the network at the end of the budget with ``final_score(net)``, send the result
    (or the error) through ``conn``. Shared by every benchmark script here."""
    try:
        import torch

        torch.set_num_threads(1)  # small MLPs: one thread is fastest, and fair to both sides
        if entries[key].needs:
            importlib.import_module(entries[key].needs)  # import time is not training time
        warm_up()
        protocol = make_protocol(eval_every, budget, time_limit)
        net = entries[key].run(seed, protocol)
        train_seconds, train_cpu_seconds = protocol.training_seconds(), protocol.training_cpu_seconds()
        conn.send(
            {
                "history": protocol.history,
                "hit": protocol.first_hit(),
                "held": protocol.held(),
                "final": final_score(net),
                "steps": protocol.steps,
                "train_seconds": train_seconds,
                "train_cpu_seconds": train_cpu_seconds,
                "eval_seconds": protocol.eval_seconds,
            }
        )
    except Exception:  # report, don't hang the parent
        conn.send({"error": traceback.format_exc()})
    finally:
        conn.close()


def _final_score(net) -> float:
    from course_utils.evaluation import evaluate

    return evaluate(net, ENV_ID, n_episodes=FINAL_EPISODES, seed=10_000)[0]


def _child(key: str, seed: int, budget: int, eval_every: int, time_limit: float, conn) -> None:
    run_child(ENTRIES, Protocol, _final_score, _warm_up, key, seed, budget, eval_every, time_limit, conn)


def _spawn(target, args: tuple, timeout: float) -> dict:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=target, args=(*args, child), daemon=True)
    process.start()
    child.close()
    result = {"error": f"timed out after {timeout:.0f} s"}
    if parent.poll(timeout):
        try:
            result = parent.recv()
        except EOFError:
            result = {"error": "the run's process died without a result"}
    process.join(5)
    if process.is_alive():
        process.kill()  # only the child this function started
        process.join()
    return result


def run_one(key: str, seed: int, budget: int, eval_every: int, timeout: float) -> dict:
    # The training loop stops itself after `timeout` seconds of training; the process gets 60 s more
    # (imports, warm-up, evaluations) before it is killed.
    return _spawn(_child, (key, seed, budget, eval_every, timeout), timeout + 60)


def _ceiling_child(n_steps: int, conn) -> None:
    """Env steps per second of a 4-64-2 MLP sampling actions in 8 sync CartPoles, no learning.

    Acting as the collector acts (``course_utils.vec.sample_actions``), without its bookkeeping."""
    try:
        import torch
        from torch import nn

        from course_utils.vec import make_vec_env, sample_actions

        torch.set_num_threads(1)
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 2))
        envs = make_vec_env(ENV_ID, 8)
        obs, _ = envs.reset(seed=0)
        best = 0.0
        for _ in range(3):  # best of three: the ceiling, not a sample of the machine's noise
            started = time.perf_counter()
            for _ in range(n_steps // 8):
                with torch.no_grad():
                    action = sample_actions(net(torch.as_tensor(obs)))[0].numpy()
                obs, *_ = envs.step(action)
            best = max(best, n_steps / (time.perf_counter() - started))
        envs.close()
        conn.send({"steps_per_second": best})
    except Exception:
        conn.send({"error": traceback.format_exc()})
    finally:
        conn.close()


def measure_ceiling(n_steps: int = 40_000) -> float:
    result = _spawn(_ceiling_child, (n_steps,), 300)
    if "error" in result:
        raise RuntimeError(result["error"])
    return result["steps_per_second"]


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def _median(values):
    return statistics.median(values) if values else None


def _cell(value, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _k(steps) -> str:
    return "—" if steps is None else f"{steps / 1000:.1f}k"


def summarise(per_seed: dict[int, dict], seeds: list[int], target: float = TARGET) -> dict:
    """Counts and medians of one entry's runs over ``seeds`` (shared by every benchmark script here)."""
    runs = [per_seed[s] for s in seeds]
    hits = [r.get("hit") for r in runs]
    held = [r.get("held") for r in runs]
    finals = [r.get("final") for r in runs]
    solved = [f is not None and f >= target for f in finals]
    ok_runs = [r for r in runs if "error" not in r and r.get("train_seconds")]
    return {
        "n": len(seeds),
        "hit_n": sum(h is not None for h in hits),
        "held_n": sum(h is not None for h in held),
        "final_n": sum(solved),
        "both_n": sum(h is not None and s for h, s in zip(held, solved)),
        "hit": [_median([h[i] for h in hits if h]) for i in (0, 2, 3)],
        "held": [_median([h[i] for h in held if h]) for i in (0, 2, 3)],
        "final": _median([f for f in finals if f is not None]),
        "throughput": _median([r["steps"] / r["train_seconds"] for r in ok_runs]),
        "held_wall_per_seed": [h[2] if h else None for h in held],
        "held_per_seed": " ".join(f"{h[0] / 1000:.0f}" if h else "—" for h in held),
        "final_per_seed": " ".join("—" if f is None else f"{f:.0f}" for f in finals),
    }


def report(results: dict[str, dict[int, dict]], seeds: list[int], budgets: dict[str, int], ceiling: float) -> str:
    s = {key: summarise(per_seed, seeds) for key, per_seed in results.items()}
    n = len(seeds)
    lines = [
        f"CartPole-v1, {n} seeds, each entry at its own budget. Criteria: first greedy evaluation (10 episodes) "
        f">= {TARGET:.0f} ('first'); first one followed by {HOLD} more >= {TARGET:.0f} ('held'); the "
        f"{FINAL_EPISODES}-episode evaluation at the end of the budget >= {TARGET:.0f} ('final'); 'both' = held "
        "and final. Steps, wall-clock and CPU s: medians over the seeds that met the criterion, "
        "evaluation time excluded.",
        "",
        "| algorithm | budget | first | held | final | both | held: steps | held: wall s | held: CPU s "
        "| first: steps | first: wall s | final mean (median) | train steps/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, m in s.items():
        lines.append(
            f"| {ENTRIES[key].label} | {budgets[key] / 1000:.0f}k | {m['hit_n']}/{n} | {m['held_n']}/{n} "
            f"| {m['final_n']}/{n} | {m['both_n']}/{n} | {_k(m['held'][0])} "
            f"| {_cell(m['held'][1], '.1f')} | {_cell(m['held'][2], '.1f')} "
            f"| {_k(m['hit'][0])} | {_cell(m['hit'][1], '.1f')} "
            f"| {_cell(m['final'], '.0f')} | {_cell(m['throughput'], ',.0f')} |"
        )
    lines += ["", "Per seed (seed order): env steps (k) when held, and the final evaluation mean:", ""]
    for key, m in s.items():
        lines.append(f"- {ENTRIES[key].label}: held at {m['held_per_seed']}; final {m['final_per_seed']}")
    lines += [
        "",
        f"Policy-in-the-loop ceiling (4-64-2 MLP sampling actions in 8 sync CartPoles, no learning): "
        f"{ceiling:,.0f} env steps/s. Training throughput per entry (env steps per second of training, "
        "updates included): " + ", ".join(f"{ENTRIES[k].label} {_cell(m['throughput'], ',.0f')}" for k, m in s.items()),
    ]
    ratios = []
    for key, m in s.items():
        other = ENTRIES[key].counterpart
        if other not in s:
            continue
        o = s[other]
        parts = []
        for name, a, b in (
            ("held: wall-clock", m["held"][1], o["held"][1]),
            ("CPU", m["held"][2], o["held"][2]),
            ("steps", m["held"][0], o["held"][0]),
            ("first: wall-clock", m["hit"][1], o["hit"][1]),
        ):
            parts.append(f"{name} ×{a / b:.2f}" if a and b else f"{name} —")
        ratios.append(f"- {ENTRIES[key].label} / {ENTRIES[other].label}: " + ", ".join(parts))
    if ratios:
        lines += ["", "Ratios of the medians (ours / peer; below 1 means ours needs less):", *ratios]
    errors = [(k, sd, r) for k, per_seed in results.items() for sd, r in per_seed.items() if "error" in r]
    if errors:
        lines += ["", "Runs that failed:"]
        lines += [f"- {ENTRIES[k].label}, seed {sd}: {r['error'].strip().splitlines()[-1]}" for k, sd, r in errors]
    return "\n".join(lines)


def run_interleaved(entries, keys, budgets, run_one, args, saved: dict) -> tuple[dict, list[float], float]:
    """Every entry of ``keys`` on every seed of ``args.seeds``, interleaved seed by seed so that a busy machine slows
    every entry alike; waits while ``args.pause_file`` exists; prints each run and writes ``args.json`` (with
    ``saved``) after every seed. Returns the results per entry and seed, the load averages, the start time."""
    results: dict[str, dict[int, dict]] = {k: {} for k in keys}
    loads: list[float] = []
    started = time.perf_counter()
    for seed in args.seeds:
        for key in keys:
            while args.pause_file and os.path.exists(args.pause_file):
                time.sleep(30)
            load_before = os.getloadavg()[0]
            r = run_one(key, seed, budgets[key], args.eval_every, args.timeout)
            load_after = os.getloadavg()[0]
            loads += [load_before, load_after]
            r["load"] = (load_before, load_after)
            results[key][seed] = r
            if "error" in r:
                status = r["error"].strip().splitlines()[-1]
            else:
                hit, held = r["hit"], r["held"]
                status = (
                    f"first {f'{hit[0]:,} steps {hit[2]:.1f} s' if hit else '—'}; "
                    f"held {f'{held[0]:,} steps {held[2]:.1f} s ({held[3]:.1f} s CPU)' if held else '—'}; "
                    f"final {r['final']:.0f} after {r['steps']:,} steps, {r['train_seconds']:.1f} s "
                    f"({r['train_cpu_seconds']:.1f} s CPU) of training"
                )
            print(
                f"[{time.perf_counter() - started:6.0f} s, load {load_before:.2f}->{load_after:.2f}] "
                f"{entries[key].label}, seed {seed}: {status}",
                flush=True,
            )
        if args.json:
            with open(args.json, "w") as f:
                json.dump(
                    {**saved, "args": vars(args), "budgets": budgets, "loads": loads, "results": results}, f, indent=1
                )
    return results, loads, started


def parse_arguments(description: str, entries: dict, algos_help: str, timeout: float) -> argparse.Namespace:
    """The command line every benchmark script here takes (entries, seeds, budgets, --json, --pause-file, ...)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", nargs="+", choices=list(entries), metavar="ALGO", help=algos_help)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    parser.add_argument(
        "--max-steps", type=int, help="cap every entry's budget at this many env steps (default: each its own)"
    )
    parser.add_argument("--eval-every", type=int, default=1_000, help="env steps between evaluations (default 1000)")
    parser.add_argument(
        "--timeout", type=float, default=timeout, help="seconds of training per run before it is stopped"
    )
    parser.add_argument(
        "--json", metavar="PATH", help="also write every run's raw result to this JSON file (after every seed)"
    )
    parser.add_argument(
        "--pause-file", metavar="PATH", help="before each run, wait while this file exists (a shared machine's signal)"
    )
    parser.add_argument("--report-from", metavar="PATH", help="print the report of a JSON file written by --json")
    return parser.parse_args()


def load_saved(path: str) -> tuple[dict, dict, list[int]]:
    """A --json file: everything saved, the results per entry and seed, and the seeds every entry ran."""
    with open(path) as f:
        saved = json.load(f)
    results = {k: {int(s): r for s, r in v.items()} for k, v in saved["results"].items()}
    seeds = sorted(set.intersection(*(set(v) for v in results.values())))
    return saved, results, seeds


def print_loads(loads: list[float], suffix: str = "") -> None:
    print(
        f"\nload average (1 min) over the runs: {min(loads):.2f}-{max(loads):.2f}, "
        f"median {statistics.median(loads):.2f}{suffix}"
    )


def prepare_runs(entries: dict, keys: list[str], args, ours_only: str) -> dict[str, int]:
    """Before any run: refuse entries whose library is missing (naming ``ours_only``, the option that runs only the
    course's algorithms), print the machine's line, and return each entry's budget (capped by --max-steps)."""
    missing = sorted({entries[k].needs for k in keys if not available(k, entries)})
    if missing:
        sys.exit(
            f"not installed: {', '.join(missing)}; the library entries need the optional 'bench' extra:\n"
            '    .venv/bin/pip install -c requirements/constraints.txt -e ".[bench]"\n'
            f"or run only the course's algorithms: {ours_only}"
        )
    import platform

    import torch

    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    return {k: min(entries[k].budget, args.max_steps or entries[k].budget) for k in keys}


def main() -> int:
    args = parse_arguments(__doc__, ENTRIES, f"entries to run (default: all): {', '.join(ENTRIES)}", 300.0)
    if args.report_from:
        saved, results, seeds = load_saved(args.report_from)
        print(report(results, seeds, saved["budgets"], saved["ceiling"]))
        print_loads(saved["loads"])
        return 0

    keys = args.algos or list(ENTRIES)
    budgets = prepare_runs(ENTRIES, keys, args, "--algos reinforce a2c ppo dqn trpo pytorch-reinforce")
    ceiling = measure_ceiling()
    print(f"policy-in-the-loop ceiling: {ceiling:,.0f} env steps/s", flush=True)
    results, loads, started = run_interleaved(ENTRIES, keys, budgets, run_one, args, {"ceiling": ceiling})
    print()
    print(report(results, args.seeds, budgets, ceiling))
    print_loads(loads, f"; total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
