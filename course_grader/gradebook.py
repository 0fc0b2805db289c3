"""Scores into nbgrader's gradebook, and back out: formgrader shows them and takes the hand grading.

Autograded questions get ``auto_score``; a written answer that was left as the
stub gets 0 automatically; every other written answer is flagged
``needs_manual_grade`` for formgrader. A score an instructor entered by hand
(``manual_score``) is never overwritten by a later autograde run.
"""

from __future__ import annotations

import datetime
import warnings

from .course import Course, open_gradebook


def record(course: Course, assignment: str, notebook: str, student: str, public: dict, timestamp: str | None) -> None:
    """Write one student's graded result (the ``public`` part of :func:`grade_submission`) into the gradebook."""
    from sqlalchemy.exc import SAWarning

    with open_gradebook(course) as gb, warnings.catch_warnings():
        # nbgrader's add_submission triggers harmless autoflush warnings with SQLAlchemy 2 (nbgrader's own
        # autograde shows them too); they would bury the grading summary.
        warnings.simplefilter("ignore", SAWarning)
        gb.update_or_create_student(student)
        kwargs = {"timestamp": timestamp} if timestamp else {}
        gb.update_or_create_submission(assignment, student, **kwargs)
        for grade_id, entry in public["questions"].items():
            grade = gb.find_grade(grade_id, notebook, assignment, student)
            grade.auto_score = float(entry["score"])
            grade.needs_manual_grade = False
        for grade_id, entry in public["manual"].items():
            grade = gb.find_grade(grade_id, notebook, assignment, student)
            if entry["status"] == "unanswered":
                grade.auto_score, grade.needs_manual_grade = 0.0, False
            else:  # answered (or the cell went missing: a person should look)
                grade.auto_score, grade.needs_manual_grade = None, grade.manual_score is None
        gb.db.commit()


def set_due_date(course: Course, assignment: str, due) -> None:
    """The assignment's due date in the gradebook (formgrader then shows late submissions); None clears it."""
    with open_gradebook(course) as gb:
        entry = gb.find_assignment(assignment)
        naive = due.astimezone(datetime.timezone.utc).replace(tzinfo=None) if due is not None else None
        if entry.duedate != naive:
            entry.duedate = naive
            gb.db.commit()


def scores(course: Course, assignment: str, notebook: str, student: str) -> dict[str, dict]:
    """Every grade cell's current score for one student: ``{grade_id: {score, max_score, graded, comment}}``.

    ``score`` is the hand-entered score if there is one, else the automatic
    one; ``graded`` is False while a written answer waits for hand grading.
    """
    from nbgrader.api import MissingEntry

    out = {}
    with open_gradebook(course) as gb:
        try:
            submission_nb = gb.find_submission_notebook(notebook, assignment, student)
        except MissingEntry:
            return {}
        for grade in submission_nb.grades:
            name = grade.cell.name
            waiting = grade.manual_score is None and (grade.auto_score is None or grade.needs_manual_grade)
            comment = None
            try:
                c = gb.find_comment(name, notebook, assignment, student)
                comment = c.manual_comment or None
            except MissingEntry:
                pass
            out[name] = {
                "score": None if waiting else float(grade.score),
                "max_score": float(grade.max_score),
                "graded": not waiting,
                "comment": comment,
            }
    return out


def utc_timestamp(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
