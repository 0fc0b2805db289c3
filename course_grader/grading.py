"""Grade one submission: run it in the sandbox, then check the returned values outside.

:func:`grade_submission` never raises for anything a submission does; every
failure becomes a per-question reason. Its result has two parts:

- ``public``: what the student may see (scores, reasons, their own cells'
  output and errors) -- feedback is rendered from this only;
- ``private``: what only the instructor sees (the seed, the grader's inputs and
  the checks' details, which hold expected values, and grader tracebacks).
"""

from __future__ import annotations

import math
import secrets
import time
import traceback
from pathlib import Path

import numpy as np

from .checks import Verdict, Wrong
from .notebooks import GradeCell, Submission, answer_cells, grade_cells, load_submission
from .sandbox import SandboxStatus
from .spec import Assignment, SpecError
from .supervisor import RunLimits, RunReport, Step, run_steps
from .untrusted import clean


def question_points(assignment: Assignment) -> dict[str, float]:
    """Points of each autograded question, read from the solution notebook's test cells.

    Every autograded test cell needs a hidden check and every check a test cell:
    a mismatch is an error in the assignment, reported before anything is graded.
    """
    cells = grade_cells(assignment.source_dir / assignment.notebook)
    auto = {c.grade_id: c.points for c in cells if not c.manual}
    spec_ids = [q.id for q in assignment.questions]
    unchecked = sorted(set(auto) - set(spec_ids))
    unknown = sorted(set(spec_ids) - set(auto))
    if unchecked or unknown:
        raise SpecError(
            f"{assignment.name}: the notebook's autograded test cells and hidden_tests.py disagree: "
            f"test cells without a hidden check {unchecked}, hidden checks without a test cell {unknown}"
        )
    return {q.id: auto[q.id] for q in assignment.questions}


STUB_TEXT = "YOUR ANSWER HERE"


def manual_cells(assignment: Assignment):
    """The hand-graded written answers; ``source`` is the released stub's text (what an unanswered cell holds)."""
    cells = [c for c in grade_cells(assignment.source_dir / assignment.notebook) if c.manual]
    release = assignment.release_dir / assignment.notebook if assignment.release_dir else None
    stubs = {c.grade_id: c.source for c in grade_cells(release)} if release is not None and release.is_file() else {}
    return [GradeCell(c.grade_id, c.points, c.cell_type, True, stubs.get(c.grade_id, STUB_TEXT)) for c in cells]


def is_unanswered(text: str, stub: str) -> bool:
    """True for an answer cell left as released (or emptied, or only the stub phrase)."""
    squeeze = " ".join(text.split())
    return not squeeze or squeeze == " ".join(stub.split()) or not squeeze.replace(STUB_TEXT, "").strip()


def graded_code_cells(assignment: Assignment, code_cells):
    """The cells the grader runs: every code cell in the student's order except the visible test cells.

    Visible tests are for the student's self-check and decide no credit, so
    the grader does not spend time on them, and deleting, editing or moving
    them changes nothing. (A cell is a test cell if it carries the grade id of
    one of the assignment's questions.)
    """
    questions = {q.id for q in assignment.questions}
    return [(index, src) for index, src, grade_id in code_cells if grade_id not in questions]


def cell_label(index: int, source: str) -> str:
    """How messages name a cell: its position counted from 1 (as JupyterLab shows it) and its first line."""
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return f"cell {index + 1} ({first[:50] + ('…' if len(first) > 50 else '')})"


def build_steps(
    assignment: Assignment,
    code_cells,
    seed: int,
    cell_timeout: float | None = None,
    question_timeout: float | None = None,
):
    """The sandbox's job: the student's code cells in their order, then one driver per question."""
    steps = [
        Step("cell", cell_timeout or assignment.cell_timeout, source=src, label=cell_label(index, src))
        for index, src in graded_code_cells(assignment, code_cells)
    ]
    inputs = {}
    for k, q in enumerate(assignment.questions):
        rng = np.random.default_rng([seed, k])
        inputs[q.id] = q.make_inputs(rng)
        timeout = q.timeout if question_timeout is None else min(q.timeout, question_timeout)
        steps.append(
            Step("driver", timeout, question=q.id, driver=q.driver, inputs=inputs[q.id], label=f"question {q.id}")
        )
    return steps, inputs


