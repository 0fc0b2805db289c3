#!/usr/bin/env python3
"""Time the autograder per submission, on the test corpus, and print a table.

    .venv/bin/python benchmarks/grading_time.py                 # every assignment, 2 submissions at a time
    .venv/bin/python benchmarks/grading_time.py --jobs 1 --assignment a1_score_function

Builds the corpus of tests/grading_corpus (solution, stub, partly wrong,
looping, cheating, ...) in a throw-away copy of the course, grades it in the
sandbox exactly like `python -m course_grader autograde`, and prints each
submission's wall-clock grading time (sandbox start-up, the student's cells in
fast mode, the grader's calls, the checks) with its score. Nothing in the
repository is touched. Times depend on the machine's load: compare runs made
under the same conditions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the corpus builders live with the tests that use them

import torch  # noqa: E402
from grading_corpus import all_cases, notebook_bytes  # noqa: E402
from test_grading import context, make_course  # noqa: E402

from course_grader.autograding import autograde  # noqa: E402
from course_grader.collection import collect  # noqa: E402
from course_grader.sandbox import probe_bubblewrap  # noqa: E402
from course_grader.spec import assignment_names  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", action="append", default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cell-timeout", type=float, default=10.0)
    args = parser.parse_args()
    status = probe_bubblewrap()
    if not status.available:
        print(f"no sandbox: {status.reason}")
        return 1
    torch.set_num_threads(1)
    print(
        f"{os.cpu_count()} cores, {status.describe()}, {args.jobs} submission(s) at a time, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as tmp:
        course = make_course(Path(tmp))
        for name in args.assignment or assignment_names(ROOT / "solutions"):
            ctx = context(course, name)
            downloads = Path(tmp) / "downloads" / name
            cases = all_cases(ctx)
            for case in cases:
                (downloads / case.student).mkdir(parents=True)
                (downloads / case.student / ctx.notebook_name).write_bytes(notebook_bytes(ctx, case))
            collect(course, name, downloads, log=lambda *a: None)
            started = time.monotonic()
            results = autograde(
                course, name, jobs=args.jobs, seed=1, cell_timeout=args.cell_timeout, log=lambda *a: None
            )
            wall = time.monotonic() - started
            print(f"\n{name}: {len(results)} submissions in {wall:.1f} s wall-clock\n")
            print("| submission | what it is | score | restarts | grading time |\n|---|---|---|---|---|")
            for case in cases:
                p = results[case.student].public_json()
                print(
                    f"| {case.student} | {case.description} | {p['score']:g} / {p['max_score']:g} | "
                    f"{p.get('restarts', 0)} | {p['seconds']:.1f} s |"
                )
            honest = [
                results[c.student].seconds
                for c in cases
                if c.student in ("solution", "stub", "partly_right", "partly_wrong")
            ]
            print(
                f"\nhonest submissions (solution, stub, partly right/wrong): median {statistics.median(honest):.1f} s "
                f"per submission; the looping one pays its time limits ({args.cell_timeout:g} s per cell here)."
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
