"""Grade one submission: run it in the sandbox, parse what came back, check it outside.

:func:`grade_submission` never raises for anything a submission does; every
failure becomes a per-question status and reason. It returns a
:class:`GradeResult`, built here and only here, with two views:

- :meth:`GradeResult.public_json`: what the student may see (scores, reasons,
  their own cells' output and errors) -- result.json and feedback are made
  from this only; it holds no seed and no input of the grader;
- :meth:`GradeResult.private_json`: what only the instructor sees (the seed,
  the grader's inputs, the checks' details, which hold expected values, and
  grader tracebacks).

Question statuses: ``passed``, ``partial``, ``failed`` (the checks ran),
``malformed`` (the driver's result did not fit its schema: 0 points),
``error``/``timeout``/``crashed``/``protocol``/``not-run`` (the sandbox step
did not finish), ``not graded`` (the file is not a notebook) and
``grader-error`` (a bug in a check: 0 for now, flagged everywhere).
"""

from __future__ import annotations

import importlib.util
import math
import secrets
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .checks import Verdict, Wrong
from .notebooks import GradeCell, Submission, answer_cells, grade_cells, load_submission
from .sandbox import SandboxStatus
from .schema import Malformed, parse
from .spec import Assignment, Question, SpecError
from .supervisor import RunLimits, RunReport, Step, run_steps
from .untrusted import clean


@dataclass
class QuestionResult:
    """One autograded question's outcome, as the student sees it."""

    title: str
    points: float
    score: float
    status: str
    messages: list[str]


@dataclass
class CellResult:
    """One of the student's cells as the grader ran it."""

    index: int
    status: str
    output: str
    error: str | None
    seconds: float


@dataclass
class ManualAnswer:
    """A written answer, for hand grading: ``status`` is missing, unanswered or needs manual grading."""

    points: float
    status: str
    answer: str | None


