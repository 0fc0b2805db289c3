"""``autograde``: grade each collected submission in its own sandbox, store its result and fill the gradebook.

Each submission is graded by :func:`course_grader.grading.grade_submission`; this module is the one place
that consumes what it returns (the loop of :func:`autograde`, ``_store`` and
:func:`grader_errors`). It also builds the notebook formgrader shows for hand grading.
"""

from __future__ import annotations

import json
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import nbformat

from .course import Course
from .deadlines import load_settings, submission_time
from .feedback import failure_flags
from .gradebook import record, set_due_date
from .grading import GradeResult, grade_submission, grader_failure, prepare
from .notebooks import load_submission
from .release import ensure_in_gradebook
from .sandbox import SANDBOX_MODES, probe_bubblewrap
from .spec import Assignment, load_assignment
from .supervisor import RunLimits
from .untrusted import clean_text, sanitize_html, sanitize_markdown


class GradingRefused(RuntimeError):
    """Grading cannot start (e.g. no sandbox and ``--sandbox require``); the message says what to do."""


def resolve_sandbox(mode: str, log=print):
    """The sandbox status to grade with, or None (no isolation) -- refusing if ``mode`` requires one."""
    if mode not in SANDBOX_MODES:
        raise ValueError(f"--sandbox must be one of {SANDBOX_MODES}, got {mode!r}")
    if mode == "off":
        log(
            "WARNING: --sandbox off: student code runs WITHOUT isolation and can read and write your files. "
            "Use this only for code you trust."
        )
        return None
    status = probe_bubblewrap()
    if status.available:
        return status
    if mode == "require":
        raise GradingRefused(
            f"refusing to grade: no sandbox ({status.reason}). Install bubblewrap (Debian/Ubuntu: sudo apt-get install "
            "bubblewrap, or `.venv/bin/python -m course_grader setup-sandbox`), or pass --sandbox warn to grade without isolation "
            "(submissions could then read the solutions and your gradebook)."
        )
    log("=" * 78)
    log(f"WARNING: grading WITHOUT a sandbox ({status.reason}).")
    log("Student code can read every file you can (solutions, hidden tests, other students, the gradebook).")
    log("Scores are still decided in a separate process and time limits still apply.")
    log("=" * 78)
    return None


def submissions(course: Course, assignment: str, students: list[str] | None = None) -> list[str]:
    ids = sorted(p.parent.name for p in course.submitted.glob(f"*/{assignment}") if p.is_dir())
    if students:
        missing = sorted(set(students) - set(ids))
        if missing:
            raise ValueError(f"no collected submission of {assignment} for {', '.join(missing)}")
        ids = [s for s in ids if s in set(students)]
    return ids


def submission_notebook(course: Course, spec: Assignment, student: str) -> Path:
    folder = course.submission_dir(student, spec.name)
    expected = folder / spec.notebook
    if expected.exists():
        return expected
    others = sorted(folder.glob("*.ipynb"))
    return others[0] if len(others) == 1 else expected


