#!/usr/bin/env python3
"""Why notebooks set one torch thread: time a small policy MLP with 1 thread vs the default.

    .venv/bin/python benchmarks/torch_threads.py

Two workloads typical of this course on CartPole-sized problems: acting (one
observation per forward pass, as in a rollout) and a training step (forward,
backward and Adam on a batch of 512). Each runs alone, and then as two
processes at once, as when the test command executes two notebooks side by
side or a laptop is busy with something else. Prints microseconds per call and
the speed-up of one thread over torch's default thread count.
"""

from __future__ import annotations

import multiprocessing as mp
import time

import torch
from torch import nn


def make_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))


def time_per_call(fn, repeats: int) -> float:
    for _ in range(max(10, repeats // 20)):  # warm-up
        fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats * 1e6


def measure(threads: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = make_mlp()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    obs = torch.randn(1, 4)
    batch, target = torch.randn(512, 4), torch.randint(0, 2, (512,))

    @torch.no_grad()
    def act():
        torch.distributions.Categorical(logits=net(obs)).sample()

    def train_step():
        loss = nn.functional.cross_entropy(net(batch), target)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return {"act (batch 1)": time_per_call(act, 5000), "train step (batch 512)": time_per_call(train_step, 1000)}


def measure_in_parallel(threads: int, processes: int) -> dict[str, float]:
    """Run ``measure`` in ``processes`` processes at once; return the slowest process's figures."""
    with mp.get_context("spawn").Pool(processes) as pool:
        results = pool.map(measure, [threads] * processes)
    return {workload: max(r[workload] for r in results) for workload in results[0]}


def main() -> None:
    default = torch.get_num_threads()
    print(f"torch {torch.__version__}, default threads: {default}")
    print(
        "| workload | processes at once | 1 thread, µs/call | " + f"{default} threads, µs/call | speed-up of 1 thread |"
    )
    print("|---|---|---|---|---|")
    for processes in (1, 2):
        one, many = (measure_in_parallel(n, processes) for n in (1, default))
        for workload in one:
            print(
                f"| {workload} | {processes} | {one[workload]:.0f} | {many[workload]:.0f} | {many[workload] / one[workload]:.2f}× |"
            )


if __name__ == "__main__":
    main()
