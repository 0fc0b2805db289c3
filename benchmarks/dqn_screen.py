#!/usr/bin/env python3
"""DQN on CartPole-v1: which changes make the run *end* solved, and how do failing networks fail?

    .venv/bin/python benchmarks/dqn_screen.py defaults --seeds 0 1 2 --out /tmp/screen.jsonl      # DQNConfig()
    .venv/bin/python benchmarks/dqn_screen.py nature --nature --seeds 0 1 2 --out /tmp/screen.jsonl
    .venv/bin/python benchmarks/dqn_screen.py mse-0.99 --nature loss=mse gamma=0.99 --out /tmp/screen.jsonl
    .venv/bin/python benchmarks/dqn_screen.py double --nature --variant double --out /tmp/screen.jsonl
    .venv/bin/python benchmarks/dqn_screen.py --report /tmp/screen.jsonl

Each run trains ``course_utils.algorithms.dqn.train(DQNConfig(seed=s, **changes))`` for its whole
budget, one process per seed, one torch thread; ``--nature`` starts from ``DQNConfig.nature(...)``
instead, the defaults before 5 December, from which the rows of ``benchmarks/RESULTS.md`` up to then
name their changes. ``key=value`` arguments are DQNConfig fields (values
are Python literals, e.g. ``hidden=(256,256)``), among them the two pieces the screen found
(``prioritized_replay=True``, ``obs_scale``). ``--variant`` (repeat it to combine) swaps in one piece
that DQNConfig does not have (``huber50``, ``nstep3`` and ``ema`` only with uniform replay:
``prioritized_replay=False`` or ``--nature``):

- ``double``: the double-DQN target (the online network picks a', θ⁻ scores it);
- ``dueling``: Q = V + A − mean A from one 64-64 ReLU body;
- ``huber50``: the Huber loss with its threshold at 50 instead of 1;
- ``nstep3``: 3-step returns, y = r_t + γ r_{t+1} + γ² r_{t+2} + γ³ (1 − terminated)
  max_a' Q(s_{t+3}, a'; θ⁻), with fewer steps at an episode's end;
- ``al``: advantage learning (Bellemare et al. 2016), which widens the action gap:
  y = r + γ (1 − terminated) max_a' Q(s', a'; θ⁻) − 0.9 (max_b Q(s, b; θ⁻) − Q(s, a; θ⁻));
- ``ema``: the evaluations (and the final network) use θ̄, an average of the online weights,
  θ̄ ← θ̄ + 0.002 (θ − θ̄) after every gradient step (Polyak averaging of the policy itself).

The variants ``per`` and ``scaled`` of the rows measured on 4 December (commit c329e64) are the
config fields ``prioritized_replay=True`` and ``obs_scale=(2.4, 3, 0.21, 3)`` now, with one
difference: β then rose over a fixed 12,250 draws, now over the run's own number of gradient steps
(12,256 for the default budget).

The criteria are those of ``benchmarks/cartpole.py``, with evaluations that go on after "held":
the greedy policy (10 episodes, seeds 10000-10009) at the first update after each multiple of
1,000 env steps; **held**: the first such evaluation >= 475 followed by three more; **final**: 20
episodes (seeds 10000-10019) of the network at the end of the budget, solved when the mean is >=
475. For every final episode the run records how it ended: the time limit, the pole (|angle| >
12°) or the cart (|x| > 2.4). Results are appended to ``--out`` as one JSON line per run;
``--report`` prints the table of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from cartpole import FINAL_EPISODES, TARGET, first_held  # the benchmark's criteria

EVAL_EVERY = 1_000
VARIANTS = ("double", "dueling", "huber50", "nstep3", "al", "ema")
# These replace a piece of the uniform-replay path (the buffer, td_loss or its Huber loss), which prioritized replay
# bypasses: they need prioritized_replay=False (or --nature).
UNIFORM_ONLY = ("huber50", "nstep3", "ema")
EMA_RATE = 0.002  # ``ema``: θ̄ ← θ̄ + 0.002 (θ − θ̄) per gradient step, a memory of about 500 steps
AVERAGED: list = []  # ``ema``: the averaged network, which the evaluations then use


def _install_variant(dqn, variant: str, gamma: float) -> None:
    """Replace one piece of course_utils.algorithms.dqn for this process (the module looks them up at call time)."""
    import copy

    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    if variant == "huber50":

        class Losses:
            smooth_l1_loss = staticmethod(lambda q, y: F.huber_loss(q, y, delta=50.0))
            mse_loss = staticmethod(F.mse_loss)

        dqn.F = Losses
    elif variant == "double":
        make = dqn.make_q_network
        online = []

        def make_and_remember(*args, **kwargs):
            net = make(*args, **kwargs)
            online.append(net)  # train() builds the online network first; θ⁻ is a deepcopy
            return net

        def double_target(target_net, batch, gamma):
            with torch.no_grad():
                best = online[0](batch["next_obs"].float()).argmax(dim=1, keepdim=True)  # a' by θ
                next_q = target_net(batch["next_obs"].float()).gather(1, best).squeeze(1)  # scored by θ⁻
                return batch["reward"] + gamma * (1.0 - batch["terminated"]) * next_q

        dqn.make_q_network, dqn.td_target = make_and_remember, double_target
    elif variant == "nstep3":
        n = 3

        class NStep(dqn.ReplayBuffer):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.steps = np.zeros(self.capacity, dtype=np.float32)  # k of the stored k-step transition
                self.pending = []

            def _emit(self):  # the oldest pending transition, with the rewards of those after it
                k = len(self.pending)
                first, last = self.pending[0], self.pending[-1]
                ret = sum(gamma**j * p[2] for j, p in enumerate(self.pending))
                self.steps[self.pos] = k
                super().add(first[0], first[1], ret, last[3], last[4])
                self.pending.pop(0)

            def add(self, obs, action, reward, next_obs, terminated):
                if self.pending and not np.array_equal(obs, self.pending[-1][3]):  # a reset after a time limit
                    while self.pending:
                        self._emit()
                self.pending.append((np.array(obs), action, float(reward), np.array(next_obs), terminated))
                if terminated:
                    while self.pending:
                        self._emit()
                elif len(self.pending) == n:
                    self._emit()

            def _gather(self, index):
                batch = super()._gather(index)
                batch["steps"] = torch.from_numpy(self.steps[index])
                return batch

        def nstep_target(target_net, batch, gamma):
            with torch.no_grad():
                next_q = target_net(batch["next_obs"].float()).max(dim=1).values
                return batch["reward"] + gamma ** batch["steps"] * (1.0 - batch["terminated"]) * next_q

        dqn.ReplayBuffer, dqn.td_target = NStep, nstep_target
    elif variant == "al":

        def advantage_learning_target(target_net, batch, gamma):
            with torch.no_grad():
                y = target_net(batch["next_obs"].float()).max(dim=1).values
                here = target_net(batch["obs"].float())
                gap = here.max(dim=1).values - here.gather(1, batch["action"].unsqueeze(1)).squeeze(1)
                return batch["reward"] + gamma * (1.0 - batch["terminated"]) * y - 0.9 * gap

        dqn.td_target = advantage_learning_target
    elif variant == "ema":
        loss_of = dqn.td_loss

        def loss_and_average(q_net, target_net, batch, gamma, loss="huber"):
            if not AVERAGED:
                AVERAGED.append(copy.deepcopy(q_net).requires_grad_(False))
            with torch.no_grad():  # θ here is the result of the previous gradient step
                for mean, param in zip(AVERAGED[0].parameters(), q_net.parameters()):
                    mean.lerp_(param, EMA_RATE)
            return loss_of(q_net, target_net, batch, gamma, loss)

        dqn.td_loss = loss_and_average
    elif variant == "dueling":

        class Dueling(nn.Module):
            def __init__(self, obs_dim, n_actions, hidden=(64, 64)):
                super().__init__()
                layers, width = [], obs_dim
                for size in hidden:
                    layers += [nn.Linear(width, size), nn.ReLU()]
                    width = size
                self.body, self.value, self.advantage = (
                    nn.Sequential(*layers),
                    nn.Linear(width, 1),
                    nn.Linear(width, n_actions),
                )

            def forward(self, obs):
                z = self.body(obs)
                a = self.advantage(z)
                return self.value(z) + a - a.mean(dim=1, keepdim=True)

        dqn.make_q_network = Dueling


def run(name: str, seed: int, changes: dict, variants: list[str], nature: bool = False) -> dict:
    import gymnasium as gym
    import numpy as np
    import torch

    from course_utils.algorithms import dqn
    from course_utils.evaluation import evaluate

    torch.set_num_threads(1)
    config = (dqn.DQNConfig.nature if nature else dqn.DQNConfig)(seed=seed, **changes)
    for variant in variants:
        _install_variant(dqn, variant, config.gamma)
    history: list[tuple[int, float]] = []

    def on_update(steps, q_net):
        if steps // EVAL_EVERY > len(history):
            history.append((steps, evaluate(AVERAGED[0] if AVERAGED else q_net, n_episodes=10, seed=10_000)[0]))
        return False

    result = dqn.train(config, on_update=on_update, progress_bar=False)
    policy = AVERAGED[0] if AVERAGED else result.policy
    held = first_held(history)
    held = held[0] if held else None
    returns, endings = [], ""
    env = gym.make("CartPole-v1")
    for k in range(FINAL_EPISODES):
        obs, _ = env.reset(seed=10_000 + k)
        total, terminated, truncated = 0.0, False, False
        while not (terminated or truncated):
            with torch.no_grad():
                action = int(policy(torch.as_tensor(obs).unsqueeze(0)).argmax())
            obs, reward, terminated, truncated, _ = env.step(action)
            total += reward
        returns.append(total)
        endings += "T" if not terminated else ("x" if abs(obs[0]) > env.unwrapped.x_threshold else "p")
    return dict(name=name, seed=seed, changes=repr(changes), variant="+".join(variants) or None, held=held, final=float(np.mean(returns)),
                endings=endings, evaluations=[round(m) for _, m in history])  # fmt: skip


def report(path: Path) -> None:
    runs: dict[str, dict[int, dict]] = defaultdict(dict)
    for line in path.read_text().splitlines():
        row = json.loads(line)
        runs[row["name"]][row["seed"]] = row
    print(
        "| configuration | seeds | held | final >= 475 | held: steps (median) | failing finals: cart / pole / mixed |"
    )
    print("|---|---|---|---|---|---|")
    for name, by_seed in runs.items():
        rows = [by_seed[s] for s in sorted(by_seed)]
        held = [r["held"] for r in rows if r["held"] is not None]
        failing = [r["endings"] for r in rows if r["final"] < TARGET]
        cart = sum(e.count("x") > e.count("p") for e in failing)
        pole = sum(e.count("p") > e.count("x") for e in failing)
        seeds = sorted(by_seed)
        span = f"{seeds[0]}–{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else " ".join(map(str, seeds))
        median = f"{statistics.median(held) / 1000:.1f}k" if held else "—"
        print(f"| {name} | {span} | {len(held)}/{len(rows)} | {sum(r['final'] >= TARGET for r in rows)}/{len(rows)} | "
              f"{median} | {cart} / {pole} / {len(failing) - cart - pole} |")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", help="a label for this configuration")
    parser.add_argument("changes", nargs="*", metavar="key=value", help="DQNConfig fields to change")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    parser.add_argument("--variant", choices=VARIANTS, action="append", default=[], help="repeat to combine")
    parser.add_argument("--nature", action="store_true", help="start from DQNConfig.nature(), not DQNConfig()")
    parser.add_argument("--out", type=Path, help="append one JSON line per run to this file")
    parser.add_argument("--report", type=Path, metavar="PATH", help="print the table of a file written by --out")
    args = parser.parse_intermixed_args()  # options may come between the key=value changes
    if args.report:
        report(args.report)
        return 0
    if not args.name or not args.out:
        parser.error("a configuration name and --out are required (or --report)")
    changes = {}
    for item in args.changes:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"expected key=value, got {item!r}")
        try:
            changes[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            changes[key] = value  # a bare word: a string such as loss=mse
    import subprocess

    from course_utils.algorithms.dqn import DQNConfig

    prioritized = (DQNConfig.nature if args.nature else DQNConfig)(**changes).prioritized_replay
    clash = [v for v in args.variant if v in UNIFORM_ONLY]
    if clash and prioritized:
        parser.error(f"--variant {' '.join(clash)} needs uniform replay: add prioritized_replay=False (or --nature)")
    for seed in args.seeds:  # one fresh process per run
        call = f"dqn_screen.run({args.name!r}, {seed}, {changes!r}, {args.variant!r}, {args.nature!r})"
        code = f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import dqn_screen; print(json.dumps({call}))"
        line = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
        with args.out.open("a") as out:
            out.write(line + "\n")
        row = json.loads(line)
        print(f"{args.name} seed {seed}: held {row['held']}, final {row['final']:.0f} ({row['endings']})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
