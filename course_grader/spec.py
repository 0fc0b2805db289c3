"""What an assignment's hidden tests declare, and how the grader finds them.

Each assignment is one folder ``solutions/<name>/`` holding the solution
notebook (nbgrader's source, with solution regions and visible tests) and
``hidden_tests.py``, which is never released (``nbgrader_config.py`` ignores
it) and never enters the sandbox. ``hidden_tests.py`` defines::

    ASSIGNMENT = Assignment(
        notebook="a1_score_function.ipynb",
        cell_timeout=120,                       # seconds per student cell
        preload=("numpy", "torch", "course_utils"),  # imported before the first cell's clock starts
        questions=[Question(id=..., driver=..., make_inputs=..., check=..., timeout=...), ...],
    )

A question's ``id`` is the ``grade_id`` of its (visible) test cell in the
notebook, whose nbgrader ``points`` are the question's points. Grading a
question takes three steps, in three places:

1. ``make_inputs(rng)`` -- in the grader: draws fresh inputs (plain JSON data),
   so no answer can be hard-coded from an earlier run or from feedback.
2. ``driver`` -- in the sandbox, after the student's cells: source code of a
   function ``drive(inputs, h)`` that calls the student's functions and returns
   plain data. ``h.student.<name>`` is a notebook name (a clear error if it is
   missing), ``h.call(fn, ...)`` returns ``{"value": ...}`` or ``{"error": ...}``
   for one call, ``h.run(fn, ...)`` returns ``(result, error)`` and
   ``h.arrays(mapping)`` packs tensors (see :class:`course_grader.runner.Helpers`).
   The driver is public: it contains no expected value and no check, and it
   runs in the student's process, so its output is treated as untrusted.
3. ``check(inputs, result)`` -- back in the grader, a process student code never
   touched: property checks on the returned numbers (agreement with closed
   forms, unbiasedness against exact enumeration, invariants), returning a
   :class:`~course_grader.checks.Verdict`.

Training questions work the same way: the driver returns ``h.arrays(net.state_dict())``
(an .npz blob, no pickle) and ``check`` loads it into the grader's own network
class (:func:`course_grader.checks.load_state_dict`) and evaluates it in an
environment the grader controls.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HIDDEN_TESTS = "hidden_tests.py"


@dataclass(frozen=True)
class Question:
    """One autograded question (see the module docstring for the three steps)."""

    id: str
    driver: str
    make_inputs: Callable[[Any], Any]
    check: Callable[[Any, Any], Any]
    timeout: float = 60.0
    title: str = ""


@dataclass(frozen=True)
class Assignment:
    """An assignment's grading specification, as declared in its ``hidden_tests.py``."""

    notebook: str
    questions: list[Question]
    cell_timeout: float = 120.0
    preload: tuple[str, ...] = ("numpy", "torch", "course_utils")
    name: str = ""
    source_dir: Path | None = None
    release_dir: Path | None = None
    extra: dict = field(default_factory=dict)

    def question(self, question_id: str) -> Question:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(question_id)


class SpecError(ValueError):
    """The assignment's folder or hidden tests are not usable; the message says what to fix."""


def assignment_names(solutions_dir: Path) -> list[str]:
    """Every assignment in ``solutions/``: folders holding a hidden_tests.py."""
    return sorted(p.parent.name for p in solutions_dir.glob(f"*/{HIDDEN_TESTS}"))


def load_assignment(solutions_dir: Path, name: str, release_root: Path | None = None) -> Assignment:
    """Import ``solutions/<name>/hidden_tests.py`` and return its ``ASSIGNMENT``.

    ``release_root`` is the released-stubs folder (default: ``assignments/``
    beside ``solutions/``); the stubs tell an unanswered written question
    from an answered one.
    """
    folder = solutions_dir / name
    path = folder / HIDDEN_TESTS
    if not path.is_file():
        known = ", ".join(assignment_names(solutions_dir)) or "none"
        raise SpecError(f"no assignment {name!r}: {path} does not exist (assignments: {known})")
    module_name = f"_course_hidden_tests_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # keep solutions/ free of __pycache__
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    assignment = getattr(module, "ASSIGNMENT", None)
    if not isinstance(assignment, Assignment):
        raise SpecError(f"{path} must define ASSIGNMENT = course_grader.spec.Assignment(...)")
    if not (folder / assignment.notebook).is_file():
        raise SpecError(f"{path} names notebook {assignment.notebook!r}, which is not in {folder}")
    ids = [q.id for q in assignment.questions]
    if len(set(ids)) != len(ids):
        raise SpecError(f"{path}: question ids must be unique, got {ids}")
    release_dir = Path(release_root or Path(solutions_dir).parent / "assignments") / name
    return Assignment(
        assignment.notebook,
        list(assignment.questions),
        assignment.cell_timeout,
        tuple(assignment.preload),
        name,
        folder,
        release_dir,
        dict(assignment.extra),
    )
