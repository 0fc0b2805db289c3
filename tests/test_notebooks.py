"""Every notebook is stored clean and every lecture notebook follows the course skeleton.

The skeleton (see templates/lecture_template.ipynb): title and "After this
notebook you can" goals with the key equation -> one setup cell with the
visible fast-mode switch -> sections -> Summary -> Exercises -> References.
nbval (configured in pyproject.toml) separately runs each notebook top to bottom.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import nbformat
import pytest

from course_utils.lab import stored_language_info

ROOT = Path(__file__).resolve().parent.parent
LECTURE_NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TEMPLATE = ROOT / "templates" / "lecture_template.ipynb"
FOLDERS = ("notebooks", "templates", "solutions", "assignments")


def committed_notebooks() -> dict[Path, bytes | None]:
    """Each notebook as it will be committed: its staged (git index) bytes, so that a student who saves an
    executed notebook in the working copy breaks nothing. Outside a git checkout: the files themselves (None)."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-s", "-z", "--", *(f"{folder}/*.ipynb" for folder in FOLDERS)],
            cwd=ROOT, capture_output=True, check=True, timeout=60,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return {p: None for folder in FOLDERS for p in sorted((ROOT / folder).rglob("*.ipynb"))}
    blobs = {}
    for entry in filter(None, listing.split(b"\0")):
        meta, name = entry.split(b"\t", 1)
        blob = meta.split()[1].decode()
        blobs[ROOT / name.decode()] = subprocess.run(
            ["git", "cat-file", "blob", blob], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout
    return blobs


COMMITTED = committed_notebooks()
ALL_NOTEBOOKS = sorted(COMMITTED)
KERNEL_NAME = "drl-course"
FINAL_SECTIONS = ["Summary", "Exercises", "References"]


def ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def skeleton_problems(nb: nbformat.NotebookNode) -> list[str]:
    """Everything in ``nb`` that departs from the lecture skeleton, as readable sentences."""
    problems = []
    cells = nb.cells
    if not cells or cells[0].cell_type != "markdown" or not cells[0].source.startswith("# "):
        return ["the first cell must be a markdown cell starting with the '# ' title"]
    intro = cells[0].source
    goals = re.search(r"After this notebook you can\**\s*\n((?:\s*[-*] .+\n?)+)", intro)
    if not goals:
        problems.append("the first cell needs an 'After this notebook you can' list of goals")
    elif not 3 <= len(re.findall(r"^\s*[-*] ", goals.group(1), flags=re.M)) <= 5:
        problems.append("'After this notebook you can' should have 3 to 5 bullets")
    if "$$" not in intro:
        problems.append("the first cell should state the key equation as a display formula ($$ ... $$)")

    code_cells = [i for i, c in enumerate(cells) if c.cell_type == "code"]
    if not code_cells:
        return problems + ["there is no code cell"]
    setup = cells[code_cells[0]].source
    if not re.search(r"^FAST = fast_mode\(\)", setup, flags=re.M):
        problems.append("the first code cell (setup) must show the switch on its own line: FAST = fast_mode()")
    if "notebook_setup(seed=" not in setup:
        problems.append("the setup cell must call notebook_setup(seed=...)")
    if not re.search(r"^SEED = course_seed\(\d+\)", setup, flags=re.M):
        problems.append("the setup cell must set SEED = course_seed(N), the seed COURSE_SEED can override")
    for i in code_cells[1:]:
        if "fast_mode()" in cells[i].source or "notebook_setup(" in cells[i].source:
            problems.append(f"cell {i}: only the setup cell may read the fast-mode switch or call notebook_setup")
    for i in code_cells:
        if "sys.path" in cells[i].source:
            problems.append(f"cell {i}: import course_utils as an installed package, not via sys.path")

    headings = [
        (i, m.group(1).strip())
        for i, c in enumerate(cells)
        if c.cell_type == "markdown"
        for m in re.finditer(r"^## (.+)$", c.source, flags=re.M)
    ]
    titles = [t for _, t in headings]
    if titles[-3:] != FINAL_SECTIONS:
        problems.append(f"the last three sections must be {FINAL_SECTIONS}, found {titles[-3:]}")
    body = [(i, t) for i, t in headings if t not in FINAL_SECTIONS and t != "Setup"]
    if not body:
        problems.append("there are no content sections between the setup cell and the summary")
    elif body[0][0] < code_cells[0]:
        problems.append("the setup cell must come before the first content section")

    markdown_share = sum(c.cell_type == "markdown" for c in cells) / len(cells)
    if markdown_share < 0.35:
        problems.append(f"only {markdown_share:.0%} of cells are prose; explain each step (aim for about half)")
    return problems


def test_there_are_lecture_notebooks():
    assert LECTURE_NOTEBOOKS, "notebooks/ holds no .ipynb files"
    assert TEMPLATE.is_file()


@pytest.mark.parametrize("path", LECTURE_NOTEBOOKS, ids=ids(LECTURE_NOTEBOOKS))
def test_lecture_notebook_name(path):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), f"{path.name}: name lecture notebooks NN_topic.ipynb"


@pytest.mark.parametrize("path", [*LECTURE_NOTEBOOKS, TEMPLATE], ids=ids([*LECTURE_NOTEBOOKS, TEMPLATE]))
def test_lecture_notebook_follows_the_skeleton(path):
    problems = skeleton_problems(nbformat.read(path, as_version=4))
    assert not problems, f"{path.name} departs from the skeleton:\n- " + "\n- ".join(problems)


