"""What an assignment's hidden tests declare, and how the grader finds them.

Each assignment is one folder ``solutions/<name>/`` holding the solution
notebook (nbgrader's source, with solution regions and visible tests),
``hidden_tests.py`` (the checks: never released, never in the sandbox) and
``drivers.py`` (public code that calls the student's functions: bound
read-only into the sandbox). ``hidden_tests.py`` defines::

    DRIVERS = load_drivers(__file__)         # the sibling drivers.py, as a module
    ASSIGNMENT = Assignment(
        notebook="a1_score_function.ipynb",
        cell_timeout=120,                    # seconds per student cell
        cell_budget=300,                     # seconds for all student cells together
        preload=("numpy", "torch", "course_utils"),  # imported before the first cell's clock starts
        forbidden=("course_utils.algorithms",),      # reference code the sandbox hides for this assignment
        questions=[Question(id=..., driver=DRIVERS.f, make_inputs=..., result=..., check=..., timeout=...), ...],
    )

A question's ``id`` is the ``grade_id`` of its (visible) test cell in the
notebook, whose nbgrader ``points`` are the question's points. Grading a
question takes four steps:

1. ``make_inputs(rng)`` -- in the grader: draws fresh inputs (a dict of plain
   JSON data), so no answer can be hard-coded from an earlier run or from
   feedback. Keys named in ``check_only`` (e.g. evaluation seeds) stay in the
   grader: the sandbox receives the other keys only, and only when the
   question's driver runs.
2. ``driver(inputs, h)`` -- in the sandbox, after the student's cells: a
   function of ``drivers.py`` that calls the student's functions and returns
   plain data. ``h.student.<name>`` is a notebook name (a clear error if it is
   missing), ``h.call(fn, ...)`` returns ``{"value": ...}`` or ``{"error": ...}``
   for one call, ``h.call_arrays(fn, ...)`` the same with the returned tensors
   packed as an .npz (see :class:`course_grader.runner.Helpers`). The driver
   is public: it contains no expected value and no check, and it runs in the
   student's process, so its output is untrusted.
3. ``result(inputs)`` -- the :mod:`~course_grader.schema` of what the driver
   returns (exact lengths, types, shapes). The returned data is parsed against
   it; a result that does not fit scores 0 as "malformed".
4. ``check(inputs, parsed)`` -- back in the grader, a process student code
   never touched: property checks on the typed values (agreement with closed
   forms, unbiasedness against exact enumeration, the variance a correct
   estimator has, evaluation in an environment the grader controls),
   returning a :class:`~course_grader.checks.Verdict`.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from .schema import Schema

HIDDEN_TESTS = "hidden_tests.py"
DRIVERS = "drivers.py"


@dataclass(frozen=True)
class Question:
    """One autograded question (see the module docstring for the three steps)."""

    id: str
    driver: Callable
    make_inputs: Callable[[Any], dict]
    result: Callable[[dict], Schema]
    check: Callable[[dict, Any], Any]
    timeout: float = 60.0
    title: str = ""
    check_only: tuple[str, ...] = ()

    def driver_inputs(self, inputs: dict) -> dict:
        """What the sandbox receives: the inputs without the check-only keys."""
        return {key: value for key, value in inputs.items() if key not in self.check_only}


@dataclass(frozen=True)
class Assignment:
    """An assignment's grading specification, as declared in its ``hidden_tests.py``."""

    notebook: str
    questions: list[Question]
    cell_timeout: float = 120.0
    cell_budget: float = 300.0
    preload: tuple[str, ...] = ("numpy", "torch", "course_utils")
    forbidden: tuple[str, ...] = ()
    name: str = ""
    source_dir: Path | None = None
    release_dir: Path | None = None
    drivers: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def time_budget(self) -> float:
        """The most one submission may take: its cells' budget plus every question's time limit."""
        return self.cell_budget + sum(q.timeout for q in self.questions)

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


def _import_file(path: Path, name: str) -> ModuleType:
    """Import the Python file ``path`` as module ``name``, writing no bytecode (solutions/ stays free of __pycache__)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # keep solutions/ free of __pycache__
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


def load_drivers(hidden_tests_file: str | Path) -> ModuleType:
    """The ``drivers.py`` beside ``hidden_tests_file``, imported as a module of its own."""
    path = Path(hidden_tests_file).with_name(DRIVERS)
    if not path.is_file():
        raise SpecError(f"{path} does not exist: every assignment's drivers live in its {DRIVERS}")
    return _import_file(path, f"_course_drivers_{path.parent.name}")


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
    module = _import_file(path, f"_course_hidden_tests_{name}")
    assignment = getattr(module, "ASSIGNMENT", None)
    if not isinstance(assignment, Assignment):
        raise SpecError(f"{path} must define ASSIGNMENT = course_grader.spec.Assignment(...)")
    if not (folder / assignment.notebook).is_file():
        raise SpecError(f"{path} names notebook {assignment.notebook!r}, which is not in {folder}")
    ids = [q.id for q in assignment.questions]
    if len(set(ids)) != len(ids):
        raise SpecError(f"{path}: question ids must be unique, got {ids}")
    drivers = (folder / DRIVERS).resolve()
    for q in assignment.questions:
        module = sys.modules.get(getattr(q.driver, "__module__", ""))
        if getattr(module, "__file__", None) is None or Path(module.__file__).resolve() != drivers.resolve():
            raise SpecError(f"{path}: question {q.id}'s driver must be a function of {drivers}")
        if getattr(module, q.driver.__name__, None) is not q.driver:
            raise SpecError(f"{path}: question {q.id}'s driver {q.driver.__name__} is not a top-level function")
    release_dir = Path(release_root or Path(solutions_dir).parent / "assignments") / name
    return Assignment(
        assignment.notebook,
        list(assignment.questions),
        assignment.cell_timeout,
        assignment.cell_budget,
        tuple(assignment.preload),
        tuple(assignment.forbidden),
        name,
        folder,
        release_dir,
        drivers,
        dict(assignment.extra),
    )
