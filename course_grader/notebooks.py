"""Reading notebooks the grader cannot trust: submissions may be anything a student's file can be.

A submission is read as plain JSON with size limits and checked cell by cell;
nothing in it is executed here and nothing in its metadata (kernel, points,
grade ids, timeouts) is believed: points and the list of questions come from the
solution notebook, the kernel is always the grader's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .untrusted import clean, has_surrogate_escape

MAX_NOTEBOOK_BYTES = 50 * 2**20
MAX_CELLS = 2000


@dataclass(frozen=True)
class GradeCell:
    """A graded cell of the solution notebook: an autograded test cell or a hand-graded answer."""

    grade_id: str
    points: float
    cell_type: str
    manual: bool  # True: a written answer graded by hand (nbgrader solution + grade cell)
    source: str


@dataclass(frozen=True)
class Submission:
    """What the grader takes from a submitted notebook."""

    code_cells: list[tuple[int, str, str | None]]  # (index in the notebook, source, grade_id), in the student's order
    cells: list[dict]  # every cell, normalised: cell_type, source, grade_id (or None)
    problem: str | None = None  # set when the file is not a usable notebook
    notes: tuple[str, ...] = ()  # what the student should know about how it was read (e.g. cells left out)


def _source_text(raw) -> str | None:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        return "".join(raw)
    return None


def load_submission(path: Path) -> Submission:
    """Read ``path`` as a notebook; on any problem return an empty Submission whose ``problem`` says what is wrong."""
    try:
        size = path.stat().st_size
    except OSError as err:
        return Submission([], [], f"the file could not be read ({err.strerror})")
    if size > MAX_NOTEBOOK_BYTES:
        return Submission(
            [],
            [],
            f"the notebook is {size / 2**20:.0f} MB, more than the {MAX_NOTEBOOK_BYTES // 2**20} MB "
            "the grader accepts (clear the outputs before submitting)",
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Submission([], [], "the file is not UTF-8 text, so it is not a notebook (.ipynb) file")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        line = getattr(err, "lineno", None)
        where = f" near line {line}" if line else ""
        return Submission(
            [],
            [],
            f"the file is not valid notebook JSON{where} ({str(err)[:120]}); "
            "it was probably edited outside Jupyter or saved incompletely",
        )
    if has_surrogate_escape(raw):  # "\ud800" escapes: strings no file can hold, replaced once, here
        data = clean(data)
    if isinstance(data, dict) and "worksheets" in data:  # nbformat 3: convert, as Jupyter would
        try:
            data = json.loads(nbformat.writes(nbformat.reads(text, as_version=4)))
        except Exception as err:  # noqa: BLE001 - any conversion failure is the submission's problem
            return Submission([], [], f"an old-format notebook that could not be converted ({type(err).__name__})")
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return Submission([], [], "the file is JSON but not a notebook (there is no list of cells)")
    cells, code = [], []
    for index, cell in enumerate(data["cells"][:MAX_CELLS]):
        if not isinstance(cell, dict):
            continue
        source = _source_text(cell.get("source", ""))
        cell_type = cell.get("cell_type")
        if source is None or cell_type not in ("code", "markdown", "raw"):
            continue
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        nbgrader = metadata.get("nbgrader") if isinstance(metadata.get("nbgrader"), dict) else {}
        grade_id = nbgrader.get("grade_id") if isinstance(nbgrader.get("grade_id"), str) else None
        cells.append({"index": index, "cell_type": cell_type, "source": source, "grade_id": grade_id})
        if cell_type == "code" and source.strip():
            code.append((index, source, grade_id))
    if not cells:
        return Submission([], [], "the notebook has no cells")
    notes = ()
    if len(data["cells"]) > MAX_CELLS:
        notes = (
            f"the notebook has {len(data['cells'])} cells; the grader reads the first {MAX_CELLS} only, so cells "
            f"{MAX_CELLS + 1} to {len(data['cells'])} were neither run nor graded",
        )
    return Submission(code, cells, None, notes)


def grade_cells(notebook_path: Path) -> list[GradeCell]:
    """The graded cells of a solution (or released) notebook, in order, from its nbgrader metadata."""
    nb = nbformat.read(notebook_path, as_version=4)
    found = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            found.append(
                GradeCell(
                    meta["grade_id"],
                    float(meta.get("points", 0)),
                    cell.cell_type,
                    manual=bool(meta.get("solution")),
                    source=cell.source,
                )
            )
    return found


def answer_cells(submission: Submission, grade_id: str) -> list[dict]:
    """The submission's cells carrying ``grade_id`` (normally one; zero if deleted or its metadata was changed)."""
    return [c for c in submission.cells if c["grade_id"] == grade_id]
