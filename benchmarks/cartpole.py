#!/usr/bin/env python3
"""Env steps and wall-clock until CartPole-v1 is solved: course_utils vs stable-baselines3.

    .venv/bin/python benchmarks/cartpole.py                       # every algorithm, seeds 0-4
    .venv/bin/python benchmarks/cartpole.py --algos ppo sb3-ppo --seeds 0 1 2

Each run trains one algorithm with one seed and applies the course's
evaluation protocol (``course_utils.evaluation.evaluate``: greedy policy, 10
episodes on the fixed evaluation seeds 10000-10009) every ``--eval-every`` env
steps: at the first update after each multiple of it (for stable-baselines3,
at the start of the first rollout after it, i.e. right after an update too).
The run stops when the mean evaluation return first reaches 475
(CartPole-v1's reward threshold) and reports the env steps and the training
wall-clock (and CPU time) at that point. **Evaluation time is excluded** from the
wall-clock on both sides; the clock starts before the environments and networks
are built (our ``train()`` call; stable-baselines3's model construction) and
stops when the successful evaluation starts.

Compared with
- stable-baselines3's PPO and A2C with the rl-baselines3-zoo hyperparameters
  for CartPole-v1 (``hyperparams/ppo.yml`` and ``a2c.yml``), copied below,
  including n_envs, the linear schedules over the zoo's n_timesteps, and no
  normalisation (the zoo uses none for CartPole);
- a re-implementation of the pytorch/examples ``reinforcement_learning/reinforce.py``
  algorithm (one episode per update, normalised returns, 128-unit policy with
  dropout 0.6, Adam 1e-2), scored with the same protocol and, as a second
  entry, stopped by the example's own rule (running average of training returns);
- DQN, ours (``course_utils.algorithms.dqn``) and
  stable-baselines3's with the zoo's ``dqn.yml`` hyperparameters.

Every run executes in a fresh process with one torch thread; it stops itself
after ``--timeout`` seconds of training and is killed 60 s later if it hangs.
Runs are interleaved seed by seed so that a busy machine slows every algorithm
alike. The table gives the median over seeds, every seed's value, and ratios
ours/SB3 of the medians; ``benchmarks/RESULTS.md`` holds a measured table and
how to read it. Requires the ``bench`` extra (stable-baselines3).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

TARGET = 475.0  # CartPole-v1's reward threshold (env.spec.reward_threshold)
ENV_ID = "CartPole-v1"


# --------------------------------------------------------------------------------------------------
# The evaluation protocol, shared by every entry
# --------------------------------------------------------------------------------------------------


class StopAtTarget:
    """Callable ``(steps, net) -> stop`` applying the evaluation protocol during training.

    Evaluates at the first call at or after each multiple of ``eval_every`` env
    steps; stops when the evaluation mean reaches ``target``, when ``max_steps``
    are used up, or when the training wall-clock exceeds ``time_limit``.
    Records the steps and training seconds (evaluation time excluded) of the
    first success in ``hit``.
    """

    def __init__(self, eval_every: int, target: float, max_steps: int, time_limit: float):
        self.eval_every, self.target, self.max_steps, self.time_limit = eval_every, target, max_steps, time_limit
        self.next_eval = eval_every
        self.eval_seconds = self.eval_cpu_seconds = 0.0
        self.history: list[tuple[int, float]] = []  # (steps, evaluation mean)
        self.hit: tuple[int, float, float] | None = None  # (steps, training seconds, training CPU seconds)
        self.restart_clock()

    def restart_clock(self) -> None:
        self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def training_seconds(self) -> float:
        return time.perf_counter() - self.start - self.eval_seconds

    def training_cpu_seconds(self) -> float:
        return time.process_time() - self.cpu_start - self.eval_cpu_seconds

    def out_of_budget(self, steps: int) -> bool:
        return steps >= self.max_steps or self.training_seconds() > self.time_limit

    def mark_hit(self, steps: int) -> None:
        """For an entry with its own stopping rule: record success now."""
        self.hit = (steps, self.training_seconds(), self.training_cpu_seconds())

    def __call__(self, steps: int, net) -> bool:
        from course_utils.evaluation import evaluate

        if steps >= self.next_eval:
            self.next_eval = (steps // self.eval_every + 1) * self.eval_every
            train_seconds, train_cpu_seconds = self.training_seconds(), self.training_cpu_seconds()
            started, cpu_started = time.perf_counter(), time.process_time()
            mean, _ = evaluate(net, ENV_ID, n_episodes=10, seed=10_000)
            self.eval_seconds += time.perf_counter() - started
            self.eval_cpu_seconds += time.process_time() - cpu_started
            self.history.append((steps, mean))
            if mean >= self.target:
                self.hit = (steps, train_seconds, train_cpu_seconds)
                return True
        return self.out_of_budget(steps)


# --------------------------------------------------------------------------------------------------
# Entries: one function per algorithm, (seed, stopper) -> None. Add an algorithm by adding an entry.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    label: str  # shown in the table
    run: Callable[[int, StopAtTarget], None]  # trains until stopper says stop
    sb3_counterpart: str | None = None  # key of the SB3 entry to compute ratios against
    needs: str | None = None  # module it imports: ours are left out when it is missing, SB3 stops the script
    only_with: str | None = None  # run by default only if this other entry is available too


def _run_ours(module_name: str, config_name: str, **overrides):
    def run(seed: int, stopper: StopAtTarget) -> None:
        module = importlib.import_module(module_name)
        config = getattr(module, config_name)(seed=seed, total_steps=stopper.max_steps, **overrides)
        stopper.restart_clock()
        module.train(config, on_update=stopper, progress_bar=False)

    return run


# rl-baselines3-zoo hyperparams, CartPole-v1 entries (hyperparams/ppo.yml, a2c.yml, dqn.yml), verbatim.
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


def _run_sb3(algo: str) -> Callable[[int, StopAtTarget], None]:
    def run(seed: int, stopper: StopAtTarget) -> None:
        import stable_baselines3 as sb3
        import torch
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import DummyVecEnv

        class Scores(torch.nn.Module):
            """obs -> action scores of an SB3 model: policy logits (PPO, A2C) or Q-values (DQN)."""

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
                if not self.stop and stopper(self.num_timesteps, Scores(self.model)):
                    self.stop = True

            def _on_rollout_start(self) -> None:
                self._check()

            def _on_training_end(self) -> None:
                self._check()

            def _on_step(self) -> bool:
                return not self.stop

        kwargs, n_envs, n_timesteps, policy = _zoo_kwargs(ZOO[algo])
        stopper.restart_clock()
        env = make_vec_env(ENV_ID, n_envs=n_envs, seed=seed, vec_env_cls=DummyVecEnv)
        model = getattr(sb3, algo.upper())(policy, env, seed=seed, device="cpu", verbose=0, **kwargs)
        # total_timesteps = the zoo's n_timesteps, so the linear schedules match the zoo's exactly.
        model.learn(total_timesteps=n_timesteps, callback=ProtocolCallback())
        env.close()

    return run


def _run_pytorch_examples_reinforce(own_rule: bool) -> Callable[[int, StopAtTarget], None]:
    """pytorch/examples reinforcement_learning/reinforce.py, re-implemented (no code downloaded).

    The same algorithm: policy 4-128-2 with dropout 0.6 before the ReLU, Adam lr
    1e-2, γ = 0.99, one update per episode on returns normalised within the
    episode, loss Σ -log π · G. Like the original, an episode ends only at
    termination (the `done` it tests is `terminated`; the 500-step time limit is
    ignored) or after 9999 steps. ``own_rule=False`` stops by our evaluation
    protocol; ``own_rule=True`` by the example's own rule, a running average of
    training returns (r̄ ← 0.05 R + 0.95 r̄, from 10) above 475.
    """

    def run(seed: int, stopper: StopAtTarget) -> None:
        import gymnasium as gym
        import numpy as np
        import torch
        from torch import nn
        from torch.distributions import Categorical

        torch.manual_seed(seed)
        stopper.restart_clock()
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
                state, reward, terminated, _, _ = env.step(action.item())
                rewards.append(reward)
                if terminated:
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
            if own_rule:
                if running_reward > TARGET:
                    stopper.mark_hit(steps)
                    break
                if stopper.out_of_budget(steps):
                    break
            elif stopper(steps, policy):
                break
        env.close()

    return run


ENTRIES: dict[str, Entry] = {
    "reinforce": Entry("ours REINFORCE + baseline", _run_ours("course_utils.algorithms.reinforce", "ReinforceConfig")),
    "a2c": Entry("ours A2C", _run_ours("course_utils.algorithms.a2c", "A2CConfig"), sb3_counterpart="sb3-a2c"),
    "ppo": Entry("ours PPO", _run_ours("course_utils.algorithms.ppo", "PPOConfig"), sb3_counterpart="sb3-ppo"),
    "dqn": Entry("ours DQN", _run_ours("course_utils.algorithms.dqn", "DQNConfig"), sb3_counterpart="sb3-dqn"),
    "sb3-a2c": Entry("SB3 A2C (zoo)", _run_sb3("a2c"), needs="stable_baselines3"),
    "sb3-ppo": Entry("SB3 PPO (zoo)", _run_sb3("ppo"), needs="stable_baselines3"),
    "sb3-dqn": Entry("SB3 DQN (zoo)", _run_sb3("dqn"), needs="stable_baselines3", only_with="dqn"),
    "pytorch-reinforce": Entry("pytorch/examples REINFORCE (re-impl.)", _run_pytorch_examples_reinforce(False)),
    "pytorch-reinforce-own-rule": Entry(
        "pytorch/examples REINFORCE (re-impl.), its own stopping rule*", _run_pytorch_examples_reinforce(True)
    ),
}


def available(key: str) -> bool:
    needs = ENTRIES[key].needs
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


def _child(key: str, seed: int, max_steps: int, eval_every: int, time_limit: float, conn) -> None:
    try:
        import torch

        torch.set_num_threads(1)  # small MLPs: one thread is fastest, and fair to both sides
        if ENTRIES[key].needs == "stable_baselines3":
            import stable_baselines3  # noqa: F401  (import time is not training time)
        _warm_up()
        stopper = StopAtTarget(eval_every, TARGET, max_steps, time_limit)
        ENTRIES[key].run(seed, stopper)
        conn.send(
            {
                "hit": stopper.hit,
                "evals": len(stopper.history),
                "best": max((m for _, m in stopper.history), default=float("nan")),
                "last_steps": stopper.history[-1][0] if stopper.history else 0,
                "eval_seconds": stopper.eval_seconds,
            }
        )
    except Exception:  # report, don't hang the parent
        conn.send({"error": traceback.format_exc()})
    finally:
        conn.close()


def run_one(key: str, seed: int, max_steps: int, eval_every: int, timeout: float) -> dict:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    # The training loop stops itself after `timeout` seconds of training; the process gets 60 s more
    # (imports, warm-up, evaluations) before it is killed.
    process = ctx.Process(target=_child, args=(key, seed, max_steps, eval_every, timeout, child), daemon=True)
    process.start()
    child.close()
    result = {"error": f"timed out after {timeout + 60:.0f} s"}
    if parent.poll(timeout + 60):
        try:
            result = parent.recv()
        except EOFError:
            result = {"error": "the run's process died without a result"}
    process.join(5)
    if process.is_alive():
        process.kill()  # only the child this function started
        process.join()
    return result


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def _fmt_steps(x: float) -> str:
    return f"{x / 1000:.1f}k"


def report(results: dict[str, dict[int, dict]], seeds: list[int], max_steps: int, timeout: float) -> str:
    """Markdown table: medians over the seeds that reached the target, per-seed values, ratios ours/SB3."""
    lines = [
        f"CartPole-v1: env steps and training time until the greedy evaluation mean (10 episodes, seeds "
        f"10000-10009) first reaches {TARGET:.0f}; evaluation time excluded. Medians over the seeds that "
        "reached it; per-seed values in seed order (— = not reached). CPU s = this process's CPU time, "
        "less sensitive than wall-clock to other load on the machine.",
        "",
        "| algorithm | reached | steps | wall-clock s | CPU s | steps per seed (k) | wall-clock s per seed |",
        "|---|---|---|---|---|---|---|",
    ]
    medians: dict[str, tuple[float, float, float]] = {}
    for key, per_seed in results.items():
        hits = [per_seed[s].get("hit") for s in seeds]
        ok = [h for h in hits if h]
        steps = " ".join(f"{h[0] / 1000:.1f}" if h else "—" for h in hits)
        secs = " ".join(f"{h[1]:.1f}" if h else "—" for h in hits)
        if ok:
            medians[key] = tuple(statistics.median(h[i] for h in ok) for i in range(3))
            m = medians[key]
            cells = f"{_fmt_steps(m[0])} | {m[1]:.1f} | {m[2]:.1f}"
        else:
            cells = "— | — | —"
        lines.append(f"| {ENTRIES[key].label} | {len(ok)}/{len(seeds)} | {cells} | {steps} | {secs} |")
    ratios = []
    for key in results:
        other = ENTRIES[key].sb3_counterpart
        if other in medians and key in medians:
            a, b = medians[key], medians[other]
            ratios.append(
                f"- {ENTRIES[key].label} / {ENTRIES[other].label}: steps ×{a[0] / b[0]:.2f}, "
                f"wall-clock ×{a[1] / b[1]:.2f}, CPU ×{a[2] / b[2]:.2f}"
            )
    if ratios:
        lines += ["", "Ratios of the medians (ours / SB3; below 1 means ours needs less):", *ratios]
    if "pytorch-reinforce-own-rule" in results:
        lines += [
            "",
            "* stopped by the example's own rule, a running average of its training returns "
            "(r̄ ← 0.05 R + 0.95 r̄) above 475, not by the evaluation protocol; its training episodes "
            "ignore the 500-step limit, as in the original.",
        ]
    failures = [(key, s, per_seed[s]) for key, per_seed in results.items() for s in seeds if not per_seed[s].get("hit")]
    if failures:
        budget = f"{max_steps:,} steps or {timeout:g} s of training"
        lines += ["", f"Runs that did not reach {TARGET:.0f} (budget: {budget}):"]
        for key, s, r in failures:
            why = (
                r["error"].strip().splitlines()[-1]
                if "error" in r
                else (f"best evaluation {r['best']:.1f} after {r['last_steps']:,} steps ({r['evals']} evaluations)")
            )
            lines.append(f"- {ENTRIES[key].label}, seed {s}: {why}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--algos",
        nargs="+",
        choices=list(ENTRIES),
        metavar="ALGO",
        help=f"entries to run (default: all available): {', '.join(ENTRIES)}",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--max-steps", type=int, default=500_000, help="env-step budget per run (default 500k)")
    parser.add_argument("--eval-every", type=int, default=1_000, help="env steps between evaluations (default 1000)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds of training per run before it is stopped")
    parser.add_argument("--json", metavar="PATH", help="also write every run's raw result to this JSON file")
    args = parser.parse_args()

    # Default: every entry, except ours whose module is not written yet (and SB3's DQN without ours).
    # The SB3 entries are always in the default set: without stable-baselines3 the comparison fails loudly.
    keys = args.algos or [
        k
        for k in ENTRIES
        if (ENTRIES[k].needs == "stable_baselines3" or available(k))
        and (ENTRIES[k].only_with is None or available(ENTRIES[k].only_with))
    ]
    if any(ENTRIES[k].needs == "stable_baselines3" for k in keys) and not available("sb3-ppo"):
        sys.exit(
            "stable-baselines3 is not installed: the SB3 entries need the optional 'bench' extra:\n"
            '    .venv/bin/pip install -c requirements/constraints.txt -e ".[bench]"\n'
            "or run only the course's algorithms, e.g. --algos reinforce a2c ppo"
        )
    missing = [k for k in keys if not available(k)]
    if missing:
        sys.exit(f"cannot run {', '.join(missing)}: module {ENTRIES[missing[0]].needs} is not importable")

    results: dict[str, dict[int, dict]] = {k: {} for k in keys}
    started = time.perf_counter()
    for seed in args.seeds:  # interleaved: a busy machine slows every algorithm alike
        for key in keys:
            r = run_one(key, seed, args.max_steps, args.eval_every, args.timeout)
            results[key][seed] = r
            status = (
                f"reached at {r['hit'][0]:,} steps, {r['hit'][1]:.1f} s ({r['hit'][2]:.1f} s CPU)"
                if r.get("hit")
                else r.get("error", "").strip().splitlines()[-1]
                if "error" in r
                else f"not reached (best {r['best']:.1f})"
            )
            print(f"[{time.perf_counter() - started:6.0f} s] {ENTRIES[key].label}, seed {seed}: {status}", flush=True)
    print()
    print(report(results, args.seeds, args.max_steps, args.timeout))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
