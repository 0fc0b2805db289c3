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
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import unicodedata
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import nbformat

from . import feedback as feedback_html
from .course import Course, check_student_id
from .gradebook import record, scores, utc_timestamp
from .grading import grade_submission, manual_cells, question_points
from .notebooks import MAX_NOTEBOOK_BYTES, load_submission
from .release import ensure_in_gradebook
from .sandbox import SANDBOX_MODES, probe_bubblewrap
from .spec import Assignment, load_assignment
from .supervisor import RunLimits
from .untrusted import clean, clean_text, sanitize_html, sanitize_markdown


class GradingRefused(RuntimeError):
    """Grading cannot start (e.g. no sandbox and ``--sandbox require``); the message says what to do."""


# ----------------------------------------------------------------------------- collect

# The id is everything before the first "_" (or the whole name), letters and digits of any script; a name
# whose id part holds anything else (a space, a tilde) matches nothing rather than being cut short.
DEFAULT_PATTERN = r"^(?P<student_id>[^\W_](?:[^\W_]|[.@+-])*?)(?:_.*)?\.ipynb$"
MAX_SUBMISSION_BYTES = MAX_NOTEBOOK_BYTES
MAX_ARCHIVE_BYTES = 2 * 2**30
MAX_ARCHIVE_MEMBERS = 20_000
MAX_FOLDER_DEPTH = 8
_IGNORED = ("__MACOSX", ".ipynb_checkpoints")


class _NotCollected(Exception):
    """One entry of the download cannot be collected; the message says why (it is skipped, not fatal)."""


