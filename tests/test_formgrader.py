"""formgrader cannot undo the course's grading (issue 13, item 1).

A real Jupyter server with nbgrader's formgrader runs in a throw-away copy of the course, configured as
`python3 course.py lab --instructor` configures it (.jupyter/common) and reading the course's
nbgrader_config.py. The test sends the HTTP requests formgrader's buttons send -- per-student Autograde,
per-student and per-assignment Generate Feedback -- and checks that the stored result, the autograded
notebook, the gradebook and the feedback page are what course_grader wrote, byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from course_grader.autograding import _store
from course_grader.course import Course
from course_grader.grading import GradeResult, ManualAnswer, QuestionResult, prepare
from course_grader.nbgrader_guard import refused_autograde_message
from course_grader.release import ensure_in_gradebook
from course_grader.reports import generate_feedback
from course_grader.spec import load_assignment

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "a1_score_function"
STUDENT = "anna"


def graded_course(root: Path) -> Course:
    """A course copy with one submission graded by course_grader (full marks) and its feedback written."""
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    for folder in ("solutions", "assignments"):
        shutil.copytree(
            REPO / folder / ASSIGNMENT, root / folder / ASSIGNMENT, ignore=shutil.ignore_patterns("__pycache__")
        )
    course = Course.at(root)
    spec = load_assignment(course.solutions, ASSIGNMENT, course.assignments)
    prepared = prepare(spec)
    submitted = course.submission_dir(STUDENT, ASSIGNMENT)
    submitted.mkdir(parents=True)
    shutil.copy(course.solutions / ASSIGNMENT / spec.notebook, submitted / spec.notebook)
    (submitted / "timestamp.txt").write_text("2026-11-30 10:00:00.000000 UTC\n")
    ensure_in_gradebook(course, ASSIGNMENT)
    result = GradeResult(
        ASSIGNMENT,
        "graded",
        {
            q.id: QuestionResult(q.title or q.id, prepared.points[q.id], prepared.points[q.id], "passed", ["✓ all"])
            for q in spec.questions
        },
        {m.grade_id: ManualAnswer(m.points, "unanswered", None) for m in prepared.manual},
        sandbox="test",
    )
    _store(course, spec, STUDENT, result, course.assignments / ASSIGNMENT / spec.notebook, Path(spec.notebook).stem)
    assert generate_feedback(course, ASSIGNMENT, log=lambda *a: None)
    return course


def snapshot(course: Course) -> dict:
    """Every file course_grader wrote for the student, and the gradebook's rows."""
    files = {}
    for folder in (course.autograded, course.feedback, course.root / "instructor" / "private"):
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                files[str(path.relative_to(course.root))] = path.read_bytes()
    with sqlite3.connect(course.db_path()) as db:
        rows = sorted(line for line in db.iterdump() if line.startswith("INSERT"))
    return {"files": files, "gradebook": rows}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, token: str) -> dict:
    request = urllib.request.Request(url, data=b"", method="POST", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


@pytest.fixture
def formgrader(tmp_path):
    root = tmp_path / "course"
    root.mkdir()
    course = graded_course(root)
    port, token = free_port(), "formgrader-test-token"
    env = dict(
        os.environ,
        JUPYTER_CONFIG_PATH=str(REPO / ".jupyter" / "common"),  # what `course.py lab --instructor` uses
        JUPYTER_CONFIG_DIR=str(tmp_path / "user-config"),  # no personal configuration
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
    )
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "jupyter", "server", "--no-browser", f"--port={port}",
                "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                "--allow-root",
            ],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base}/formgrader/api/assignments?token={token}", timeout=5) as response:
                assignments = json.loads(response.read())
            break
        except (OSError, urllib.error.HTTPError):
            if process.poll() is not None or time.monotonic() > deadline:
                os.killpg(process.pid, 9)
                pytest.fail(f"no formgrader on port {port}:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
    assert [a["name"] for a in assignments] == [ASSIGNMENT], "formgrader serves this course's gradebook"
    yield course, base, token
    os.killpg(process.pid, 15)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()


@pytest.mark.system  # a real Jupyter server: the system step of `python3 course.py test` runs it
def test_formgrader_buttons_leave_course_grader_results_alone(formgrader):
    course, base, token = formgrader
    before = snapshot(course)
    assert any(name.endswith("result.json") for name in before["files"])
    assert any(name.endswith(".html") for name in before["files"])

    # formgrader's per-student Autograde button: refused, with the command to run instead; nothing touched
    reply = post(f"{base}/formgrader/api/submission/{ASSIGNMENT}/{STUDENT}/autograde", token)
    assert reply["success"] is False
    assert refused_autograde_message(ASSIGNMENT, STUDENT).splitlines()[1].strip() in reply["log"] + reply["error"]
    assert snapshot(course) == before

    # Generate Feedback (one student, then the whole assignment): course_grader's pages, rewritten identically
    feedback = course.feedback_dir(STUDENT, ASSIGNMENT) / "a1_score_function.html"
    feedback.unlink()
    reply = post(f"{base}/formgrader/api/assignment/{ASSIGNMENT}/{STUDENT}/generate_feedback", token)
    assert reply["success"] is True, reply
    assert "course_grader" in reply["log"]
    assert snapshot(course) == before, "the page is course_grader's (no test source), the same bytes as before"
    reply = post(f"{base}/formgrader/api/assignment/{ASSIGNMENT}/generate_feedback", token)
    assert reply["success"] is True, reply
    assert snapshot(course) == before
    page = feedback.read_text()
    assert "hidden_tests" not in page and "autograder tests" not in page.lower()

    # formgrader still reads the scores course_grader recorded
    with urllib.request.urlopen(f"{base}/formgrader/api/submissions/{ASSIGNMENT}?token={token}") as response:
        (submission,) = json.loads(response.read())
    assert submission["student"] == STUDENT and submission["autograded"] is True
    autograded_points = sum(prepare(load_assignment(course.solutions, ASSIGNMENT, course.assignments)).points.values())
    assert submission["score"] == autograded_points > 0, "full marks on the autograded questions, as recorded"


def test_nbgrader_autograde_command_is_refused_too(tmp_path):
    course = graded_course(tmp_path)
    before = snapshot(course)
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT, "--student", STUDENT, "--force"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "user-config")),
    )
    assert done.returncode != 0
    assert "course_grader autograde" in done.stdout + done.stderr
    assert snapshot(course) == before
