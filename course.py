#!/usr/bin/env python3
"""Set up the course and open it, or set it up and test it.

    python3 course.py lab     # create .venv, install, register the kernel, open JupyterLab
    python3 course.py test    # same installation, then every test and notebook (fast mode)

Only the standard library is used here, so this runs on a bare Python. The
installation is skipped when nothing it depends on has changed since the last
one, so both commands are quick the second time. Arguments after the command
go to JupyterLab or pytest, e.g. ``python3 course.py test -k rl_loop``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("COURSE_VENV", ROOT / ".venv"))
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
STAMP_NAME = ".course-install-stamp"
KERNEL_NAME = "drl-course"
KERNEL_DISPLAY_NAME = "Python 3 (DRL course)"
FIRST_NOTEBOOK = "notebooks/00_rl_loop.ipynb"
MIN_PYTHON = (3, 10)
# A change to any of these triggers a reinstall.
INSTALL_INPUTS = ("pyproject.toml", "requirements/constraints.txt", "course.py")


class SetupError(RuntimeError):
    """A set-up step failed; the message says which and what to do."""


def venv_python(venv: Path = VENV) -> Path:
    """The virtual environment's interpreter (POSIX or Windows layout)."""
    scripts = venv / ("Scripts" if os.name == "nt" else "bin")
    return scripts / ("python.exe" if os.name == "nt" else "python")


def install_fingerprint(root: Path = ROOT, python_version: str | None = None) -> str:
    """Hash of everything the installation depends on: the inputs' bytes and the Python version."""
    digest = hashlib.sha256((python_version or sys.version).encode())
    for name in INSTALL_INPUTS:
        path = root / name
        if not path.is_file():
            raise SetupError(f"{path} is missing: is this a complete clone of the course repository?")
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def is_installed(venv: Path, fingerprint: str) -> bool:
    """True when ``venv`` has a working interpreter and was installed from the same inputs."""
    stamp = venv / STAMP_NAME
    return venv_python(venv).exists() and stamp.is_file() and stamp.read_text().strip() == fingerprint


def run(cmd: list[str | Path], what: str, **kwargs) -> None:
    """Run a set-up step, turning a failure into a SetupError that names the step."""
    print(f"[course] {what}", flush=True)
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, **kwargs)
    if result.returncode != 0:
        raise SetupError(f"{what} failed (exit code {result.returncode}); see the messages above.")


def ensure_installed() -> Path:
    """Create ``.venv`` and install the course into it unless that is already done. Returns its Python."""
    if sys.version_info < MIN_PYTHON:
        raise SetupError(
            f"Python {'.'.join(map(str, MIN_PYTHON))} or newer is needed, this is {sys.version.split()[0]}. "
            "Run the command with a newer python3 (or use environment.yml with conda)."
        )
    fingerprint = install_fingerprint()
    if is_installed(VENV, fingerprint):
        return venv_python(VENV)
    started = time.perf_counter()
    if not venv_python(VENV).exists():
        run([sys.executable, "-m", "venv", VENV], f"creating the virtual environment {VENV}")
    python = venv_python(VENV)
    (VENV / STAMP_NAME).unlink(missing_ok=True)  # an interrupted install must not look finished
    run(
        [python, "-m", "pip", "install", "--constraint", CONSTRAINTS, "--editable", ".[test]"],
        "installing the course and its pinned dependencies (torch==2.13.0, CPU build where available)",
    )
    run(
        [
            python,
            "-m",
            "ipykernel",
            "install",
            "--sys-prefix",
            "--name",
            KERNEL_NAME,
            "--display-name",
            KERNEL_DISPLAY_NAME,
        ],
        f"registering the Jupyter kernel '{KERNEL_NAME}'",
    )
    (VENV / STAMP_NAME).write_text(fingerprint + "\n")
    print(f"[course] installation done in {time.perf_counter() - started:.0f} s", flush=True)
    return python


def lab(args: list[str]) -> int:
    """Open JupyterLab on the course, with notebook 00 open."""
    python = ensure_installed()
    cmd = [str(python), "-m", "jupyter", "lab", f"--ServerApp.root_dir={ROOT}", *args, str(ROOT / FIRST_NOTEBOOK)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI machines often run as root
        print("[course] running as root: passing --allow-root to JupyterLab", flush=True)
        cmd.insert(4, "--allow-root")
    print(f"[course] starting JupyterLab on {ROOT} (stop it with Ctrl-C)", flush=True)
    return subprocess.call(cmd, cwd=ROOT)


def test(args: list[str]) -> int:
    """Run the unit tests and every notebook under nbval in fast mode, in parallel."""
    python = ensure_installed()
    # The grading tests run student code in a bubblewrap sandbox: check it, installing Debian's
    # package where root rights allow. Never fatal; without a sandbox those tests skip (or fail under CI).
    subprocess.call([str(python), "-m", "course_grader", "setup-sandbox"], cwd=ROOT)
    env = dict(os.environ, COURSE_FAST="1")
    workers = "2" if (os.cpu_count() or 1) >= 2 else "1"
    cmd = [str(python), "-m", "pytest", "-n", workers, "--dist", "loadfile", "--durations=8", *args]
    print(f"[course] {' '.join(cmd[1:])}  (COURSE_FAST=1)", flush=True)
    started = time.perf_counter()
    code = subprocess.call(cmd, cwd=ROOT, env=env)
    print(
        f"[course] whole test suite: {time.perf_counter() - started:.1f} s wall-clock on {os.cpu_count()} cores",
        flush=True,
    )
    return code


def main(argv: list[str]) -> int:
    commands = {"lab": lab, "test": test}
    if not argv or argv[0] not in commands:
        print(__doc__.strip(), file=sys.stderr)
        print(f"\nusage: python3 course.py {{{','.join(commands)}}} [args...]", file=sys.stderr)
        return 2
    try:
        return commands[argv[0]](argv[1:])
    except SetupError as err:
        print(f"[course] error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
