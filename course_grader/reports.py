"""What comes after autograding: ``export`` (a CSV of scores), ``feedback`` (HTML to hand back), and
``validate``, a student's self-check before handing in.

Export and feedback read each student's stored ``result.json`` and the gradebook's scores (hand grading
included); nothing in one student's result can stop the others' rows or pages.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

from . import feedback as feedback_html
from .course import Course
from .gradebook import scores
from .grading import manual_cells, question_points
from .notebooks import load_submission
from .spec import load_assignment
from .untrusted import clean, clean_text


def export(course: Course, assignment: str, output: Path | None = None, log=print) -> Path:
    """Write one CSV row per graded student with per-question scores (hand-entered scores win).

    Columns: student_id, one per autograded question, one per written answer
    (empty while it waits for hand grading), total, max_score, status,
    ungraded (written answers still to grade), problems.
    """
    spec = load_assignment(course.solutions, assignment, course.assignments)
    points, manual = question_points(spec), manual_cells(spec)
    written = [m.grade_id for m in manual]
    max_score = f"{sum(points.values()) + sum(m.points for m in manual):g}"
    notebook_id = Path(spec.notebook).stem
    output = Path(output or course.root / "instructor" / f"{assignment}_grades.csv")
    output.parent.mkdir(parents=True, exist_ok=True)
    header = ["student_id", *points, *written, "total", "max_score", "status", "ungraded", "problems"]
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
            max_score=max_score,
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
    graded = _graded_students(course, assignment)
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


def _graded_students(course: Course, assignment: str) -> list[str]:
    """The students (sorted) with a stored result of ``assignment``."""
    return sorted(p.parent.parent.name for p in course.autograded.glob(f"*/{assignment}/result.json"))


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
