"""Generate the released stubs from ``solutions/`` with nbgrader, and check what comes out.

nbgrader's ``generate_assignment`` does the work (clear solutions, lock test
cells, checksums, gradebook entries); this module runs it with the course's
``nbgrader_config.py``, then checks the release: no hidden tests copied, no
solution or mark-scheme text left, every code cell still valid Python.
``check_release`` regenerates into a temporary folder and compares with the
committed ``assignments/``, which is what CI runs.
"""

from __future__ import annotations

import ast
import filecmp
import logging
import re
import shutil
import tempfile
from pathlib import Path

import nbformat

from .course import Course, create_gradebook, load_nbgrader_config, nbgrader_environment, open_gradebook
from .spec import HIDDEN_TESTS

LEAK_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "BEGIN MARK SCHEME", "Model answer")


class ReleaseError(RuntimeError):
    """Generating or checking a release failed; the message says what to fix."""


def generate(course: Course, assignment: str, release_root: Path | None = None, database: bool = True) -> Path:
    """Run nbgrader generate_assignment for ``assignment``; return the release folder.

    ``release_root`` (default: the course's ``assignments/``) can point
    elsewhere, e.g. a temporary folder for comparisons; with ``database`` the
    assignment is also registered in the instructor gradebook.
    """
    from nbgrader.converters import GenerateAssignment
    from nbgrader.converters.base import NbGraderException
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import SaveCells

    if not (course.solutions / assignment).is_dir():
        raise ReleaseError(f"there is no assignment {assignment!r} in {course.solutions}")
    nbgrader_environment()
    if database:
        create_gradebook(course)
    config = load_nbgrader_config(course.root)
    config.CourseDirectory.root = str(course.root)
    config.CourseDirectory.assignment_id = assignment
    if release_root is not None:
        config.CourseDirectory.release_directory = str(Path(release_root).resolve())
    config.CourseDirectory.db_url = course.db_url
    config.GenerateAssignment.no_database = not database
    if not database:  # SaveCells only records the cells in the gradebook; it does not change the notebook
        config.GenerateAssignment.preprocessors = [
            p for p in GenerateAssignment.class_traits()["preprocessors"].default() if p is not SaveCells
        ]
    config.GenerateAssignment.force = True
    log = logging.getLogger("course_grader.nbgrader")
    log.setLevel(logging.ERROR)
    coursedir = CourseDirectory(config=config)
    converter = GenerateAssignment(coursedir=coursedir, config=config, log=log)
    try:
        converter.start()
    except NbGraderException as err:
        raise ReleaseError(f"nbgrader could not generate {assignment!r}: {err}") from None
    out = Path(release_root or course.assignments).resolve() / assignment
    check_released_folder(out)
    return out


def check_released_folder(folder: Path) -> None:
    """Refuse a release that leaks hidden tests or solutions, or whose stubs are not valid Python."""
    problems = []
    if (folder / HIDDEN_TESTS).exists() or list(folder.rglob(HIDDEN_TESTS)):
        problems.append(f"{HIDDEN_TESTS} was copied into the release (check CourseDirectory.ignore)")
    for path in sorted(folder.rglob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for index, cell in enumerate(nb.cells):
            for marker in LEAK_MARKERS:
                if marker in cell.source:
                    problems.append(f"{path.name} cell {index} still contains {marker!r}")
            if cell.cell_type == "code":
                try:
                    ast.parse(re.sub(r"^\s*[%!].*$", "", cell.source, flags=re.M))
                except SyntaxError as err:
                    problems.append(f"{path.name} cell {index} is not valid Python ({err.msg}, line {err.lineno})")
    if problems:
        raise ReleaseError("the release is not safe to hand out:\n- " + "\n- ".join(problems))


def release(course: Course, assignments: list[str], log=print) -> list[Path]:
    """Regenerate ``assignments/<name>`` for each name (and register them in the instructor gradebook)."""
    out = []
    for name in assignments:
        folder = generate(course, name)
        log(f"released {name}: {', '.join(p.name for p in sorted(folder.iterdir()))} -> {folder}")
        out.append(folder)
    return out


def release_differences(course: Course, assignment: str) -> list[str]:
    """Regenerate ``assignment`` in a temporary folder; list how it differs from the committed release."""
    with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
        fresh = generate(course, assignment, release_root=Path(tmp) / "release", database=False)
        committed = course.assignments / assignment
        if not committed.is_dir():
            return [f"{committed} does not exist: run `python -m course_grader release {assignment}` and commit it"]
        return _compare(filecmp.dircmp(committed, fresh), Path(assignment))


def _compare(cmp: filecmp.dircmp, prefix: Path) -> list[str]:
    found = [f"{prefix / name} is committed but not generated" for name in cmp.left_only]
    found += [f"{prefix / name} is generated but not committed" for name in cmp.right_only]
    for name in cmp.common_files:
        if (Path(cmp.left) / name).read_bytes() != (Path(cmp.right) / name).read_bytes():
            found.append(f"{prefix / name} differs from a fresh release")
    for name, sub in cmp.subdirs.items():
        found += _compare(sub, prefix / name)
    return found


def ensure_in_gradebook(course: Course, assignment: str) -> None:
    """Make sure the gradebook knows the assignment's notebooks and grade cells (generate a release
    into a throw-away folder if it does not: the committed stubs are left alone)."""
    from nbgrader.api import MissingEntry

    with open_gradebook(course) as gb:
        try:
            if gb.find_assignment(assignment).notebooks:
                return
        except MissingEntry:
            pass
    with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
        generate(course, assignment, release_root=Path(tmp))
        shutil.rmtree(tmp, ignore_errors=True)