def grade_submission(
    assignment: Assignment,
    path: Path,
    sandbox: SandboxStatus | None,
    seed: int | None = None,
    fast: bool = True,
    limits: RunLimits | None = None,
    cell_timeout: float | None = None,
    question_timeout: float | None = None,
) -> dict:
    """Grade the notebook at ``path``; see the module docstring for the result's shape.

    ``seed`` fixes the grader's inputs (default: fresh random inputs each time).
    ``sandbox=None`` runs student code without isolation (only for trusted code).
    ``cell_timeout`` replaces the assignment's time limit per cell and
    ``question_timeout`` caps each question's (both in seconds).
    """
    started = time.monotonic()
    seed = secrets.randbits(62) if seed is None else int(seed)
    points = question_points(assignment)
    manual = manual_cells(assignment)
    submission = load_submission(Path(path))
    public: dict = {"assignment": assignment.name, "questions": {}, "manual": {}, "cells": [], "problems": []}
    private: dict = {"seed": seed, "inputs": {}, "details": {}, "grader_errors": {}}

    if submission.problem:
        public["status"] = "invalid"
        public["problems"].append(f"Not graded: {submission.problem}.")
        for q in assignment.questions:
            public["questions"][q.id] = _question_entry(q, points[q.id], 0.0, "not graded", [submission.problem])
        for m in manual:
            public["manual"][m.grade_id] = {"points": m.points, "status": "missing", "answer": None}
        public["sandbox"] = "not run"
        return _finish(public, private, started)

    steps, inputs = build_steps(assignment, submission.code_cells, seed, cell_timeout, question_timeout)
    private["inputs"] = inputs
    report = run_steps(steps, sandbox, fast=fast, limits=limits, preload=assignment.preload)
    score_run(assignment, submission, inputs, report, points, manual, public, private)
    return _finish(public, private, started)


def score_run(
    assignment: Assignment,
    submission: Submission,
    inputs: dict,
    report: RunReport,
    points: dict[str, float],
    manual: list[GradeCell],
    public: dict,
    private: dict,
) -> None:
    """Fill ``public`` and ``private`` from the sandbox's ``report``: cells, checked questions, written answers.

    A check that crashes scores 0 for its question (``grader-error``, traceback in ``private``) and
    marks the whole submission ``grader-error`` with a problem naming the question, so that the
    summary, the CSV's ``problems`` column and the CLI's exit code all show it.
    """
    public["sandbox"] = report.sandbox
    public["restarts"] = report.restarts
    public["problems"].extend(report.problems)
    ran = graded_code_cells(assignment, submission.code_cells)
    n_cells = len(ran)
    for (index, _), record in zip(ran, report.records[:n_cells], strict=False):  # a killed run has fewer records
        public["cells"].append(
            {
                "index": index,
                "status": record.status,
                "output": record.output,
                "error": record.error,
                "seconds": round(record.seconds, 2),
            }
        )

    for q, record in zip(assignment.questions, report.records[n_cells:], strict=False):
        if record.status != "ok":
            reason = record.error or record.status
            if record.status == "error" and not record.missing:
                reason = f"the grader could not run its calls of your functions:\n{reason}"
            public["questions"][q.id] = _question_entry(q, points[q.id], 0.0, record.status, [reason])
            continue
        try:
            verdict = q.check(inputs[q.id], record.result)
            if not isinstance(verdict, Verdict):
                raise TypeError(f"check returned {type(verdict).__name__}, not a Verdict")
            fraction = float(verdict.fraction)
            if not math.isfinite(fraction):
                raise ValueError(f"check returned the fraction {verdict.fraction!r}")
            fraction = min(1.0, max(0.0, fraction))
            status = "passed" if fraction == 1.0 else ("partial" if fraction > 0 else "failed")
            public["questions"][q.id] = _question_entry(q, points[q.id], fraction, status, verdict.messages)
            private["details"][q.id] = verdict.details
        except Wrong as err:
            public["questions"][q.id] = _question_entry(q, points[q.id], 0.0, "failed", [str(err)])
        except Exception:  # noqa: BLE001 - a bug in a check must not stop the other questions
            public["questions"][q.id] = _question_entry(
                q,
                points[q.id],
                0.0,
                "grader-error",
                ["the grader could not check this answer; your instructor has been told and will look at it"],
            )
            private["grader_errors"][q.id] = traceback.format_exc()

    for m in manual:
        found = [c for c in answer_cells(submission, m.grade_id) if c["cell_type"] == m.cell_type]
        if not found:
            entry = {"status": "missing", "answer": None}
        elif is_unanswered(found[0]["source"], m.source):
            entry = {"status": "unanswered", "answer": found[0]["source"]}
        else:
            entry = {"status": "needs manual grading", "answer": found[0]["source"]}
        public["manual"][m.grade_id] = {"points": m.points, **entry}
    crashed = [q for q, entry in public["questions"].items() if entry["status"] == "grader-error"]
    if crashed:
        public["status"] = "grader-error"
        public["problems"].append(
            f"grader error: the checks of {', '.join(crashed)} crashed, so they scored 0 for now; "
            "your instructor has been told and will grade them by hand"
        )
    else:
        public["status"] = "graded"


def _question_entry(q, points: float, fraction: float, status: str, messages: list[str]) -> dict:
    return {
        "title": q.title or q.id,
        "points": points,
        "score": round(points * fraction, 4),
        "status": status,
        "messages": [str(m) for m in messages],
    }


def _finish(public: dict, private: dict, started: float) -> dict:
    clean(public), clean(private)  # no student string can break writing the result anywhere
    public["score"] = round(sum(q["score"] for q in public["questions"].values()), 4)
    public["max_score"] = sum(q["points"] for q in public["questions"].values())
    public["seconds"] = round(time.monotonic() - started, 2)
    return {"public": public, "private": private}
