"""The instructor guide's class workflow runs as typed (issue 13, item 6).

The first bash block of docs/instructors.md's "Running a class" section is run line by line, exactly as
written, in a throw-away copy of the course with this environment's interpreter as ``.venv/bin/python``
(a link to it would not do: the grading sandbox binds the real environment only); the download paths
(``~/Downloads/...``) point at a Canvas-style download and a class list built here. A line that fails,
or a command the guide names that is not run here, fails the test.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "instructors.md"
A1 = "a1_score_function"
NB = "a1_score_function.ipynb"


def workflow_commands() -> list[str]:
    text = GUIDE.read_text(encoding="utf-8")
    section = text[text.index("## Running a class") :]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_guide_commands_use_the_course_environment():
    text = GUIDE.read_text(encoding="utf-8")
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command = line.split("#")[0].strip()
            if command:
                assert command.startswith((".venv/bin/python ", "python3 course.py ")), command
    assert not re.search(r"`python (?!3)", text), "no bare `python` in the guide"


@pytest.mark.system  # nine course_grader commands and two sandboxed gradings: the system step runs it
def test_class_workflow_runs_as_typed(tmp_path):
    from course_grader.sandbox import probe_bubblewrap

    if not probe_bubblewrap().available:
        pytest.skip("autograde needs the grading sandbox")
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course)
    for folder in ("solutions", "assignments"):
        shutil.copytree(REPO / folder / A1, course / folder / A1, ignore=shutil.ignore_patterns("__pycache__"))
    downloads = tmp_path / "home" / "Downloads"
    downloads.mkdir(parents=True)
    (downloads / "class.csv").write_text(
        "id,name,email,lms_id\nanna,Anna Schmidt,anna@example.org,111\nben,Ben Ng,ben@example.org,222\n"
    )
    stub = (REPO / "assignments" / A1 / NB).read_bytes()
    with zipfile.ZipFile(downloads / "a1_submissions.zip", "w") as zf:  # Canvas's "Download Submissions"
        zf.writestr(f"schmidtanna_111_9001_{NB}", stub)
        zf.writestr(f"ngben_late_222_9002_{NB}", stub)
    env = dict(os.environ, HOME=str(tmp_path / "home"))
    commands = workflow_commands()
    ran = []
    for command in commands:
        argv = [str(downloads / Path(a).name) if a.startswith("~/Downloads/") else a for a in shlex.split(command)]
        if argv[:4] == [".venv/bin/python", "-m", "course_grader", "setup-sandbox"]:
            argv.append("--no-install")  # checks the same thing; never installs packages from a test
        if argv[0] == ".venv/bin/python":  # the course's environment, which is this one (found from the repository
            assert (REPO / argv[0]).exists() or not (REPO / ".venv").exists()  # root in the guide; here from its copy)
            argv[0] = sys.executable
        done = subprocess.run(argv, cwd=course, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        ran.append((command, done.stdout))
    named = {c.split()[3] for c in commands if c.startswith(".venv/bin/python -m course_grader")}
    assert {"roster", "release", "collect", "autograde", "export", "feedback"} <= named
    rows = {r["student_id"]: r for r in csv.DictReader((course / "instructor" / f"{A1}_grades.csv").open())}
    assert set(rows) == {"anna", "ben"} and rows["ben"]["name"] == "Ben Ng"
    canvas = list(csv.reader((course / "instructor" / f"{A1}_canvas.csv").open()))
    assert canvas[0][-1] == "A1 (123456)" and {r[1] for r in canvas[1:]} == {"111", "222"}
    assert (course / "instructor" / "feedback" / "anna" / A1 / "a1_score_function.html").is_file()
