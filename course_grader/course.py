"""Where things are: the course folders, read from the repository's ``nbgrader_config.py``.

nbgrader and this package share one configuration (``nbgrader_config.py`` at
the repository root), so ``nbgrader formgrader`` and ``python -m
course_grader`` see the same folders and the same gradebook.
"""

from __future__ import annotations

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
