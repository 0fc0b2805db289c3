"""Where things are: the course folders, read from the repository's ``nbgrader_config.py``.

nbgrader and this package share one configuration (``nbgrader_config.py`` at
the repository root), so ``nbgrader formgrader`` and ``python -m
course_grader`` see the same folders and the same gradebook.
"""

from __future__ import annotations

import functools
import os
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
CONFIG_NAME = "nbgrader_config.py"
MAX_STUDENT_ID = 100
STUDENT_ID_PUNCTUATION = "_.@+-"


def _id_character(char: str, first: bool) -> bool:
    """Letters (with their combining marks) and digits of any script; ``_ . @ + -`` after the first."""
    category = unicodedata.category(char)
    return category[0] in "LN" or (not first and (category[0] == "M" or char in STUDENT_ID_PUNCTUATION))


def load_nbgrader_config(root: Path):
    """The traitlets Config from ``root/nbgrader_config.py`` (empty if there is none)."""
    from traitlets.config import Config, PyFileConfigLoader

    if not (root / CONFIG_NAME).is_file():
        return Config()
    return PyFileConfigLoader(CONFIG_NAME, path=str(root)).load_config()


@dataclass(frozen=True)
class Course:
    """The course's folders (absolute paths) and gradebook URL."""

    root: Path
    solutions: Path
    assignments: Path
    submitted: Path
    autograded: Path
    feedback: Path
    db_url: str

    @classmethod
    def at(cls, root: Path | str | None = None) -> Course:
        """The course whose ``nbgrader_config.py`` is in ``root`` (default: the current folder if it
        has one, else the repository this package belongs to)."""
        if root is None:
            root = Path.cwd() if (Path.cwd() / CONFIG_NAME).is_file() else PACKAGE_ROOT
        root = Path(root).resolve()
        c = load_nbgrader_config(root).get("CourseDirectory", {})

        def folder(key: str, default: str) -> Path:
            return (root / c.get(key, default)).resolve()

        db_url = c.get("db_url") or f"sqlite:///{root / 'instructor' / 'gradebook.db'}"
        return cls(
            root,
            folder("source_directory", "solutions"),
            folder("release_directory", "assignments"),
            folder("submitted_directory", "instructor/submitted"),
            folder("autograded_directory", "instructor/autograded"),
            folder("feedback_directory", "instructor/feedback"),
            db_url,
        )

    def submission_dir(self, student: str, assignment: str) -> Path:
        return self.submitted / student / assignment

    def autograded_dir(self, student: str, assignment: str) -> Path:
        return self.autograded / student / assignment

    def feedback_dir(self, student: str, assignment: str) -> Path:
        return self.feedback / student / assignment

    def db_path(self) -> Path | None:
        return Path(self.db_url[len("sqlite:///") :]) if self.db_url.startswith("sqlite:///") else None


def check_student_id(student: str) -> str:
    """``student`` in NFC if it is usable as a student id (and as a folder name), else ValueError.

    Letters and digits of any script, then also ``_ . @ + -``; at most 100 characters, never
    truncated; the whole string must match (a trailing newline or space is refused).
    """
    if not isinstance(student, str):
        raise ValueError(f"{student!r} is not usable as a student id")
    normal = unicodedata.normalize("NFC", student)
    usable = bool(normal) and all(_id_character(c, i == 0) for i, c in enumerate(normal))
    if not usable or ".." in normal or len(normal) > MAX_STUDENT_ID:
        raise ValueError(
            f"{student!r} is not usable as a student id: use letters, digits and . _ - @ + "
            f"(at most {MAX_STUDENT_ID} characters, starting with a letter or digit)"
        )
    return normal


def nbgrader_environment() -> None:
    """nbgrader runs ``alembic`` from PATH when it creates a gradebook: make this interpreter's scripts visible."""
    scripts = str(Path(sys.executable).parent)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")


def open_gradebook(course: Course):
    """nbgrader's ``Gradebook`` of the course (use it in a ``with``), its database created first if new."""
    from nbgrader.api import Gradebook

    nbgrader_environment()
    create_gradebook(course)
    return Gradebook(course.db_url)


@functools.cache
def nbgrader_schema_revision() -> str:
    """The newest revision of nbgrader's database migrations, read from its alembic scripts in this process."""
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    return ScriptDirectory(ALEMBIC_DIR).get_current_head()


def create_gradebook(course: Course) -> None:
    """Create the course's gradebook if its database has no tables yet, exactly as ``nbgrader.api.Gradebook``
    does for a new database: nbgrader's tables, and an ``alembic_version`` table holding the newest migration.

    nbgrader looks that revision up with an ``alembic heads`` subprocess for every new database (about 3 s of
    CPU); :func:`nbgrader_schema_revision` reads the same scripts in-process (0.1 s, once per process). Once the
    tables exist, nbgrader (the grader's calls, formgrader, its command line) opens the database as its own.
    """
    from nbgrader.api import Base
    from sqlalchemy import create_engine, inspect, text

    path = course.db_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(course.db_url, future=True)
    try:
        with engine.begin() as conn:
            if inspect(conn).get_table_names():
                return
            Base.metadata.create_all(conn)
            conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            conn.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:revision)"),
                {"revision": nbgrader_schema_revision()},
            )
    finally:
        engine.dispose()
