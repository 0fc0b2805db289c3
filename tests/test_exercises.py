"""Every exercise has a hint and a worked solution that students can open after trying.

A lecture notebook's Exercises section gives each exercise a collapsed hint
(``<details><summary>Hint</summary>``) and a link to ``exercise_solutions/NN_topic_solutions.ipynb#Exercise-k``;
that notebook has one ``## Exercise k`` section per exercise, in order, after a setup cell like the lectures'.
nbval runs the solutions notebooks in both modes with the rest (they live under notebooks/).

JupyterLab scrolls a link ``other.ipynb#X`` to the heading whose text, spaces turned into hyphens, is ``X``
(checked in a browser: an ``<a id=...>`` anchor or a longer heading is not found). So the heading is exactly
``## Exercise k`` (the exercise's title follows in bold), and every such link in the notebooks must name a
heading that exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
LECTURES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS_DIR = ROOT / "notebooks" / "exercise_solutions"


def exercises_section(nb) -> str:
    """The markdown between '## Exercises' and '## References'."""
    text = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    match = re.search(r"^## Exercises\s*$(.*?)^## References", text, flags=re.M | re.S)
    assert match, "no '## Exercises' section before '## References'"
    return match.group(1)


def exercise_problems(lecture: nbformat.NotebookNode, solutions: nbformat.NotebookNode | None, name: str) -> list[str]:
    section = exercises_section(lecture)
    target = f"exercise_solutions/{name}_solutions.ipynb"
    links = [int(k) for k in re.findall(rf"\]\({re.escape(target)}#Exercise-(\d+)\)", section)]
    problems = []
    if not links:
        return [f"the Exercises section links no worked solution ({target}#Exercise-k)"]
    n = max(links)
    if sorted(links) != list(range(1, n + 1)):
        problems.append(f"links to worked solutions should be Exercise-1..{n} once each, found {sorted(links)}")
    hints = len(re.findall(r"<details>\s*<summary>\s*Hint", section))
    if hints < n:
        problems.append(f"{n} exercises but {hints} collapsed hints (<details><summary>Hint</summary> ...)")
    if solutions is None:
        return [*problems, f"{target} does not exist"]
    headings = [
        int(m.group(1))
        for c in solutions.cells
        if c.cell_type == "markdown"
        for m in re.finditer(r"^## Exercise (\d+)\s*$", c.source, flags=re.M)
    ]
    if headings != list(range(1, n + 1)):
        problems.append(f"{target} should have sections '## Exercise 1'..'## Exercise {n}' in order, found {headings}")
    code = [c.source for c in solutions.cells if c.cell_type == "code"]
    if not code or not re.search(r"^FAST = fast_mode\(\)", code[0], flags=re.M) or "course_seed(" not in code[0]:
        problems.append(f"{target}: the first code cell should set FAST = fast_mode() and SEED = course_seed(...)")
    if solutions.cells[0].cell_type != "markdown" or not solutions.cells[0].source.startswith("# "):
        problems.append(f"{target}: the first cell should be the '# ' title")
    return problems


@pytest.mark.parametrize("lecture", LECTURES, ids=[p.name for p in LECTURES])
def test_every_exercise_has_a_hint_and_a_worked_solution(lecture):
    name = lecture.stem
    path = SOLUTIONS_DIR / f"{name}_solutions.ipynb"
    solutions = nbformat.read(path, as_version=4) if path.is_file() else None
    problems = exercise_problems(nbformat.read(lecture, as_version=4), solutions, name)
    assert not problems, f"{lecture.name}:\n- " + "\n- ".join(problems)


def heading_anchors(nb) -> set[str]:
    """The fragments JupyterLab gives the notebook's headings: their text with spaces turned into hyphens."""
    return {
        m.group(1).strip().replace(" ", "-")
        for c in nb.cells
        if c.cell_type == "markdown"
        for m in re.finditer(r"^#{1,6} (.+)$", c.source, flags=re.M)
    }


ALL = sorted(
    p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)  # not JupyterLab's copies


@pytest.mark.parametrize("path", ALL, ids=[str(p.relative_to(ROOT)) for p in ALL])
def test_links_between_notebooks_land_on_a_heading(path):
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    broken = []
    for target, fragment in re.findall(r"\]\(([\w./-]+\.ipynb)(?:#([^)\s]*))?\)", text):
        file = (path.parent / target).resolve()
        if not file.is_file():
            broken.append(f"{target}: no such notebook")
        elif fragment and fragment not in heading_anchors(nbformat.read(file, as_version=4)):
            broken.append(f"{target}#{fragment}: no heading there reads '{fragment.replace('-', ' ')}'")
    assert not broken, f"{path.name} links to:\n- " + "\n- ".join(broken)


def test_every_solutions_notebook_belongs_to_a_lecture():
    orphans = {p.name for p in SOLUTIONS_DIR.glob("*.ipynb")} - {f"{p.stem}_solutions.ipynb" for p in LECTURES}
    assert not orphans, f"solutions notebooks without a lecture: {sorted(orphans)}"


# The check must catch what it claims to catch.

LECTURE = [
    "# T",
    "## Exercises\n\n**Exercise 1.** Do x.\n\n<details><summary>Hint</summary>\n\nh\n\n</details>\n\n"
    "[Worked solution](exercise_solutions/99_t_solutions.ipynb#Exercise-1)\n\n"
    "**Exercise 2.** Do y.\n\n<details><summary>Hint</summary>\n\nh\n\n</details>\n\n"
    "[Worked solution](exercise_solutions/99_t_solutions.ipynb#Exercise-2)",
    "## References",
]
SOLUTIONS = [
    "# T — worked solutions",
    "FAST = fast_mode()\nSEED = course_seed(0)",
    "## Exercise 1\n\n**X.** Do x.",
    "## Exercise 2",
]


def make(cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(c) if c.startswith("FAST") else nbformat.v4.new_markdown_cell(c) for c in cells
    ]
    return nb


def test_exercise_check_accepts_a_good_pair():
    assert exercise_problems(make(LECTURE), make(SOLUTIONS), "99_t") == []


@pytest.mark.parametrize(
    ("lecture", "solutions", "message"),
    [
        ([LECTURE[0], LECTURE[1].replace("<details><summary>Hint</summary>", "", 1), LECTURE[2]], SOLUTIONS, "hints"),
        ([LECTURE[0], LECTURE[1].replace("#Exercise-2", "#Exercise-3"), LECTURE[2]], SOLUTIONS, "once each"),
        (LECTURE, SOLUTIONS[:-1], "in order"),
        (LECTURE, [*SOLUTIONS[:-1], "## Exercise 2 · y"], "in order"),
        (LECTURE, [SOLUTIONS[0], "FAST = fast_mode()", *SOLUTIONS[2:]], "course_seed"),
        (LECTURE, None, "does not exist"),
        ([LECTURE[0], "## Exercises\n\n1. Do x.", LECTURE[2]], SOLUTIONS, "links no worked solution"),
    ],
)
def test_exercise_check_catches_departures(lecture, solutions, message):
    problems = exercise_problems(make(lecture), None if solutions is None else make(solutions), "99_t")
    assert any(message in p for p in problems), problems
