"""What comes after autograding: ``export`` (a CSV of scores), ``feedback`` (HTML to hand back), and
``validate``, a student's self-check before handing in.

Export and feedback read each student's stored ``result.json`` and the gradebook's scores (hand grading
included); nothing in one student's result can stop the others' rows or pages.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from pathlib import Path

from . import feedback as feedback_html
from .course import Course
from .deadlines import load_settings, submission_time
from .gradebook import scores
from .grading import manual_cells, question_points
from .notebooks import load_submission
from .spec import load_assignment
from .untrusted import clean, clean_text


def export(course: Course, assignment: str, output: Path | None = None, log=print) -> Path:
    """Write one CSV row per graded student with per-question scores (hand-entered scores win).

    Columns: student_id, name (from the roster), one per autograded question, one per written answer
    (empty while it waits for hand grading), total, max_score, submitted (UTC), late ("yes" or empty),
    penalty (the fraction of the total taken off by the late policy), final (the total after it), status,
    flags (IMPORT ERROR, GRADER ERROR, NOT GRADED), ungraded (written answers still to grade), problems.
    """
    from .roster import load_roster

    roster = load_roster(course)
    settings = load_settings(course)
    spec = load_assignment(course.solutions, assignment, course.assignments)
    points, manual = question_points(spec), manual_cells(spec)
    written = [m.grade_id for m in manual]
    max_score = f"{sum(points.values()) + sum(m.points for m in manual):g}"
    notebook_id = Path(spec.notebook).stem
    output = Path(output or course.root / "instructor" / f"{assignment}_grades.csv")
    output.parent.mkdir(parents=True, exist_ok=True)
    header = [
        "student_id", "name", *points, *written, "total", "max_score", "submitted", "late", "penalty", "final",
        "status", "flags", "ungraded", "problems",
    ]  # fmt: skip
    rows = []
    for student in _graded_students(course, assignment):
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
        person = roster.by_id(student)
        row = {"student_id": student, "name": person.name if person else ""}
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
        submitted = submission_time(course, assignment, student)
        lateness = settings.lateness(assignment, student, submitted)
        row.update(
            total=f"{total:g}",
            max_score=max_score,
            submitted=f"{submitted:%Y-%m-%d %H:%M:%S}" if submitted else "",
            late="yes" if lateness.late else "",
            penalty=f"{lateness.penalty:g}" if lateness.late else "",
            final=f"{lateness.apply(total):g}",
            status=public["status"],
            flags="; ".join(feedback_html.failure_flags(public)),
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


LMS_FORMATS = ("canvas", "moodle")


def export_lms(
    course: Course,
    assignment: str,
    lms: str,
    output: Path | None = None,
    decimals: int = 2,
    column: str | None = None,
    log=print,
) -> Path:
    """Write the grade-import CSV of Canvas or Moodle: one row per graded student who has an LMS id in the
    roster, the grade being the ``final`` total of :func:`export` (late policy applied), rounded to
    ``decimals``.

    - ``canvas`` (Grades > Import): ``Student, ID, SIS User ID, SIS Login ID, Section, <column>`` -- ``ID``
      is Canvas's user id (the roster's lms_id); ``column`` should be the assignment's header as Canvas's
      own export writes it ("A1 (123456)") so that the grades land in the existing column.
    - ``moodle`` (the assignment's "Upload grading worksheet"): ``Identifier, Full name, Email address,
      Grade, Maximum Grade, Feedback comments`` -- ``Identifier`` is "Participant <lms_id>".

    Students without an LMS id, and written answers still waiting for hand grading, are reported.
    """
    import tempfile

    from .roster import load_roster

    if lms not in LMS_FORMATS:
        raise ValueError(f"--format must be one of {', '.join(LMS_FORMATS)}, got {lms!r}")
    if not 0 <= decimals <= 6:
        raise ValueError(f"--round takes 0 to 6 decimals, got {decimals}")
    roster = load_roster(course)
    if not roster:
        raise ValueError("an LMS export needs the roster (ids to LMS ids): run `course_grader roster CLASS.csv` first")
    with tempfile.TemporaryDirectory() as tmp:
        full = export(course, assignment, Path(tmp) / "grades.csv", log=lambda *a: None)
        rows = list(csv.DictReader(full.open(encoding="utf-8")))
    output = Path(output or course.root / "instructor" / f"{assignment}_{lms}.csv")
    output.parent.mkdir(parents=True, exist_ok=True)
    no_lms, pending, out = [], [], []
    for row in rows:
        person = roster.by_id(row["student_id"])
        if person is None or not person.lms_id:
            no_lms.append(row["student_id"])
            continue
        if row.get("ungraded"):
            pending.append(row["student_id"])
        try:
            grade = f"{round(float(row['final']), decimals):.{decimals}f}"
        except (KeyError, ValueError):
            no_lms.append(row["student_id"])
            continue
        notes = "; ".join(x for x in (row.get("flags"), "late" if row.get("late") else "") if x)
        if lms == "canvas":
            out.append([person.name, person.lms_id, "", "", "", grade])
        else:
            out.append([f"Participant {person.lms_id}", person.name, person.email, grade, row["max_score"], notes])
    header = (
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column or assignment]
        if lms == "canvas"
        else ["Identifier", "Full name", "Email address", "Grade", "Maximum Grade", "Feedback comments"]
    )
    with output.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(out)
    log(f"wrote {len(out)} {lms} grade(s) to {output}")
    if no_lms:
        log(f"  not exported (no LMS id in the roster, or not graded): {clean_text(', '.join(no_lms))}")
    if pending:
        log(f"  written answers still to grade by hand for: {clean_text(', '.join(pending))} (their grade is partial)")
    return output


def generate_feedback(course: Course, assignment: str, students: list[str] | None = None, log=print) -> list[Path]:
    """Write ``instructor/feedback/<student>/<assignment>/<notebook>.html`` for each graded student."""
    spec = load_assignment(course.solutions, assignment, course.assignments)
    settings = load_settings(course)
    notebook_id = Path(spec.notebook).stem
    graded = _graded_students(course, assignment)
    if students:
        graded = [s for s in graded if s in set(students)]
    written = []
    for student in graded:
        try:
            public = _stored_result(course, assignment, student)
            lateness = settings.lateness(assignment, student, submission_time(course, assignment, student))
            page = feedback_html.render(
                student, assignment, public, scores(course, assignment, notebook_id, student), lateness
            )
            out = course.feedback_dir(student, assignment)
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{notebook_id}.html"
            path.write_text(clean_text(page), encoding="utf-8")
            for name in ("timestamp.txt", "submission_secret.txt"):  # nbgrader's exchange (release_feedback) hands
                kept = course.submission_dir(student, assignment) / name  # the page back to its author with these
                if kept.is_file():
                    (out / name).write_bytes(kept.read_bytes())
        except Exception as err:  # noqa: BLE001 - one student's broken result must not stop the others' feedback
            log(f"  {clean_text(student)}: no feedback written ({type(err).__name__}: {clean_text(str(err))[:200]})")
            continue
        written.append(path)
    log(f"wrote feedback for {len(written)} student(s) into {course.feedback}")
    return written


def _graded_students(course: Course, assignment: str) -> list[str]:
    """The students (sorted) with a stored result of ``assignment``."""
    return sorted(p.parent.parent.name for p in course.autograded.glob(f"*/{assignment}/result.json"))


def _stored_result(course: Course, assignment: str, student: str) -> dict:
    """A student's ``result.json``, every string cleaned (results written before this check may hold "\\ud800")."""
    return clean(json.loads((course.autograded_dir(student, assignment) / "result.json").read_text(encoding="utf-8")))


_VALIDATE_CHILD = """
import json, sys
from nbgrader.apps.validateapp import ValidateApp
from nbgrader.validator import Validator
app = ValidateApp()
app.initialize([])  # this folder's nbgrader_config.py, as `nbgrader validate` reads it
validator = Validator(parent=app)
validator.validate_all = True  # every cell that raised, not only the test cells
print("\\n@@results@@" + json.dumps(validator.validate(sys.argv[1])))
"""
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _cell_report(entry: dict, log) -> None:
    source = entry.get("source", "").splitlines()
    shown = "\n".join("    " + line for line in source[:8]) + ("\n    ..." if len(source) > 8 else "")
    error = _ANSI.sub("", entry.get("raw_error", "")).strip().splitlines()
    log(shown)
    log("  -> " + "\n     ".join(error[-6:]) if error else "  -> (no output)")


def validate(notebook: Path, log=print) -> int:
    """A student's self-check: the notebook must be readable; nbgrader's validator runs it and every cell
    that failed is listed -- a failed import first (it leaves names undefined, so the NameErrors after it
    are its consequences), then the other failures in notebook order. Returns 1 if anything failed."""
    import subprocess

    from .course import nbgrader_environment

    submission = load_submission(Path(notebook))
    if submission.problem:
        log(f"{notebook}: {submission.problem}")
        return 1
    nbgrader_environment()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _VALIDATE_CHILD, str(notebook)], capture_output=True, text=True, check=False
    )
    took = f"(validation took {time.monotonic() - started:.0f} s)"
    marker = done.stdout.rfind("@@results@@")
    if done.returncode != 0 or marker < 0:
        log(done.stdout + done.stderr)
        log(f"{notebook}: could not be validated (exit code {done.returncode}) {took}")
        return 1
    results = json.loads(done.stdout[marker + len("@@results@@") :])
    if results.get("type_changed"):
        log(f"{notebook}: {len(results['type_changed'])} graded cell(s) changed type (code <-> text): undo that first")
        return 1
    if results.get("changed"):
        log(f"{notebook}: {len(results['changed'])} read-only test cell(s) were edited: restore them from the release")
        return 1
    failed = results.get("failed", [])
    imports = [f for f in failed if feedback_html.import_failures([{"error": _ANSI.sub("", f.get("raw_error", ""))}])]
    if imports:
        log(f"IMPORT FAILED in {len(imports)} cell(s) -- fix this first:")
        for entry in imports:
            _cell_report(entry, log)
        log("Everything that import should have defined is missing now: the NameErrors below may all come from it.\n")
    others = [f for f in failed if f not in imports]
    if others:
        log(f"{len(others)} other cell(s) failed:")
        for entry in others:
            _cell_report(entry, log)
    if failed:
        log(f"VALIDATION FAILED ON {len(failed)} CELL(S) {took}")
        return 1
    log(f"Success! Every cell ran and the visible tests pass {took}")
    return 0
