"""One style for the code and the notebooks: ruff's lint and format checks, configured in pyproject.toml,
and the pre-commit hooks that apply them (and strip notebook outputs) before each commit."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RUFF = [sys.executable, "-m", "ruff"]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_ruff_lint_passes_on_code_and_notebooks():
    result = run(*RUFF, "check", "--no-cache", ".")
    assert result.returncode == 0, f"ruff found problems (fix: .venv/bin/ruff check --fix .):\n{result.stdout[-4000:]}"


def test_ruff_format_is_applied_to_code_and_notebooks():
    result = run(*RUFF, "format", "--no-cache", "--check", ".")
    assert result.returncode == 0, f"not formatted (fix: .venv/bin/ruff format .):\n{result.stdout[-4000:]}"


def test_ruff_checks_notebooks_and_catches_a_problem(tmp_path):
    """The configuration reaches .ipynb files: an unused import in a notebook cell is reported."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nx = 1\n")]
    nbformat.write(nb, tmp_path / "probe.ipynb")
    result = run(*RUFF, "check", "--no-cache", "probe.ipynb", cwd=tmp_path)
    assert result.returncode == 1 and "F401" in result.stdout, result.stdout


def hook(hook_id: str) -> list[str]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    (entry,) = [h["entry"] for repo in config["repos"] for h in repo["hooks"] if h["id"] == hook_id]
    program, *args = shlex.split(entry)
    assert program.startswith(".venv/bin/"), "hooks use the course's pinned tools"
    return [str(Path(sys.executable).parent / Path(program).name), *args]


def test_pre_commit_hooks_name_the_checks_the_suite_runs():
    ids = {
        h["id"]
        for repo in yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"]
        for h in repo["hooks"]
    }
    assert ids == {"nbstripout", "ruff-check", "ruff-format"}


def test_nbstripout_hook_strips_an_executed_notebook_back_to_its_committed_form(tmp_path):
    """Run as the hook runs it on a lecture notebook that a student executed: outputs, counts and the
    machine's Python version go; cell ids and everything else stay byte for byte."""
    original = ROOT / "templates" / "lecture_template.ipynb"
    executed = json.loads(original.read_text())
    for cell in executed["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hello\n"]}]
            cell["execution_count"] = 7
    executed["metadata"]["language_info"]["version"] = "3.11.7"
    path = tmp_path / original.name
    path.write_text(json.dumps(executed, indent=1, ensure_ascii=False) + "\n")
    result = run(*hook("nbstripout"), str(path))
    assert result.returncode == 0, result.stderr
    assert path.read_text() == original.read_text()


@pytest.mark.parametrize("hook_id", ["ruff-check", "ruff-format"])
def test_ruff_hooks_run_the_configured_ruff(hook_id):
    command = hook(hook_id)
    assert command[1:3] in (["check", "--fix"], ["format"])
    assert Path(command[0]).name == "ruff" and Path(command[0]).exists()
