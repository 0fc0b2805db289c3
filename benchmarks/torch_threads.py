#!/usr/bin/env python3
"""Why notebooks set one torch thread: time a small policy MLP with 1 thread vs the default.

    .venv/bin/python benchmarks/torch_threads.py

Two workloads typical of this course on CartPole-sized problems: acting (one
observation per forward pass, as in a rollout) and a training step (forward,
backward and Adam on a batch of 512). Prints microseconds per call and the
speed-up of one thread over torch's default thread count.
"""

from __future__ import annotations

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


def main() -> None:
    default = torch.get_num_threads()
    results = {n: measure(n) for n in sorted({1, default})}
    print(f"torch {torch.__version__}, default threads: {default}")
    print("| workload | " + " | ".join(f"{n} thread(s), µs" for n in results) + " | speed-up of 1 thread |")
    print("|---|" + "---|" * (len(results) + 1))
    for workload in results[1]:
        times = [results[n][workload] for n in results]
        print(f"| {workload} | " + " | ".join(f"{t:.0f}" for t in times) + f" | {results[default][workload] / results[1][workload]:.2f}× |")


if __name__ == "__main__":
    main()
