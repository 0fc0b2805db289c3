#!/usr/bin/env python3
"""Cost of wrapping a loop in course_utils.progress, per iteration.

    .venv/bin/python benchmarks/progress_overhead.py

Times a loop of cheap iterations bare and wrapped (bar written to /dev/null, as
the redraws are what could cost), and prints nanoseconds per iteration. One
CartPole step costs about 10 µs, so the overhead should be a small fraction of it.
"""

from __future__ import annotations

import os
import time

from course_utils import progress

N = 1_000_000


def loop(iterable) -> float:
    started = time.perf_counter()
    total = 0
    for i in iterable:
        total += i
    return (time.perf_counter() - started) / N * 1e9


def main() -> None:
    bare = min(loop(range(N)) for _ in range(3))
    with open(os.devnull, "w") as sink:
        wrapped = min(loop(progress(range(N), file=sink)) for _ in range(3))
    print(
        f"bare loop: {bare:.0f} ns/iteration; with progress(): {wrapped:.0f} ns/iteration; overhead {wrapped - bare:.0f} ns"
    )


if __name__ == "__main__":
    main()