def storage_problems(path: Path, data: bytes | None = None) -> list[str]:
    """What is wrong with how ``path`` is stored (``data``: its committed bytes, default the file): unreadable,
    invalid, outputs kept, wrong kernel, or metadata that would mark it modified as soon as JupyterLab opens it."""
    try:
        text = path.read_text() if data is None else data.decode()
        nb = nbformat.reads(text, as_version=4)
    except (json.JSONDecodeError, nbformat.reader.NotJSONError, UnicodeDecodeError) as err:
        return [f"{path.name} is not valid notebook JSON ({type(err).__name__}: {str(err)[:200]})"]
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as err:
        return [f"{path.name} does not match the notebook format: {err.message}"]
    problems = []
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    if dirty:
        problems.append(
            f"{path.name} is committed with outputs in cells {dirty}; clear them (JupyterLab: Edit > Clear "
            "Outputs of All Cells, or .venv/bin/pre-commit install to strip them on every commit)"
        )
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    if kernel != KERNEL_NAME:
        problems.append(f"{path.name} uses kernel {kernel!r}; use {KERNEL_NAME!r}")
    if nb.metadata.get("language_info") != stored_language_info():
        problems.append(
            f"{path.name}: metadata.language_info should be {stored_language_info()} (the kernel's, without the "
            "Python version; see course_utils/lab.py), or JupyterLab marks the notebook modified when it opens"
        )
    return problems


# The checks above must catch what they claim to catch.


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=ids(ALL_NOTEBOOKS))
def test_notebook_is_valid_and_committed_without_outputs(path):
    problems = storage_problems(path, COMMITTED[path])
    assert not problems, "\n".join(problems)


# The checks above must catch what they claim to catch.


def notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(s[3:]) if s.startswith("md:") else nbformat.v4.new_code_cell(s) for s in cells
    ]
    return nb


GOOD = [
    "md:# Title\n\n**After this notebook you can**\n\n- a\n- b\n- c\n\n$$J = 1$$",
    "md:## Setup",
    "FAST = fast_mode()\nSEED = course_seed(0)\nDEVICE = notebook_setup(seed=SEED)",
    "md:## 1. Idea",
    "x = 1",
    "md:Explained.",
    "md:## Summary\n\n- x",
    "md:## Exercises\n\n1. y",
    "md:## References\n\n- z",
]


def test_skeleton_check_accepts_the_minimal_good_notebook():
    assert skeleton_problems(notebook(*GOOD)) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.__setitem__(0, "md:Title without heading"), "'# ' title"),
        (lambda c: c.__setitem__(0, c[0].replace("- c\n", "")), "3 to 5 bullets"),
        (lambda c: c.__setitem__(0, c[0].replace("$$J = 1$$", "")), "key equation"),
        (lambda c: c.__setitem__(2, "DEVICE = notebook_setup(seed=0)"), "FAST = fast_mode()"),
        (lambda c: c.__setitem__(2, "FAST = fast_mode()\nSEED = 0\nDEVICE = notebook_setup(seed=SEED)"), "course_seed"),
        (lambda c: c.__setitem__(4, "FAST = fast_mode()"), "only the setup cell"),
        (lambda c: c.__setitem__(4, "import sys; sys.path.append('..')"), "sys.path"),
        (lambda c: c.pop(7), "last three sections"),
        (lambda c: c.insert(1, "md:## 0. Too early"), "setup cell must come before"),
        (lambda c: c.extend(["y = 2"] * 20), "prose"),
    ],
)
def test_skeleton_check_catches_departures(change, message):
    cells = list(GOOD)
    change(cells)
    assert any(message in p for p in skeleton_problems(notebook(*cells))), message


def test_storage_check_reports_broken_and_dirty_notebooks(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [')
    assert "not valid notebook JSON" in storage_problems(broken)[0]

    nb = notebook(*GOOD)
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "x", "language": "python"}
    nb.metadata["language_info"] = stored_language_info()
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi")]
    dirty = tmp_path / "dirty.ipynb"
    nbformat.write(nb, dirty)
    assert any("committed with outputs in cells [2]" in p for p in storage_problems(dirty))

    nb.cells[2].outputs = []
    nb.metadata["kernelspec"]["name"] = "python3"
    other_kernel = tmp_path / "kernel.ipynb"
    nbformat.write(nb, other_kernel)
    assert storage_problems(other_kernel) == [f"kernel.ipynb uses kernel 'python3'; use '{KERNEL_NAME}'"]

    nb.metadata["kernelspec"]["name"] = KERNEL_NAME
    nb.metadata["language_info"]["version"] = "3.11.7"
    versioned = tmp_path / "versioned.ipynb"
    nbformat.write(nb, versioned)
    assert any("marks the notebook modified" in p for p in storage_problems(versioned))


def test_storage_check_reads_the_committed_bytes_not_the_working_copy(tmp_path):
    """A student's executed, saved notebook does not fail the test command; a commit with outputs does."""
    nb = notebook(*GOOD)
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "x", "language": "python"}
    nb.metadata["language_info"] = stored_language_info()
    clean = nbformat.writes(nb).encode()
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi")]
    executed = tmp_path / "executed.ipynb"
    nbformat.write(nb, executed)
    assert storage_problems(executed, clean) == []
    assert storage_problems(executed) != []


def test_committed_notebooks_are_the_tracked_ones():
    assert ROOT / "notebooks" / "00_rl_loop.ipynb" in COMMITTED
    assert all(p.suffix == ".ipynb" and p.is_relative_to(ROOT) for p in COMMITTED)