def collect(course: Course, assignment: str, source: Path, pattern: str = DEFAULT_PATTERN, log=print) -> dict:
    """Copy a folder (or .zip) of downloaded submissions into ``instructor/submitted``.

    Accepted layouts: notebooks directly in the folder, the student id taken
    from the file name by ``pattern`` (a regex with a ``student_id`` group;
    default: everything before the first ``_``), or one sub-folder per
    student id holding the notebook. Returns ``{"collected": [...], "skipped": [...]}``.

    Only regular files are read: symbolic links (wherever they point), FIFOs, devices and sockets are
    skipped and reported, and nothing is opened through a link, so nothing outside ``source`` is ever
    read. Each bad entry is skipped with its reason; the others are collected. Ids must match whole
    (``check_student_id``), are kept in NFC and never shortened.
    """
    spec = load_assignment(course.solutions, assignment, course.assignments)
    regex = re.compile(pattern)
    if "student_id" not in regex.groupindex:
        raise ValueError(f"the pattern {pattern!r} needs a named group (?P<student_id>...)")
    source = Path(source)
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="course-collect-") as tmp:
        if source.suffix == ".zip" and source.is_file():
            source = _safe_unzip(source, Path(tmp), skipped, assignment)
        if not source.is_dir():
            raise ValueError(f"{source} is neither a folder nor a .zip file of submissions")
        root_fd = os.open(source.resolve(), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            found = _find_submissions(root_fd, regex, pattern, skipped)
            collected = []
            for student, notebooks in sorted(found.items()):
                if len(notebooks) > 1:
                    named = [p for p in notebooks if p[-1] == spec.notebook]
                    if len(named) != 1:
                        shown = ", ".join("/".join(p) for p in notebooks[:4])
                        skipped.append(f"{student}: {len(notebooks)} notebooks ({shown}); keep only {spec.notebook}")
                        continue
                    notebooks = named
                try:
                    data, mtime = _read_regular(root_fd, notebooks[0], MAX_SUBMISSION_BYTES)
                except _NotCollected as err:
                    skipped.append(f"{'/'.join(notebooks[0])}: {err}")
                    continue
                dest = course.submission_dir(student, assignment)
                if dest.exists():
                    shutil.rmtree(dest)
                dest.mkdir(parents=True)
                (dest / spec.notebook).write_bytes(data)
                (dest / "timestamp.txt").write_text(utc_timestamp(mtime) + "\n")
                collected.append(student)
        finally:
            os.close(root_fd)
    log(f"collected {len(collected)} submission(s) of {assignment} into {course.submitted}")
    for line in skipped:
        log(f"  skipped {_printable(line)}")
    return {"collected": collected, "skipped": skipped}


def _printable(text: str) -> str:
    return clean_text(text).encode("unicode_escape" if not text.isprintable() else "utf-8").decode("utf-8")


def _kind(mode: int) -> str | None:
    """Why a file of this mode is not collected (None: a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "a symbolic link (only regular files are collected)"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file (a FIFO, device or socket)"


def _entries(dir_fd: int) -> list[tuple[str, int]]:
    """The entries of an open folder, sorted, with their own modes (links not followed), hidden ones left out."""
    out = []
    for name in sorted(os.listdir(dir_fd)):
        if name.startswith(".") or name in _IGNORED:
            continue
        try:
            out.append((name, os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode))
        except OSError:
            continue
    return out


def _open_folder(dir_fd: int, name: str) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


def _find_submissions(root_fd: int, regex, pattern: str, skipped: list[str]) -> dict[str, list[tuple[str, ...]]]:
    """Student id -> the notebooks found for them, as paths (tuples of names) below the source folder."""
    found: dict[str, list[tuple[str, ...]]] = {}
    for name, mode in _entries(root_fd):
        shown = _printable(name)
        if stat.S_ISDIR(mode):
            student = unicodedata.normalize("NFC", name)
            notebooks: list[tuple[str, ...]] = []
            try:
                fd = _open_folder(root_fd, name)
            except OSError as err:
                skipped.append(f"{shown}: cannot be opened ({err.strerror})")
                continue
            try:
                _notebooks_below(fd, (name,), notebooks, skipped, 1)
            finally:
                os.close(fd)
        elif name.endswith(".ipynb"):
            problem = _kind(mode)
            if problem:
                skipped.append(f"{shown}: {problem}")
                continue
            match = regex.search(unicodedata.normalize("NFC", name))
            if match is None or match.group("student_id") is None:
                skipped.append(f"{shown}: no student id matches {pattern!r}")
                continue
            student, notebooks = match.group("student_id"), [(name,)]
        else:
            problem = _kind(mode)
            skipped.append(f"{shown}: {problem}" if problem else f"{shown}: not a notebook")
            continue
        try:
            student = check_student_id(student)
        except ValueError as err:
            skipped.append(f"{shown}: {err}")
            continue
        if not notebooks:
            skipped.append(f"{shown}: contains no .ipynb file")
            continue
        found.setdefault(student, []).extend(notebooks)
    return found


def _notebooks_below(dir_fd: int, path: tuple[str, ...], found: list, skipped: list[str], depth: int) -> None:
    if depth > MAX_FOLDER_DEPTH:
        skipped.append(f"{_printable('/'.join(path))}: folders nested too deeply")
        return
    for name, mode in _entries(dir_fd):
        here = (*path, name)
        if stat.S_ISDIR(mode):
            try:
                fd = _open_folder(dir_fd, name)
            except OSError as err:
                skipped.append(f"{_printable('/'.join(here))}: cannot be opened ({err.strerror})")
                continue
            try:
                _notebooks_below(fd, here, found, skipped, depth + 1)
            finally:
                os.close(fd)
        elif name.endswith(".ipynb") or not stat.S_ISREG(mode):
            problem = _kind(mode)
            if problem:
                skipped.append(f"{_printable('/'.join(here))}: {problem}")
            else:
                found.append(here)


def _read_regular(root_fd: int, path: tuple[str, ...], limit: int) -> tuple[bytes, float]:
    """The bytes and mtime of the regular file ``path`` below ``root_fd``, never following a link.

    Each folder is opened with O_NOFOLLOW and the file is checked with lstat before it is opened
    (O_NOFOLLOW | O_NONBLOCK, so a FIFO swapped in cannot block), then again with fstat.
    """
    fds = []
    try:
        parent = root_fd
        for name in path[:-1]:
            parent = _open_folder(parent, name)
            fds.append(parent)
        problem = _kind(os.stat(path[-1], dir_fd=parent, follow_symlinks=False).st_mode)
        if problem:
            raise _NotCollected(problem)
        fd = os.open(path[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
        fds.append(fd)
        info = os.fstat(fd)
        problem = _kind(info.st_mode)
        if problem:
            raise _NotCollected(problem)
        if info.st_size > limit:
            raise _NotCollected(f"{info.st_size / 2**20:.0f} MB, more than the {limit // 2**20} MB the grader accepts")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise _NotCollected(f"more than the {limit // 2**20} MB the grader accepts")
        return b"".join(chunks), info.st_mtime
    except OSError as err:
        raise _NotCollected(f"cannot be read ({err.strerror or err})") from None
    finally:
        for fd in reversed(fds):
            os.close(fd)


def _member_parts(name: str) -> tuple[str, ...] | None:
    """The path of a zip member as folder names, or None if it is absolute or climbs out (zip-slip)."""
    name = name.replace("\\", "/")
    if name.startswith("/") or "\x00" in name or re.match(r"[A-Za-z]:", name):
        return None
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    return None if any(p == ".." for p in parts) else parts


def _safe_unzip(archive: Path, into: Path, skipped: list[str], assignment: str) -> Path:
    """Extract the regular files of ``archive`` into ``into``, skipping (and reporting) each unsafe member.

    Refused members: absolute or ``..`` paths (zip-slip), symbolic links and other special files,
    members over the notebook size limit, anything past 2 GB or 20,000 members in all. Only each
    member's declared size is ever read. Returns the folder to collect from: ``into``, or the archive's
    single top folder when that folder holds per-student folders (a "download all" archive).
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(f"{archive.name} is not a readable .zip file ({err})") from None
    with zf:
        total = 0
        infos = zf.infolist()
        if len(infos) > MAX_ARCHIVE_MEMBERS:
            skipped.append(f"{archive.name}: only the first {MAX_ARCHIVE_MEMBERS} of {len(infos)} members are read")
        for info in infos[:MAX_ARCHIVE_MEMBERS]:
            shown = f"{archive.name}:{_printable(info.filename)}"
            parts = _member_parts(info.filename)
            if not parts:
                if parts is None:
                    skipped.append(f"{shown}: an unsafe path (absolute or with ..)")
                continue
            mode = info.external_attr >> 16
            if info.is_dir():
                continue  # folders are made for the notebooks they hold
            if mode and stat.S_IFMT(mode) and not stat.S_ISREG(mode):
                skipped.append(f"{shown}: {_kind(mode)}")
                continue
            if not parts[-1].endswith(".ipynb") or parts[0] in _IGNORED or any(p.startswith(".") for p in parts):
                continue  # not a notebook: never extracted
            if info.file_size > MAX_SUBMISSION_BYTES:
                skipped.append(f"{shown}: more than the {MAX_SUBMISSION_BYTES // 2**20} MB the grader accepts")
                continue
            total += info.file_size
            if total > MAX_ARCHIVE_BYTES:
                skipped.append(f"{shown}: the archive unpacks to more than {MAX_ARCHIVE_BYTES // 2**30} GB")
                continue
            target = into.joinpath(*parts)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "xb") as dst:  # "x": two members, one path
                    shutil.copyfileobj(src, dst)  # the zip reader stops at the declared size
            except (OSError, zipfile.BadZipFile, ValueError, NotImplementedError, EOFError) as err:
                skipped.append(f"{shown}: cannot be extracted ({type(err).__name__})")
                target.unlink(missing_ok=True)
    entries = [p for p in into.iterdir() if not p.name.startswith(".") and p.name not in _IGNORED]
    if len(entries) == 1 and entries[0].is_dir() and _holds_student_folders(entries[0], assignment):
        return entries[0]
    return into


