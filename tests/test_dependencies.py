"""Dependencies are declared once (pyproject.toml), mirrored exactly in environment.yml,
and pinned completely in requirements/constraints.txt, which the installed environment follows."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENV_TEXT = (ROOT / "environment.yml").read_text()
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"


def key(req: Requirement):
    return canonicalize_name(req.name), frozenset(req.extras), str(req.specifier), str(req.marker or "")


def declared() -> list[Requirement]:
    project = PYPROJECT["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]


def environment_pip_lines() -> list[str]:
    conda_deps = yaml.safe_load(ENV_TEXT)["dependencies"]
    pip_sections = [d["pip"] for d in conda_deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip section"
    return pip_sections[0]


def pins() -> dict[str, Version]:
    found = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"constraints.txt must pin exact versions: {line}"
            found[canonicalize_name(req.name)] = Version(spec.version)
    return found


def test_environment_yml_lists_exactly_the_declared_dependencies():
    from_env = {key(Requirement(line)) for line in environment_pip_lines() if not line.startswith("-")}
    from_pyproject = {key(r) for r in declared()}
    assert from_env - from_pyproject == set(), "environment.yml lists what pyproject.toml does not declare"
    assert from_pyproject - from_env == set(), "pyproject.toml declares what environment.yml does not list"


def test_environment_yml_installs_the_package_with_the_constraints():
    options = [line for line in environment_pip_lines() if line.startswith("-")]
    assert "--constraint requirements/constraints.txt" in options
    assert "--editable ." in options


def test_environment_yml_python_satisfies_requires_python():
    (python,) = [d for d in yaml.safe_load(ENV_TEXT)["dependencies"] if isinstance(d, str) and d.startswith("python")]
    version = python.split("=")[-1]
    assert Version(version) in SpecifierSet(PYPROJECT["project"]["requires-python"])


def test_every_environment_yml_dependency_says_which_notebooks_need_it():
    requirements = [line for line in environment_pip_lines() if not line.startswith("-")]
    assert requirements
    for requirement in requirements:
        (raw,) = [line for line in ENV_TEXT.splitlines() if re.match(rf"\s+- {re.escape(requirement)}\s", line)]
        assert re.search(r"#\s*\S", raw), f"environment.yml: say which notebooks need {requirement}"


def test_torch_is_pinned_everywhere_to_the_cpu_wheel_version():
    torch_reqs = [r for r in declared() if r.name == "torch"]
    assert [str(r.specifier) for r in torch_reqs] == ["==2.13.0"]
    assert pins()["torch"] == Version("2.13.0")


def test_every_declared_dependency_is_pinned_within_its_range():
    locked = pins()
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is declared but not pinned; run python3 requirements/lock.py"
        assert req.specifier.contains(locked[name], prereleases=True), f"pin {name}=={locked[name]} violates {req}"


def installed_closure() -> dict[str, str]:
    """Installed distributions needed by the declared dependencies, transitively (name -> version)."""
    seen: dict[str, str] = {}
    todo = [(r, set(r.extras)) for r in declared()]
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{req.name} is required but not installed: rerun the README's set-up command")
        seen[name] = dist.version
        for line in dist.requires or []:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append((sub, set(sub.extras)))
    return seen


def test_installed_environment_matches_the_lock():
    locked = pins()
    closure = installed_closure()
    assert len(closure) > 50  # the walk really followed transitive requirements
    unpinned = sorted(set(closure) - set(locked))
    assert not unpinned, f"installed but missing from constraints.txt (run python3 requirements/lock.py): {unpinned}"
    drift = {n: (v, str(locked[n])) for n, v in closure.items() if Version(v).public != locked[n].public}
    assert not drift, f"installed versions differ from the lock (installed, locked): {drift}"


def test_only_one_pygame_distribution_is_installed():
    """pygame and pygame-ce both install the `pygame` package; together they overwrite each other's files."""
    providers = [name for name in ("pygame", "pygame-ce") if _installed(name)]
    assert providers == ["pygame-ce"], f"expected only pygame-ce (gymnasium's renderer), found {providers}"


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def test_reading_a_notebook_builds_no_uri_parser_at_import():
    """Why pyproject caps jsonschema below 4.24: from 4.24 on, importing it (which nbformat does) imports
    rfc3987-syntax when installed, and that builds a grammar parser: a second of CPU in every process that reads
    a notebook. With the cap the package is not installed and nbformat imports without it."""
    import subprocess
    import sys

    probe = "import sys, nbformat; print('rfc3987_syntax' in sys.modules, 'lark' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == ["False", "False"], (
        "importing nbformat also imported rfc3987_syntax/lark: is jsonschema >= 4.24 installed? (see pyproject.toml)"
    )


def test_course_utils_and_notebook_setup_leave_pyplot_unimported():
    """Every grading sandbox imports course_utils before the first cell and runs the notebook's notebook_setup:
    neither imports matplotlib.pyplot (about 0.2 s of CPU per submission); plotting imports it when it plots."""
    import os
    import subprocess
    import sys

    probe = (
        "import sys, course_utils; course_utils.notebook_setup(0); import matplotlib as mpl; "
        "print('matplotlib.pyplot' in sys.modules, mpl.rcParams['figure.figsize'] == [6.4, 3.6]); "
        "course_utils.plot_learning_curves({'a': [[1.0, 2.0]]}); print('matplotlib.pyplot' in sys.modules)"
    )
    env = {**os.environ, "MPLBACKEND": "Agg"}
    lines = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    assert lines.stdout.split()[-3:] == ["False", "True", "True"], (
        "course_utils or notebook_setup imported matplotlib.pyplot, or the course style was not applied: "
        f"{lines.stdout!r}"
    )
