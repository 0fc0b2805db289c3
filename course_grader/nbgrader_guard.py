"""Keep nbgrader's own grading tools from undoing ``course_grader``'s grading.

nbgrader's ``Autograde`` runs the visible tests where student code can patch them, unsandboxed, and with
``--force`` (which formgrader's per-student *Autograde* button always uses) first deletes the student's
``instructor/autograded/<student>/<assignment>/`` folder -- our ``result.json`` with it -- before writing its
own scores into the gradebook. Its ``GenerateFeedback`` overwrites our feedback pages with pages that show the
test cells. nbgrader 0.9.6 has no setting that switches either off (its ``pre_convert_hook`` runs only after
the folder is removed), so this course's ``nbgrader_config.py`` calls :func:`install`, which replaces the two
converters' ``start``:

- ``Autograde`` refuses before touching anything, naming the command to run instead (formgrader shows the
  message; ``nbgrader autograde`` exits with it);
- ``GenerateFeedback`` runs ``python -m course_grader feedback`` for the same assignment and student(s), so
  formgrader's *Generate Feedback* buttons write our pages (no hidden tests, no expected values) and
  *Release Feedback* hands those out.

nbgrader loads ``nbgrader_config.py`` when formgrader starts and again on every formgrader API request, and
every ``nbgrader`` command loads it, so the guard is in place wherever this course's configuration is used.
"""

from __future__ import annotations

import subprocess
import sys

GUARD_ATTRIBUTE = "_course_grader_guard"


def refused_autograde_message(assignment: str, student: str) -> str:
    who = "" if student in ("", "*", None) else f" --student {student}"
    return (
        "nbgrader's autograde is disabled for this course: it runs the tests where student code can change "
        "them and would replace the sandboxed grading (result files and gradebook scores). Grade with\n"
        f"    .venv/bin/python -m course_grader autograde {assignment}{who}\n"
        "from the course folder (see docs/instructors.md); then reload formgrader."
    )


def _refuse_autograde(self) -> None:
    from nbgrader.converters.base import NbGraderException

    message = refused_autograde_message(self.coursedir.assignment_id, self.coursedir.student_id)
    self.log.error(message)
    raise NbGraderException(message)


def _course_feedback(self) -> None:
    """``GenerateFeedback.start``: run this course's feedback command for the same assignment and student(s)."""
    from nbgrader.converters.base import NbGraderException

    assignment, student = self.coursedir.assignment_id, self.coursedir.student_id
    if not assignment or any(c in assignment for c in "*?["):
        raise NbGraderException("name one assignment: this course writes feedback with `course_grader feedback`")
    command = [sys.executable, "-m", "course_grader", "--root", str(self.coursedir.root), "feedback", assignment]
    if student and student != "*":
        command += ["--student", student]
    self.log.info("nbgrader's generate_feedback is replaced by: %s", " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True, cwd=self.coursedir.root, check=False)
    for line in (done.stdout + done.stderr).splitlines():
        self.log.info("%s", line)
    if done.returncode != 0:
        raise NbGraderException(f"course_grader feedback failed (exit code {done.returncode})")


def install() -> bool:
    """Replace ``Autograde.start`` and ``GenerateFeedback.start`` (idempotent). Returns True if installed now."""
    from nbgrader.converters import Autograde, GenerateFeedback

    if getattr(Autograde, GUARD_ATTRIBUTE, False):
        return False
    Autograde.start = _refuse_autograde
    GenerateFeedback.start = _course_feedback
    Autograde._course_grader_guard = True
    GenerateFeedback._course_grader_guard = True
    return True


def install_if_nbgrader_runs() -> None:
    """Called by ``nbgrader_config.py``: install the guard when nbgrader itself (an ``nbgrader`` command,
    formgrader) loads the configuration; ``course_grader``, which reads the file for its folders only,
    does not pay for importing nbgrader's converters."""
    if "nbgrader.apps" in sys.modules or "nbgrader.server_extensions" in sys.modules:
        install()