def _holds_student_folders(folder: Path, assignment: str) -> bool:
    """Is ``folder`` a course's "download all" wrapper, holding one sub-folder of notebooks per student?

    A single student's folder holds their notebook directly, or inside a folder named after the
    assignment (nbgrader's ``<student>/<assignment>/`` layout): that is the student, not a course.
    """
    return any(
        p.is_dir() and not p.is_symlink() and p.name != assignment and any(p.rglob("*.ipynb"))
        for p in folder.iterdir()
        if not p.name.startswith(".") and p.name not in _IGNORED
    )


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

            return clean(_grader_failure(spec, f"{type(err).__name__}: {err}", traceback.format_exc()))

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
                clean_text(
                    f"  {student:<20} {p['score']:6g} / {p['max_score']:g}  {p['status']:<8} {p['seconds']:6.1f} s"
                    + (f"  ({len(p['problems'])} problem(s): {p['problems'][-1][:80]})" if p["problems"] else "")
                )
            )
    crashed = sorted(s for s, r in results.items() if r["public"]["status"] == "grader-error")
    if crashed:
        log(
            f"GRADER ERRORS for {len(crashed)} submission(s): {', '.join(crashed)} -- the questions concerned scored 0 "
            f"for now; tracebacks in {course.autograded.parent / 'private' / assignment}"
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
        try:
            public, current = (
                _stored_result(course, assignment, student),
                scores(course, assignment, notebook_id, student),
            )
        except Exception as err:  # noqa: BLE001 - one unreadable result must not stop the others' rows
            log(f"  {clean_text(student)}: result not readable ({type(err).__name__}); row marked")
            rows.append(
                {"student_id": clean_text(student), "status": "unreadable", "problems": f"{type(err).__name__}"}
            )
            continue
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
            problems=" | ".join(str(p).replace("\n", " ")[:200] for p in public.get("problems", [])),
        )
        rows.append(row)
    with output.open("w", newline="", encoding="utf-8", errors="replace") as f:
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
        try:
            public = _stored_result(course, assignment, student)
            page = feedback_html.render(student, assignment, public, scores(course, assignment, notebook_id, student))
            out = course.feedback_dir(student, assignment)
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{notebook_id}.html"
            path.write_text(clean_text(page), encoding="utf-8")
        except Exception as err:  # noqa: BLE001 - one student's broken result must not stop the others' feedback
            log(f"  {clean_text(student)}: no feedback written ({type(err).__name__}: {clean_text(str(err))[:200]})")
            continue
        written.append(path)
    log(f"wrote feedback for {len(written)} student(s) into {course.feedback}")
    return written


def _stored_result(course: Course, assignment: str, student: str) -> dict:
    """A student's ``result.json``, every string cleaned (results written before this check may hold "\\ud800")."""
    return clean(json.loads((course.autograded_dir(student, assignment) / "result.json").read_text(encoding="utf-8")))


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
