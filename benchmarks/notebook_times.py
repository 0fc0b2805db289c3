#!/usr/bin/env python3
"""Time each notebook top to bottom, in fast and/or full mode, on one or more seeds, and print a table.

    .venv/bin/python benchmarks/notebook_times.py                       # every notebook, both modes
    .venv/bin/python benchmarks/notebook_times.py --mode full notebooks/00_rl_loop.ipynb
    .venv/bin/python benchmarks/notebook_times.py --mode full --seeds 1 2 --jobs 2   # other seeds

By default: every notebook under notebooks/ (the lectures and their worked exercise solutions) and
solutions/ (the assignments' sources). ``--seeds`` sets ``COURSE_SEED`` (see course_utils.course_seed),
which every notebook derives all its randomness from: a notebook whose asserts hold on its own seed
but fail on another has asserts tuned to one seed. Notebooks run in fresh kernels of this environment
from their own folder; nothing is written back. A failing notebook is reported with its error and the
others still run; the exit code says whether any failed. The machine's load is printed before and
after, since times on a shared machine are upper bounds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FOLDERS = ("notebooks", "solutions")


def run_notebook(path: Path, fast: bool, seed: int | None, timeout: int) -> tuple[float, str]:
    """Execute ``path`` once in a fresh kernel; return (seconds, "ok" or the error's last line)."""
    nb = nbformat.read(path, as_version=4)
    os.environ["COURSE_FAST"] = "1" if fast else "0"  # the kernel inherits both
    if seed is None:
        os.environ.pop("COURSE_SEED", None)
    else:
        os.environ["COURSE_SEED"] = str(seed)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    started = time.perf_counter()
    try:
        client.execute()
        status = "ok"
    except CellExecutionError as err:
        status = "FAILED: " + str(err).strip().splitlines()[-1][:160]
    return time.perf_counter() - started, status


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/ and solutions/")
    parser.add_argument("--mode", choices=["fast", "full", "both"], default="both")
    parser.add_argument("--seeds", type=int, nargs="+", help="COURSE_SEED values (default: each notebook's own seed)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at once (one torch thread each)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args()
    paths = [p.resolve() for p in args.notebooks] or sorted(
        p for folder in DEFAULT_FOLDERS for p in (ROOT / folder).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
    )
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    modes = ["fast", "full"] if args.mode == "both" else [args.mode]
    seeds = args.seeds or [None]
    columns = [(mode, seed) for seed in seeds for mode in modes]
    print(f"{os.cpu_count()} cores, python {sys.version.split()[0]}, {args.jobs} job(s); {load()}")
    header = [mode if seed is None else f"{mode}, seed {seed}" for mode, seed in columns]
    print("| notebook | " + " | ".join(header) + " |\n|---|" + "---|" * len(columns), flush=True)
    failures = 0
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {
            (path, column): pool.submit(run_notebook, path.resolve(), column[0] == "fast", column[1], args.timeout)
            for path in paths
            for column in columns
        }
        for path in paths:
            cells = []
            for column in columns:
                seconds, status = futures[path, column].result()
                failures += status != "ok"
                cells.append(f"{seconds:.1f} s" + ("" if status == "ok" else f" ({status})"))
            print(f"| {path.relative_to(ROOT)} | " + " | ".join(cells) + " |", flush=True)
    print(f"{failures} failed; {load()}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
