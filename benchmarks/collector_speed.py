#!/usr/bin/env python3
"""Rollout throughput before and after a change to the collector, interleaved, with proof of same numbers.

    git archive <old-commit> course_utils benchmarks | tar -x -C /tmp/before      # the tree to compare with
    nice -n 10 .venv/bin/python benchmarks/collector_speed.py --before /tmp/before --repeats 8

For each repeat, each workload runs once with the ``--before`` tree's ``course_utils`` and once with
this tree's, one after the other, each in a fresh process with one torch thread, so that a busy
machine slows both sides alike. Workloads: the policy-in-the-loop ceiling of
``benchmarks/cartpole.py`` (each tree's own), and ``train()`` of REINFORCE, A2C, PPO and TRPO with
their default configs at ``--steps`` env steps (seed = the repeat's number; the time includes building
the environments and networks). Printed: median env steps per second (wall and CPU) on each side,
the median of the paired ratios after / before, and in how many pairs the trained parameters and the
training returns are bit-identical (a pure speed-up leaves them all identical). Without ``--before``,
only this tree is measured.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = {
    "ceiling": None,
    "reinforce": "ReinforceConfig",
    "a2c": "A2CConfig",
    "ppo": "PPOConfig",
    "trpo": "TRPOConfig",
}


def measure(workload: str, steps: int, seed: int) -> dict:
    """One run in this process (the child): env steps/s, CPU s and a fingerprint of the result."""
    import importlib
    import multiprocessing as mp

    import torch

    torch.set_num_threads(1)
    import course_utils

    sys.path.insert(0, str(Path(course_utils.__file__).parents[1] / "benchmarks"))
    import cartpole  # the benchmark of the tree whose course_utils was imported

    cartpole._warm_up()
    if workload == "ceiling":
        parent, child = mp.Pipe(duplex=False)
        cartpole._ceiling_child(steps, child)
        return {"sps": parent.recv()["steps_per_second"]}
    module = importlib.import_module(f"course_utils.algorithms.{workload}")
    config = getattr(module, WORKLOADS[workload])(seed=seed, total_steps=steps)
    wall, cpu = time.perf_counter(), time.process_time()
    result = module.train(config, progress_bar=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    digest = hashlib.sha256(json.dumps(result.episode_returns).encode())
    for parameter in result.policy.parameters():
        digest.update(parameter.detach().cpu().numpy().tobytes())
    return {"sps": result.steps / wall, "cpu_sps": result.steps / cpu, "fingerprint": digest.hexdigest()}


def run(tree: Path, workload: str, steps: int, seed: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, __file__, "--child", workload, str(steps), str(seed)]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="a tree (holding course_utils/ and benchmarks/) to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30_000, help="env steps of each training run (default 30000)")
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--pause-file", help="before each run, wait while this file exists")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        workload, steps, seed = args.child
        print(json.dumps(measure(workload, int(steps), int(seed))))
        return 0

    trees = {"after": HERE.parent} if args.before is None else {"before": args.before, "after": HERE.parent}
    results = {w: {side: [] for side in trees} for w in args.workloads}
    loads = []
    for repeat in range(args.repeats):
        for workload in args.workloads:
            for side, tree in trees.items():
                while args.pause_file and os.path.exists(args.pause_file):
                    time.sleep(30)
                loads.append(os.getloadavg()[0])
                steps = 40_000 if workload == "ceiling" else args.steps
                results[workload][side].append(run(tree, workload, steps, repeat))
        print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr, flush=True)

    median = statistics.median
    sides = list(trees)
    header = " | ".join(f"{side}: steps/s, steps per CPU s" for side in sides)
    print(
        f"| workload | {header} |"
        + (" after / before: wall, CPU (median of pairs) | identical |" if args.before else "")
    )
    print("|---|" + "---|" * len(sides) + ("---|---|" if args.before else ""))
    for workload, by_side in results.items():
        cells = []
        for side in sides:
            runs = by_side[side]
            cpu = f"{median(r['cpu_sps'] for r in runs):,.0f}" if "cpu_sps" in runs[0] else "—"
            cells.append(f"{median(r['sps'] for r in runs):,.0f}, {cpu}")
        line = f"| {workload} | " + " | ".join(cells) + " |"
        if args.before:
            pairs = list(zip(by_side["before"], by_side["after"]))
            wall = median(a["sps"] / b["sps"] for b, a in pairs)
            cpu = f"×{median(a['cpu_sps'] / b['cpu_sps'] for b, a in pairs):.2f}" if "cpu_sps" in pairs[0][0] else "—"
            same = (
                f"{sum(b['fingerprint'] == a['fingerprint'] for b, a in pairs)}/{len(pairs)}"
                if "fingerprint" in pairs[0][0]
                else "—"
            )
            line += f" ×{wall:.2f}, {cpu} | {same} |"
        print(line)
    print(
        f"\n{args.repeats} repeats, {args.steps:,} env steps per training run; load average (1 min) before the runs: "
        f"{min(loads):.2f}-{max(loads):.2f}, median {median(loads):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
