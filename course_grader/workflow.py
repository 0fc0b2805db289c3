"""The instructor's commands: collect, autograde, export, feedback, validate (release is in release.py).

Files (all under the git-ignored ``instructor/`` folder, nbgrader's layout)::

    instructor/submitted/<student>/<assignment>/<notebook>.ipynb   collected submissions (+ timestamp.txt)
    instructor/autograded/<student>/<assignment>/
        <notebook>.ipynb     the submission with outputs and verdicts, for formgrader's hand grading
        result.json          what the student may see (scores, reasons, their cells' output)
    instructor/private/<assignment>/<student>.json
                             what only you see (seed, the grader's inputs, expected values, grader errors)
    instructor/feedback/<student>/<assignment>/<notebook>.html      feedback to hand back
    instructor/gradebook.db                                          nbgrader's gradebook
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import nbformat

from . import feedback as feedback_html
from .course import Course, check_student_id
from .gradebook import record, scores, utc_timestamp
from .grading import grade_submission, manual_cells, question_points
from .notebooks import load_submission
from .release import ensure_in_gradebook
from .sandbox import SANDBOX_MODES, probe_bubblewrap
from .spec import Assignment, load_assignment
from .supervisor import RunLimits


class GradingRefused(RuntimeError):
    """Grading cannot start (e.g. no sandbox and ``--sandbox require``); the message says what to do."""


# ----------------------------------------------------------------------------- collect

DEFAULT_PATTERN = r"^(?P<student_id>[A-Za-z0-9][A-Za-z0-9.@+-]*)"


def collect(course: Course, assignment: str, source: Path, pattern: str = DEFAULT_PATTERN, log=print) -> dict:
    """Copy a folder (or .zip) of downloaded submissions into ``instructor/submitted``.

    Accepted layouts: notebooks directly in the folder, the student id taken
    from the file name by ``pattern`` (a regex with a ``student_id`` group;
    default: everything before the first ``_``), or one sub-folder per
    student id holding the notebook. Returns ``{"collected": [...], "skipped": [...]}``.
    """
    spec = load_assignment(course.solutions, assignment, course.assignments)
    regex = re.compile(pattern)
    if "student_id" not in regex.groupindex:
        raise ValueError(f"the pattern {pattern!r} needs a named group (?P<student_id>...)")
    source = Path(source)
    with tempfile.TemporaryDirectory(prefix="course-collect-") as tmp:
        if source.is_file() and source.suffix == ".zip":
            source = _safe_unzip(source, Path(tmp))
        if not source.is_dir():
            raise ValueError(f"{source} is neither a folder nor a .zip file of submissions")
        found: dict[str, list[Path]] = {}
        skipped = []
        for path in sorted(source.iterdir()):
            if path.name.startswith("."):
                continue
            if path.is_dir():
                notebooks = sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
                student = path.name
            elif path.suffix == ".ipynb":
                match = regex.search(path.name)
                notebooks, student = [path], match.group("student_id") if match else None
            else:
                skipped.append(f"{path.name}: not a notebook")
                continue
            if student is None:
                skipped.append(f"{path.name}: no student id matches {pattern!r}")
                continue
            try:
                check_student_id(student)
            except ValueError as err:
                skipped.append(f"{path.name}: {err}")
                continue
            if not notebooks:
                skipped.append(f"{path.name}: contains no .ipynb file")
                continue
            found.setdefault(student, []).extend(notebooks)
        collected = []
        for student, notebooks in sorted(found.items()):
            if len(notebooks) > 1:
                named = [p for p in notebooks if p.name == spec.notebook]
                if len(named) != 1:
                    skipped.append(
                        f"{student}: {len(notebooks)} notebooks ({', '.join(p.name for p in notebooks[:4])}); "
                        f"keep only {spec.notebook}"
                    )
                    continue
                notebooks = named
            dest = course.submission_dir(student, assignment)
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            shutil.copyfile(notebooks[0], dest / spec.notebook)
            (dest / "timestamp.txt").write_text(utc_timestamp(notebooks[0].stat().st_mtime) + "\n")
            collected.append(student)
    log(f"collected {len(collected)} submission(s) of {assignment} into {course.submitted}")
    for line in skipped:
        log(f"  skipped {line}")
    return {"collected": collected, "skipped": skipped}


def _safe_unzip(archive: Path, into: Path) -> Path:
    """Extract ``archive`` refusing absolute paths and ``..`` (zip-slip) and huge members."""
    with zipfile.ZipFile(archive) as zf:
        total = 0
        for info in zf.infolist():
            target = (into / info.filename).resolve()
            if not str(target).startswith(str(into.resolve()) + "/") and target != into.resolve():
                raise ValueError(f"{archive.name} contains an unsafe path {info.filename!r}")
            total += info.file_size
            if total > 2 * 2**30:
                raise ValueError(f"{archive.name} unpacks to more than 2 GB")
        zf.extractall(into)
    entries = [p for p in into.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    # A zip of one folder (the usual "download all" archive): look inside it.
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else into


# ----------------------------------------------------------------------------- autograde


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
            "bubblewrap, or `python -m course_grader setup-sandbox`), or pass --sandbox warn to grade without isolation "
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
) -> dict[str, dict]:
    """Grade every collected submission (or ``students``); returns ``{student: result}``.

    Each submission is graded on its own (one sandbox each, ``jobs`` at a
    time); whatever one submission does cannot change another's result, and a
    failure of the grader itself on one submission is reported for that
    student while the others are graded.
    """
    spec = load_assignment(course.solutions, assignment, course.assignments)
    question_points(spec)  # refuse an inconsistent assignment before running anything
    status = resolve_sandbox(sandbox, log)
    ids = submissions(course, assignment, students)
    if not ids:
        log(f"no submissions of {assignment} in {course.submitted}: run `collect` first")
        return {}
    ensure_in_gradebook(course, assignment)
    notebook_id = Path(spec.notebook).stem
    release_nb = course.assignments / assignment / spec.notebook
    log(
        f"autograding {len(ids)} submission(s) of {assignment} ({status.describe() if status else 'NO SANDBOX'}, "
        f"{jobs} at a time)"
    )
    results: dict[str, dict] = {}

    def one(student: str) -> dict:
        path = submission_notebook(course, spec, student)
        try:
            return grade_submission(
                spec,
                path,
                status,
                seed=seed,
                fast=fast,
                limits=limits,
                cell_timeout=cell_timeout,
                question_timeout=question_timeout,
            )
        except Exception as err:  # noqa: BLE001 - a grader failure on one submission must not stop the rest
            import traceback

            return _grader_failure(spec, f"{type(err).__name__}: {err}", traceback.format_exc())

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, s): s for s in ids}
        for future in as_completed(futures):
            student = futures[future]
            result = future.result()
            results[student] = result
            try:
                _store(course, spec, student, result, release_nb, notebook_id)
            except Exception as err:  # noqa: BLE001 - keep grading the others; the result.json is still written
                result["public"]["problems"].append(f"not recorded in the gradebook: {type(err).__name__}: {err}")
                log(
                    f"  {student}: could not record the result in the gradebook ({err}); if the assignment "
                    "changed since its release, run `python -m course_grader release` first"
                )
            p = result["public"]
            log(
                f"  {student:<20} {p['score']:6g} / {p['max_score']:g}  {p['status']:<8} {p['seconds']:6.1f} s"
                + (f"  ({len(p['problems'])} problem(s): {p['problems'][0][:60]})" if p["problems"] else "")
            )
    return results


def _grader_failure(spec: Assignment, message: str, trace: str) -> dict:
    public = {
        "assignment": spec.name,
        "status": "grader-error",
        "sandbox": "not run",
        "cells": [],
        "manual": {},
        "problems": ["The grader failed on this submission; your instructor will grade it by hand."],
        "questions": {},
        "score": 0.0,
        "max_score": 0.0,
        "seconds": 0.0,
    }
    points = question_points(spec)
    for q in spec.questions:
        public["questions"][q.id] = {
            "title": q.title or q.id,
            "points": points[q.id],
            "score": 0.0,
            "status": "grader-error",
            "messages": ["not graded: grader failure"],
        }
    public["max_score"] = sum(points.values())
    for m in manual_cells(spec):
        public["manual"][m.grade_id] = {"points": m.points, "status": "missing", "answer": None}
    return {"public": public, "private": {"grader_errors": {"*": trace}, "message": message}}


def _store(course: Course, spec: Assignment, student: str, result: dict, release_nb: Path, notebook_id: str) -> None:
    out = course.autograded_dir(student, spec.name)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result["public"], indent=1) + "\n")
    private = private_record(course, spec.name, student)
    private.parent.mkdir(parents=True, exist_ok=True)
    private.write_text(json.dumps(result["private"], indent=1, default=str) + "\n")
    submitted = submission_notebook(course, spec, student)
    nbformat.write(autograded_notebook(release_nb, submitted, result["public"]), out / spec.notebook)
    stamp = course.submission_dir(student, spec.name) / "timestamp.txt"
    timestamp = stamp.read_text().strip() if stamp.is_file() else None
    record(course, spec.name, notebook_id, student, result["public"], timestamp)


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
        nb.cells.append(nbformat.v4.new_markdown_cell(f"**Not graded:** {submission.problem}"))
    for cell in submission.cells:
        gid = cell["grade_id"] if cell["grade_id"] in by_id and cell["grade_id"] not in used else None
        ref = by_id.get(gid)
        if ref is not None and ref.cell_type != cell["cell_type"]:
            gid, ref = None, None
        source = ref.source if ref is not None and ref.metadata["nbgrader"].get("locked") else cell["source"]
        new = (
            nbformat.v4.new_code_cell(source)
            if cell["cell_type"] == "code"
            else nbformat.v4.new_markdown_cell(source)
            if cell["cell_type"] == "markdown"
            else nbformat.v4.new_raw_cell(source)
        )
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


# ----------------------------------------------------------------------------- export and feedback


def export(course: Course, assignment: str, output: Path | None = None, log=print) -> Path:
    """Write one CSV row per graded student with per-question scores (hand-entered scores win).

    Columns: student_id, one per autograded question, one per written answer
    (empty while it waits for hand grading), total, max_score, status,
    ungraded (written answers still to grade), problems.
    """
    spec = load_assignment(course.solutions, assignment, course.assignments)
    points = question_points(spec)
    written = [m.grade_id for m in manual_cells(spec)]
    notebook_id = Path(spec.notebook).stem
    output = Path(output or course.root / "instructor" / f"{assignment}_grades.csv")
    output.parent.mkdir(parents=True, exist_ok=True)
    header = ["student_id", *points, *written, "total", "max_score", "status", "ungraded", "problems"]
    rows = []
    for student in sorted(p.parent.parent.name for p in course.autograded.glob(f"*/{assignment}/result.json")):
        public = json.loads((course.autograded_dir(student, assignment) / "result.json").read_text())
        current = scores(course, assignment, notebook_id, student)
        row = {"student_id": student}
        total, ungraded = 0.0, []
        for gid in [*points, *written]:
            entry = current.get(gid)
            if entry is None:  # gradebook missing (e.g. deleted): fall back to the autograder's record
                entry = {"score": public["questions"].get(gid, {}).get("score"), "graded": gid in public["questions"]}
            if entry["graded"]:
                row[gid] = f"{entry['score']:g}"
                total += entry["score"]
            else:
                row[gid] = ""
                ungraded.append(gid)
        row.update(
            total=f"{total:g}",
            max_score=f"{sum(points.values()) + sum(m.points for m in manual_cells(spec)):g}",
            status=public["status"],
            ungraded=";".join(ungraded),
            problems=" | ".join(p.replace("\n", " ")[:200] for p in public.get("problems", [])),
        )
        rows.append(row)
    with output.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    log(f"wrote {len(rows)} row(s) to {output}")
    return output


def generate_feedback(course: Course, assignment: str, students: list[str] | None = None, log=print) -> list[Path]:
    """Write ``instructor/feedback/<student>/<assignment>/<notebook>.html`` for each graded student."""
    spec = load_assignment(course.solutions, assignment, course.assignments)
    notebook_id = Path(spec.notebook).stem
    graded = sorted(p.parent.parent.name for p in course.autograded.glob(f"*/{assignment}/result.json"))
    if students:
        graded = [s for s in graded if s in set(students)]
    written = []
    for student in graded:
        public = json.loads((course.autograded_dir(student, assignment) / "result.json").read_text())
        page = feedback_html.render(student, assignment, public, scores(course, assignment, notebook_id, student))
        out = course.feedback_dir(student, assignment)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{notebook_id}.html"
        path.write_text(page)
        written.append(path)
    log(f"wrote feedback for {len(written)} student(s) into {course.feedback}")
    return written


def validate(notebook: Path, log=print) -> int:
    """A student's self-check: the notebook must be readable, then nbgrader validate runs it and lists failing tests."""
    import subprocess

    from .course import nbgrader_environment

    submission = load_submission(Path(notebook))
    if submission.problem:
        log(f"{notebook}: {submission.problem}")
        return 1
    nbgrader_environment()
    started = time.monotonic()
    code = subprocess.call([sys.executable, "-m", "nbgrader", "validate", str(notebook)])
    log(f"(nbgrader validate took {time.monotonic() - started:.0f} s)")
    return code