@dataclass
class GradeResult:
    """Everything grading one submission produced (see the module docstring)."""

    assignment: str
    status: str  # graded, invalid (not a notebook) or grader-error
    questions: dict[str, QuestionResult]
    manual: dict[str, ManualAnswer]
    cells: list[CellResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    sandbox: str = "not run"
    restarts: int = 0
    seconds: float = 0.0
    seed: int | None = None
    inputs: dict = field(default_factory=dict)  # instructor only
    details: dict = field(default_factory=dict)  # instructor only
    grader_errors: dict = field(default_factory=dict)  # instructor only

    @property
    def score(self) -> float:
        return round(sum(q.score for q in self.questions.values()), 4)

    @property
    def max_score(self) -> float:
        return sum(q.points for q in self.questions.values())

    def public_json(self) -> dict:
        return clean(
            {
                "assignment": self.assignment,
                "status": self.status,
                "sandbox": self.sandbox,
                "restarts": self.restarts,
                "questions": {k: asdict(q) for k, q in self.questions.items()},
                "manual": {k: asdict(m) for k, m in self.manual.items()},
                "cells": [asdict(c) for c in self.cells],
                "problems": list(self.problems),
                "score": self.score,
                "max_score": self.max_score,
                "seconds": round(self.seconds, 2),
            }
        )

    def private_json(self) -> dict:
        return clean(
            {"seed": self.seed, "inputs": self.inputs, "details": self.details, "grader_errors": self.grader_errors}
        )


@dataclass(frozen=True)
class Prepared:
    """What grading needs from the assignment itself, read once per assignment (not per submission)."""

    assignment: Assignment
    points: dict[str, float]
    manual: list[GradeCell]
    hidden: tuple[Path, ...]


def prepare(assignment: Assignment) -> Prepared:
    """Read the points and hand-graded cells, and find the modules to hide; :class:`SpecError` if inconsistent."""
    return Prepared(assignment, question_points(assignment), manual_cells(assignment), hidden_paths(assignment))


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


def hidden_paths(assignment: Assignment) -> tuple[Path, ...]:
    """The files or folders of the modules an assignment forbids (``Assignment.forbidden``), for the sandbox to hide.

    A forbidden module that is not installed is unreachable anyway and needs no hiding.
    """
    paths = []
    for module in assignment.forbidden:
        try:
            spec = importlib.util.find_spec(module)
        except ModuleNotFoundError:  # its parent package is not installed
            spec = None
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        paths.append(origin.parent if origin.name == "__init__.py" else origin)
    return tuple(paths)


def build_steps(
    assignment: Assignment,
    code_cells,
    seed: int,
    cell_timeout: float | None = None,
    question_timeout: float | None = None,
):
    """The sandbox's work: the student's code cells in their order, then one driver per question.

    Returns the steps and every question's full inputs; a step carries only its driver's inputs (without the
    question's check-only keys).
    """
    steps = [
        Step("cell", cell_timeout or assignment.cell_timeout, source=src, label=cell_label(index, src))
        for index, src in graded_code_cells(assignment, code_cells)
    ]
    inputs = {}
    for k, q in enumerate(assignment.questions):
        rng = np.random.default_rng([seed, k])
        inputs[q.id] = q.make_inputs(rng)
        missing = [key for key in q.check_only if key not in inputs[q.id]]
        if missing:
            raise SpecError(f"{assignment.name}: {q.id}'s check-only keys {missing} are not in its inputs")
        timeout = q.timeout if question_timeout is None else min(q.timeout, question_timeout)
        steps.append(
            Step(
                "driver",
                timeout,
                question=q.id,
                driver=q.driver.__name__,
                inputs=q.driver_inputs(inputs[q.id]),
                label=f"question {q.id}",
            )
        )
    return steps, inputs


def grade_submission(
    assignment: Assignment | Prepared,
    path: Path,
    sandbox: SandboxStatus | None,
    seed: int | None = None,
    fast: bool = True,
    limits: RunLimits | None = None,
    cell_timeout: float | None = None,
    question_timeout: float | None = None,
) -> GradeResult:
    """Grade the notebook at ``path`` (see the module docstring).

    ``assignment`` may be the result of :func:`prepare` (read once for many submissions). ``seed`` fixes the grader's
    inputs (default: fresh random inputs each time). ``sandbox=None`` runs student code without isolation
    (only for trusted code). ``cell_timeout`` replaces the assignment's time limit per cell and
    ``question_timeout`` caps each question's (both in seconds). ``limits`` defaults to the assignment's
    budgets (:attr:`Assignment.cell_budget`, :attr:`Assignment.time_budget`).
    """
    started = time.monotonic()
    prepared = assignment if isinstance(assignment, Prepared) else prepare(assignment)
    spec = prepared.assignment
    seed = secrets.randbits(62) if seed is None else int(seed)
    submission = load_submission(Path(path))
    result = GradeResult(spec.name, "graded", {}, {}, seed=seed)

    if submission.problem:
        result.status = "invalid"
        result.problems.append(f"Not graded: {submission.problem}.")
        for q in spec.questions:
            result.questions[q.id] = _question(q, prepared.points[q.id], 0.0, "not graded", [submission.problem])
        for m in prepared.manual:
            result.manual[m.grade_id] = ManualAnswer(m.points, "missing", None)
        result.seconds = time.monotonic() - started
        return result

    result.problems.extend(submission.notes)
    steps, inputs = build_steps(spec, submission.code_cells, seed, cell_timeout, question_timeout)
    result.inputs = inputs
    if limits is None:
        limits = RunLimits(total_timeout=spec.time_budget, cell_budget=spec.cell_budget)
    report = run_steps(
        steps, sandbox, fast=fast, limits=limits, preload=spec.preload, drivers=spec.drivers, hide=prepared.hidden
    )
    score_run(prepared, submission, inputs, report, result)
    result.seconds = time.monotonic() - started
    return result


def check_question(q: Question, inputs: dict, raw) -> tuple[float, str, list[str], dict]:
    """Parse the driver's ``raw`` result against the question's schema, then check it:
    ``(fraction, status, messages, details)``.

    Raises only for a bug in the check itself (the caller records it as a grader error).
    """
    try:
        parsed = parse(q.result(inputs), raw)
    except Malformed as err:
        return (
            0.0,
            "malformed",
            [f"malformed result, 0 points: {err} (did the notebook change the grader's calls?)"],
            {},
        )
    try:
        verdict = q.check(inputs, parsed)
    except Wrong as err:
        return 0.0, "failed", [str(err)], {}
    if not isinstance(verdict, Verdict):
        raise TypeError(f"check returned {type(verdict).__name__}, not a Verdict")
    fraction = float(verdict.fraction)
    if not math.isfinite(fraction):
        raise ValueError(f"check returned the fraction {verdict.fraction!r}")
    fraction = min(1.0, max(0.0, fraction))
    status = "passed" if fraction == 1.0 else ("partial" if fraction > 0 else "failed")
    return fraction, status, [str(m) for m in verdict.messages], verdict.details


def score_run(prepared: Prepared, submission: Submission, inputs: dict, report: RunReport, result: GradeResult) -> None:
    """Fill ``result`` from the sandbox's ``report``: cells, checked questions, written answers.

    A check that crashes scores 0 for its question (``grader-error``, traceback for the instructor) and
    marks the whole submission ``grader-error`` with a problem naming the question, so that the
    summary, the CSV's ``problems`` column and the CLI's exit code all show it.
    """
    spec, points = prepared.assignment, prepared.points
    result.sandbox = report.sandbox
    result.restarts = report.restarts
    result.problems.extend(report.problems)
    ran = graded_code_cells(spec, submission.code_cells)
    n_cells = len(ran)
    for (index, _), record in zip(ran, report.records[:n_cells], strict=True):
        result.cells.append(CellResult(index, record.status, record.output, record.error, round(record.seconds, 2)))

    for q, record in zip(spec.questions, report.records[n_cells:], strict=True):
        if record.status != "ok":
            reason = record.error or record.status
            if record.status == "error" and not record.missing:
                reason = f"the grader could not run its calls of your functions:\n{reason}"
            result.questions[q.id] = _question(q, points[q.id], 0.0, record.status, [reason])
            continue
        try:
            fraction, status, messages, details = check_question(q, inputs[q.id], record.result)
            result.questions[q.id] = _question(q, points[q.id], fraction, status, messages)
            result.details[q.id] = details
        except Exception:  # noqa: BLE001 - a bug in a check must not stop the other questions
            result.questions[q.id] = _question(
                q,
                points[q.id],
                0.0,
                "grader-error",
                ["the grader could not check this answer; your instructor has been told and will look at it"],
            )
            result.grader_errors[q.id] = traceback.format_exc()

    for m in prepared.manual:
        found = [c for c in answer_cells(submission, m.grade_id) if c["cell_type"] == m.cell_type]
        if not found:
            result.manual[m.grade_id] = ManualAnswer(m.points, "missing", None)
        elif is_unanswered(found[0]["source"], m.source):
            result.manual[m.grade_id] = ManualAnswer(m.points, "unanswered", found[0]["source"])
        else:
            result.manual[m.grade_id] = ManualAnswer(m.points, "needs manual grading", found[0]["source"])
    crashed = [q for q, entry in result.questions.items() if entry.status == "grader-error"]
    if crashed:
        result.status = "grader-error"
        result.problems.append(
            f"grader error: the checks of {', '.join(crashed)} crashed, so they scored 0 for now; "
            "your instructor has been told and will grade them by hand"
        )


def grader_failure(prepared: Prepared, message: str, trace: str) -> GradeResult:
    """The result of a submission the grader itself failed on: every question 0 and flagged, for hand grading."""
    spec = prepared.assignment
    result = GradeResult(
        spec.name,
        "grader-error",
        {
            q.id: _question(q, prepared.points[q.id], 0.0, "grader-error", ["not graded: grader failure"])
            for q in spec.questions
        },
        {m.grade_id: ManualAnswer(m.points, "missing", None) for m in prepared.manual},
        problems=["The grader failed on this submission; your instructor will grade it by hand."],
        grader_errors={"*": trace, "message": message},
    )
    return result


def _question(q: Question, points: float, fraction: float, status: str, messages: list[str]) -> QuestionResult:
    return QuestionResult(q.title or q.id, points, round(points * fraction, 4), status, [str(m) for m in messages])