def autograde(
    course: Course,
    assignment: str,
    students: list[str] | None = None,
    sandbox: str = "require",
    jobs: int = 1,
    seed: int | None = None,
    cell_timeout: float | None = None,
    question_timeout: float | None = None,
    fast: bool = True,
    limits: RunLimits | None = None,
    log=print,
    scheduler: str | None = None,
) -> dict[str, GradeResult]:
    """Grade every collected submission (or ``students``); returns ``{student: result}``.

    Each submission is graded on its own (one sandbox each, ``jobs`` at a
    time); whatever one submission does cannot change another's result, and a
    failure of the grader itself on one submission is reported for that
    student while the others are graded. ``scheduler`` (``"local"`` or a Dask
    scheduler's address) spreads the submissions over Dask workers instead of
    threads here (:mod:`course_grader.distributed`); this process still writes
    every result.
    """
    spec = load_assignment(course.solutions, assignment, course.assignments)
    prepared = prepare(spec)  # points and hand-graded cells read once, refusing an inconsistent assignment now
    status = resolve_sandbox(sandbox, log) if not scheduler else None  # with a scheduler, each worker's is checked
    ids = submissions(course, assignment, students)
    if not ids:
        log(f"no submissions of {assignment} in {course.submitted}: run `collect` first")
        return {}
    ensure_in_gradebook(course, assignment)
    settings = load_settings(course)  # a malformed course.toml or roster stops here, before any grading
    set_due_date(course, assignment, settings.due(assignment))
    from .roster import load_roster, names_into_gradebook

    roster = load_roster(course)
    if roster:
        names_into_gradebook(course, roster)
    notebook_id = Path(spec.notebook).stem
    release_nb = course.assignments / assignment / spec.notebook
    where = f"on the Dask workers of {scheduler}" if scheduler else (status.describe() if status else "NO SANDBOX")
    log(f"autograding {len(ids)} submission(s) of {assignment} ({where}, {jobs} at a time)")
    results: dict[str, GradeResult] = {}

    def one(student: str) -> GradeResult:
        path = submission_notebook(course, spec, student)
        try:
            return grade_submission(
                prepared,
                path,
                status,
                seed=seed,
                fast=fast,
                limits=limits,
                cell_timeout=cell_timeout,
                question_timeout=question_timeout,
            )
        except Exception as err:  # noqa: BLE001 - a grader failure on one submission must not stop the rest
            return grader_failure(prepared, f"{type(err).__name__}: {err}", traceback.format_exc())

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        if scheduler:
            from .distributed import grade_on_cluster

            options = dict(seed=seed, fast=fast, limits=limits, cell_timeout=cell_timeout)
            options["question_timeout"] = question_timeout
            paths = {s: submission_notebook(course, spec, s) for s in ids}
            finished = grade_on_cluster(scheduler, course, prepared, paths, sandbox, jobs, options, log)
        else:
            futures = {pool.submit(one, s): s for s in ids}
            finished = ((futures[f], f.result()) for f in as_completed(futures))
        for student, result in finished:
            results[student] = result
            try:
                _store(course, spec, student, result, release_nb, notebook_id)
            except Exception as err:  # noqa: BLE001 - keep grading the others; the result.json is still written
                result.problems.append(f"not recorded in the gradebook: {type(err).__name__}: {err}")
                log(
                    f"  {student}: could not record the result in the gradebook ({err}); if the assignment "
                    "changed since its release, run `.venv/bin/python -m course_grader release` first"
                )
            r = result
            lateness = settings.lateness(assignment, student, submission_time(course, assignment, student))
            marks = [*failure_flags(r.public_json()), *([lateness.describe()] if lateness.late else [])]
            log(
                clean_text(
                    f"  {student:<20} {r.score:6g} / {r.max_score:g}  {r.status:<8} {r.seconds:6.1f} s"
                    + "".join(f"  [{m[:120]}]" for m in marks)
                    + (f"  ({len(r.problems)} problem(s): {r.problems[-1][:80]})" if r.problems else "")
                )
            )
    crashed = grader_errors(results)
    if crashed:
        log(
            f"GRADER ERRORS for {len(crashed)} submission(s): {', '.join(crashed)} -- the questions concerned scored 0 "
            f"for now; tracebacks in {course.autograded.parent / 'private' / assignment}"
        )
    return results


def grader_errors(results: dict[str, GradeResult]) -> list[str]:
    """The students (sorted) whose result in ``autograde``'s ``{student: result}`` shows a grader error."""
    return sorted(s for s, r in results.items() if r.status == "grader-error")


