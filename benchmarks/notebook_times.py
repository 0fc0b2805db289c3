#!/usr/bin/env python3
"""Time each notebook top to bottom, in fast mode and in full mode, and print a table.

    .venv/bin/python benchmarks/notebook_times.py                 # every notebook, both modes
    .venv/bin/python benchmarks/notebook_times.py --mode full notebooks/00_rl_loop.ipynb

Notebooks run in a fresh kernel of this environment, one at a time, from their
own folder; nothing is written back. A notebook that fails is reported with the
error and the others still run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent


def run_notebook(path: Path, fast: bool, timeout: int) -> tuple[float, str]:
    """Execute ``path`` once; return (seconds, "ok" or the error's first line)."""
    nb = nbformat.read(path, as_version=4)
    os.environ["COURSE_FAST"] = "1" if fast else "0"  # the kernel inherits it
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    started = time.perf_counter()
    try:
        client.execute()
        status = "ok"
    except CellExecutionError as err:
        status = "FAILED: " + str(err).strip().splitlines()[-1][:120]
    return time.perf_counter() - started, status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/")
    parser.add_argument("--mode", choices=["fast", "full", "both"], default="both")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args()
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    modes = ["fast", "full"] if args.mode == "both" else [args.mode]
    print(f"{os.cpu_count()} cores, python {sys.version.split()[0]}")
    print("| notebook | " + " | ".join(modes) + " |\n|---|" + "---|" * len(modes))
    failures = 0
    for path in paths:
        cells = []
        for mode in modes:
            seconds, status = run_notebook(path.resolve(), fast=(mode == "fast"), timeout=args.timeout)
            failures += status != "ok"
            cells.append(f"{seconds:.1f} s" + ("" if status == "ok" else f" ({status})"))
        print(f"| {path.name} | " + " | ".join(cells) + " |", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
