"""``python -m course_grader <command>``: the instructor's grading workflow (see docs/instructors.md).

    release    ASSIGNMENT... | --all [--check]   regenerate assignments/<name> from solutions/ (--check: compare only)
    roster     CSV                               check the class list (id,name,email,lms_id) and use it
    collect    ASSIGNMENT FOLDER_OR_ZIP          copy downloaded submissions (Moodle, Canvas, GitHub Classroom,
               [--lms auto|moodle|canvas|github|plain] [--prefix P]   nbgrader, a folder) into instructor/submitted
    autograde  ASSIGNMENT [--student ID ...]     run each submission in the sandbox, score it, fill the gradebook
               [--jobs N] [--scheduler local|tcp://HOST:8786]   (in parallel; on Dask workers)
    export     ASSIGNMENT [--output CSV]         per-question scores (hand grading included) as CSV
               [--format course|canvas|moodle] [--round N]   or the grade-import CSV of Canvas or Moodle
    feedback   ASSIGNMENT [--student ID ...]     HTML feedback without hidden tests or expected values
    validate   NOTEBOOK                          a student's self-check (nbgrader validate)
    setup-sandbox [--no-install]                 check (and install) bubblewrap
    list                                         assignments, their questions and points, and the sandbox

Run from the repository root (or pass --root). Written answers are graded by hand in
nbgrader's formgrader (`jupyter lab`, then the Formgrader panel, or `nbgrader formgrader`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .course import Course


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m course_grader",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--root", type=Path, default=None, help="the course repository (default: here, or this package's)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="regenerate released stubs from solutions/")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--all", action="store_true", help="every assignment in solutions/")
    p.add_argument("--check", action="store_true", help="only compare a fresh release with the committed one")

    p = sub.add_parser("roster", help="check a class list CSV (id,name,email,lms_id) and make it the course's")
    p.add_argument("csv", type=Path)

    p = sub.add_parser("collect", help="collect a folder or .zip of downloaded submissions")
    p.add_argument("assignment")
    p.add_argument("source", type=Path)
    p.add_argument("--pattern", default=None, help="regex with (?P<student_id>...) applied to file names")
    p.add_argument(
        "--lms",
        choices=["auto", "moodle", "canvas", "github", "plain"],
        default="auto",
        help="the download's layout (default: recognised from the names)",
    )
    p.add_argument(
        "--prefix", default=None, help="GitHub Classroom: the repositories' prefix (e.g. a1-score-function-)"
    )

    p = sub.add_parser("autograde", help="grade collected submissions in the sandbox")
    p.add_argument("assignment")
    p.add_argument("--student", action="append", default=None, help="only this student (repeatable)")
    p.add_argument(
        "--sandbox",
        choices=["require", "warn", "off"],
        default="require",
        help="require: refuse without bubblewrap (default); warn: grade unisolated with a warning; "
        "off: no isolation (trusted code only)",
    )
    p.add_argument("--jobs", type=int, default=1, help="submissions graded at the same time (default 1)")
    p.add_argument(
        "--scheduler",
        default=None,
        help="spread the grading over Dask workers: 'local' (a cluster of --jobs processes here) or a scheduler's "
        "address (tcp://host:8786); results are written here only",
    )
    p.add_argument("--seed", type=int, default=None, help="fix the grader's inputs (default: new ones each run)")
    p.add_argument(
        "--cell-timeout", type=float, default=None, help="seconds per student cell (default: the assignment's)"
    )
    p.add_argument(
        "--full", action="store_true", help="run student notebooks with the full budgets instead of fast mode"
    )

    p = sub.add_parser("export", help="write per-question scores to CSV")
    p.add_argument("assignment")
    p.add_argument("--output", type=Path, default=None)
    p.add_argument(
        "--format",
        choices=["course", "canvas", "moodle"],
        default="course",
        help="course: every question (default); canvas/moodle: the LMS's grade-import CSV (ids from the roster)",
    )
    p.add_argument("--round", type=int, default=2, help="decimals of the LMS grade (default 2)")
    p.add_argument(
        "--column", default=None, help="canvas: the assignment's column header, e.g. 'A1 (123456)' (default: its name)"
    )

    p = sub.add_parser("feedback", help="write HTML feedback for graded students")
    p.add_argument("assignment")
    p.add_argument("--student", action="append", default=None)

    p = sub.add_parser("validate", help="check a notebook before handing it in")
    p.add_argument("notebook", type=Path)

    p = sub.add_parser("setup-sandbox", help="check the sandbox, installing bubblewrap if possible")
    p.add_argument("--no-install", action="store_true")

    sub.add_parser("list", help="assignments, questions, points and the sandbox")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "setup-sandbox":
        from .sandbox import main as sandbox_main

        return sandbox_main(["--no-install"] if args.no_install else [])
    course = Course.at(args.root)
    try:
        if args.command == "release":
            from .release import release, release_differences
            from .spec import assignment_names

            names = assignment_names(course.solutions) if args.all else args.assignments
            if not names:
                print("name an assignment or pass --all", file=sys.stderr)
                return 2
            if args.check:
                problems = [d for name in names for d in release_differences(course, name)]
                for line in problems:
                    print(line)
                print(
                    "releases are up to date"
                    if not problems
                    else "run `.venv/bin/python -m course_grader release` and commit"
                )
                return 1 if problems else 0
            release(course, names)
            return 0
        if args.command == "roster":
            from .roster import install_roster

            install_roster(course, args.csv)
            return 0
        if args.command == "collect":
            from .collection import DEFAULT_PATTERN, collect

            collect(
                course,
                args.assignment,
                args.source,
                args.pattern or DEFAULT_PATTERN,
                layout=args.lms,
                prefix=args.prefix,
            )
            return 0
        if args.command == "autograde":
            import torch

            from .autograding import autograde, grader_errors

            torch.set_num_threads(1)  # the checks are small; more threads only fight the sandboxes for the cores
            results = autograde(
                course,
                args.assignment,
                args.student,
                sandbox=args.sandbox,
                jobs=args.jobs,
                seed=args.seed,
                cell_timeout=args.cell_timeout,
                fast=not args.full,
                scheduler=args.scheduler,
            )
            failed = grader_errors(results)
            if failed:
                print(
                    f"grader errors for: {', '.join(failed)} -- the questions concerned scored 0 for now "
                    "(tracebacks in instructor/private/)",
                    file=sys.stderr,
                )
            return 1 if failed else 0
        if args.command == "export":
            from .reports import export, export_lms

            if args.format == "course":
                export(course, args.assignment, args.output)
            else:
                export_lms(course, args.assignment, args.format, args.output, decimals=args.round, column=args.column)
            return 0
        if args.command == "feedback":
            from .reports import generate_feedback

            generate_feedback(course, args.assignment, args.student)
            return 0
        if args.command == "validate":
            from .reports import validate

            return validate(args.notebook)
        if args.command == "list":
            from .grading import manual_cells, question_points
            from .sandbox import probe_bubblewrap
            from .spec import assignment_names, load_assignment

            for name in assignment_names(course.solutions):
                spec = load_assignment(course.solutions, name, course.assignments)
                points = question_points(spec)
                manual = manual_cells(spec)
                print(
                    f"{name} ({spec.notebook}): {sum(points.values()):g} autograded + {sum(m.points for m in manual):g} "
                    "by hand"
                )
                for q in spec.questions:
                    print(f"  {q.id:<22} {points[q.id]:>4g}  auto   ({q.timeout:g} s)  {q.title}")
                for m in manual:
                    print(f"  {m.grade_id:<22} {m.points:>4g}  by hand")
            print(f"sandbox: {probe_bubblewrap().describe()}")
            return 0
    except Exception as err:  # noqa: BLE001 - clear one-line errors for instructors; tracebacks with --debug-style env
        from .autograding import GradingRefused
        from .release import ReleaseError
        from .spec import SpecError

        if isinstance(err, (ReleaseError, SpecError, GradingRefused, ValueError, FileNotFoundError)):
            print(f"error: {err}", file=sys.stderr)
            return 1
        raise
    return 2