def _store(
    course: Course, spec: Assignment, student: str, result: GradeResult, release_nb: Path, notebook_id: str
) -> None:
    public = result.public_json()
    out = course.autograded_dir(student, spec.name)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(public, indent=1) + "\n")
    private = private_record(course, spec.name, student)
    private.parent.mkdir(parents=True, exist_ok=True)
    private.write_text(json.dumps(result.private_json(), indent=1, default=str) + "\n")
    submitted = submission_notebook(course, spec, student)
    nbformat.write(autograded_notebook(release_nb, submitted, public), out / spec.notebook)
    stamp = course.submission_dir(student, spec.name) / "timestamp.txt"
    timestamp = stamp.read_text().strip() if stamp.is_file() else None
    record(course, spec.name, notebook_id, student, public, timestamp)


def private_record(course: Course, assignment: str, student: str) -> Path:
    """Where the instructor-only part of a result goes: outside nbgrader's per-student folders, so that no
    feedback tool (ours or nbgrader's, which copies whole folders) can ever hand it out."""
    return course.autograded.parent / "private" / assignment / f"{student}.json"


def autograded_notebook(release_nb: Path, submitted: Path, public: dict) -> nbformat.NotebookNode:
    """The notebook formgrader shows: the student's cells in their order with the outputs of the grader's run,
    graded cells carrying the release's nbgrader metadata (locked cells restored from the release), each
    question's verdict as the output of its test cell, and graded cells the student deleted put back at the end."""
    release = nbformat.read(release_nb, as_version=4)
    by_id = {c.metadata["nbgrader"]["grade_id"]: c for c in release.cells if "nbgrader" in c.metadata}
    submission = load_submission(submitted)
    nb = nbformat.v4.new_notebook(metadata=release.metadata)
    outputs = {c["index"]: c for c in public.get("cells", [])}
    used: set[str] = set()
    if submission.problem:
        nb.cells.append(nbformat.v4.new_markdown_cell(sanitize_markdown(f"**Not graded:** {submission.problem}")))
    for cell in submission.cells:
        gid = cell["grade_id"] if cell["grade_id"] in by_id and cell["grade_id"] not in used else None
        ref = by_id.get(gid)
        if ref is not None and ref.cell_type != cell["cell_type"]:
            gid, ref = None, None
        locked = ref is not None and ref.metadata["nbgrader"].get("locked")
        source = ref.source if locked else cell["source"]
        # formgrader renders Markdown (raw HTML included) and raw cells into the instructor's page:
        # the student's own are sanitized (no scripts, event handlers or javascript: links)
        if cell["cell_type"] == "code":
            new = nbformat.v4.new_code_cell(source)
        elif cell["cell_type"] == "markdown":
            new = nbformat.v4.new_markdown_cell(source if locked else sanitize_markdown(source))
        else:
            new = nbformat.v4.new_raw_cell(source if locked else sanitize_html(source))
        if ref is not None:
            new.metadata["nbgrader"] = dict(ref.metadata["nbgrader"])
            used.add(gid)
        if new.cell_type == "code":
            _add_outputs(new, outputs.get(cell["index"]), public["questions"].get(gid))
        nb.cells.append(new)
    for gid, ref in by_id.items():
        if gid not in used and ref.metadata["nbgrader"].get("grade"):
            new = nbformat.from_dict(json.loads(json.dumps(ref)))
            if new.cell_type == "code":
                new.outputs, new.execution_count = [], None
                _add_outputs(new, None, public["questions"].get(gid))
            nb.cells.append(
                nbformat.v4.new_markdown_cell(
                    f"*(The cell `{gid}` was missing from the submission; restored by the grader.)*"
                )
            )
            nb.cells.append(new)
    return nb


def _add_outputs(cell, run: dict | None, question: dict | None) -> None:
    cell.outputs = []
    if run is not None:
        if run.get("output"):
            cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=run["output"]))
        if run.get("error"):
            cell.outputs.append(nbformat.v4.new_output("stream", name="stderr", text=run["error"]))
    if question is not None:
        text = f"[autograder] {question['score']:g} / {question['points']:g} ({question['status']})\n" + "\n".join(
            question["messages"]
        )
        cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text + "\n"))
