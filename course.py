#!/usr/bin/env python3
"""Set up the course and open it, or set it up and test it.

    python3 course.py lab                # create .venv, install, register the kernel, open notebook 00
    python3 course.py lab --instructor   # the same, with nbgrader's instructor tools in JupyterLab
    python3 course.py test               # same installation, then every test and notebook (fast mode)
    python3 course.py test --full        # every lecture notebook and solution in full mode (what students run)
    python3 course.py site               # the course website from the full-mode run's outputs (_build/html)
    python3 course.py site --fast        # the same in fast mode (_build/html-fast)

Only the standard library is used here, so this runs on a bare Python. The
installation is skipped when nothing it depends on has changed since the last
one, so both commands are quick the second time. Arguments after the command
go to JupyterLab or pytest, e.g. ``python3 course.py test -k rl_loop``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
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
# Jupyter configuration for the lab server (see .jupyter/README.md): common/ always, student/ unless --instructor.
JUPYTER_CONFIG = ROOT / ".jupyter"
# What `test --full` runs: every notebook a student runs (lectures, their worked exercise solutions, the
# assignments' solutions and the template), in full mode.
NOTEBOOK_FOLDERS = ("notebooks", "solutions", "templates")
MIN_PYTHON = (3, 10)
# The course website (docs/conf.py): where each mode's build goes. Its outputs come from the jupyter-cache the
# test commands fill (docs/site_cache.py), so only notebooks changed since the last test run are executed.
SITE_OUTPUT = {"full": Path("_build") / "html", "fast": Path("_build") / "html-fast"}
# Tests marked `site` (in SITE_TEST_FILE) build that website and open it in a browser: `test` runs them after the
# rest, beside the system tests (test_steps).
SITE_MARKER = "site"
SITE_TEST_FILE = "tests/test_site.py"
# Tests marked `system` start real servers, Unix accounts or clusters (JupyterHub, a Dask cluster, formgrader, the
# instructors' guide run command by command): only the last step of `test` runs them; elsewhere they skip
# unless COURSE_SYSTEM_TESTS=1 (conftest.py).
SYSTEM_MARKER = "system"
# The files that hold them. That step collects only these and SITE_TEST_FILE (collecting all of tests/ costs each
# worker about 5 s of CPU); conftest.py stops any run that finds a `system` test in another file
# (system_tests_elsewhere).
SYSTEM_TEST_FILES = (
    "tests/test_distributed_grading.py",
    "tests/test_formgrader.py",
    "tests/test_hub.py",
    "tests/test_instructor_guide.py",
)
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


def lab_command(python: Path | str, args: list[str], instructor: bool) -> tuple[list[str], dict[str, str]]:
    """The JupyterLab command line and environment: notebook 00 open, nbgrader's tools only for instructors."""
    cmd = [
        str(python), "-m", "jupyter", "lab",
        f"--ServerApp.root_dir={ROOT}",
        # The page the browser opens and the URL the server prints: notebook 00, not the Launcher.
        f"--LabApp.default_url=/lab/tree/{FIRST_NOTEBOOK}",
        *args,
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI machines often run as root
        cmd.append("--allow-root")
    folders = [JUPYTER_CONFIG / "common"] if instructor else [JUPYTER_CONFIG / "student", JUPYTER_CONFIG / "common"]
    inherited = [p for p in os.environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p]
    env = dict(os.environ, JUPYTER_CONFIG_PATH=os.pathsep.join([*map(str, folders), *inherited]))
    return cmd, env


def lab(args: list[str]) -> int:
    """Open JupyterLab on the course, with notebook 00 open. ``--instructor`` keeps nbgrader's tools."""
    instructor = "--instructor" in args
    args = [a for a in args if a != "--instructor"]
    python = ensure_installed()
    cmd, env = lab_command(python, args, instructor)
    if "--allow-root" in cmd:
        print("[course] running as root: passing --allow-root to JupyterLab", flush=True)
    mode = (
        "instructor mode: nbgrader's tools on"
        if instructor
        else "nbgrader's instructor tools hidden; --instructor shows them"
    )
    print(f"[course] starting JupyterLab on {ROOT} ({mode}); stop it with Ctrl-C", flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


def test_command(python: Path | str, args: list[str]) -> tuple[list[str], dict[str, str]]:
    """The pytest command line and environment: fast mode by default, ``--full`` for the notebooks in full mode."""
    full = "--full" in args
    args = [a for a in args if a != "--full"]
    workers = "2" if (os.cpu_count() or 1) >= 2 else "1"
    cmd = [str(python), "-m", "pytest", "-n", workers, "--dist", "loadfile", "--durations=8"]
    if full:
        env = {k: v for k, v in os.environ.items() if k not in ("COURSE_FAST", "COURSE_SEED")}
        env["COURSE_FAST"] = "0"
        # Paths given after --full narrow the run (e.g. one notebook); otherwise every notebook.
        given = any((ROOT / a.split("::")[0]).exists() for a in args if not a.startswith("-"))
        paths = [] if given else list(NOTEBOOK_FOLDERS)
        return [*cmd, *args, *paths], env
    return [*cmd, *args], dict(os.environ, COURSE_FAST="1")


def ensure_browser() -> None:
    """The first-hour test drives JupyterLab in a real browser (tests/test_course_script.py): install Debian's
    chromium where root rights allow. Never fatal; without it that test skips (or fails under CI)."""
    if shutil.which("chromium") or not shutil.which("apt-get") or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("[course] installing chromium (for the browser test of JupyterLab) with apt-get", flush=True)
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        if subprocess.call(cmd, env=env, stdout=subprocess.DEVNULL) != 0:
            print(f"[course] {' '.join(cmd)} failed: the browser test will skip", flush=True)
            return


def test(args: list[str]) -> int:
    """Run the unit tests and every notebook under nbval in fast mode (``--full``: the notebooks in full mode).

    Without arguments (the README's command) this is two pytest runs (:func:`test_steps`): everything but the
    website's and the system tests, recording each notebook's outputs as it goes; then, side by side, the website's
    test, which builds the fast-mode site from those outputs and checks it in a browser (tests/test_site.py), and the
    system tests (marker ``system``: a real JupyterHub, a Dask cluster, formgrader's server, the instructors' guide
    run as typed). A run narrowed by arguments is one run.
    """
    python = ensure_installed()
    cmd, env = test_command(python, args)
    if env["COURSE_FAST"] == "1":
        # The grading tests run student code in a bubblewrap sandbox: check it, installing Debian's
        # package where root rights allow. Never fatal; without a sandbox those tests skip (or fail under CI).
        subprocess.call([str(python), "-m", "course_grader", "setup-sandbox"], cwd=ROOT)
        ensure_browser()
    steps = test_steps(cmd, args, env["COURSE_FAST"] == "1")
    mode = "COURSE_FAST=0: full mode, what students run" if env["COURSE_FAST"] == "0" else "COURSE_FAST=1"
    started = time.perf_counter()
    code = 0
    for number, (step, extra_env) in enumerate(steps):
        if number and code != 0:
            print("[course] the remaining steps are skipped: the run above failed", flush=True)
            break
        shown = " ".join([*(f"{k}={v}" for k, v in extra_env.items()), *step[1:]])
        print(f"[course] {shown}  ({mode})", flush=True)
        code = subprocess.call(step, cwd=ROOT, env={**env, **extra_env})
    print(
        f"[course] whole test run: {time.perf_counter() - started:.1f} s wall-clock on {os.cpu_count()} cores",
        flush=True,
    )
    return code


def test_steps(cmd: list[str], args: list[str], fast: bool) -> list[tuple[list[str], dict[str, str]]]:
    """The pytest runs of ``test`` and the variables each adds to the environment. Without arguments: every test
    but the website's and the system tests (notebooks two at a time); then, once the notebooks' outputs the website
    builds from are all recorded, the website's test and the system tests, two files at a time
    (``COURSE_SYSTEM_TESTS=1``: they start servers and Unix accounts, so only this step runs them). The website's
    test is one process for most of its length (Sphinx, then one browser tab) and alone would leave a core idle."""
    if args or not fast:
        return [(cmd, {})]
    return [
        ([*cmd, "-m", f"not {SITE_MARKER} and not {SYSTEM_MARKER}"], {}),
        (
            [*cmd, "-m", f"{SITE_MARKER} or {SYSTEM_MARKER}", SITE_TEST_FILE, *SYSTEM_TEST_FILES],
            {"COURSE_SYSTEM_TESTS": "1"},
        ),
    ]


def system_tests_elsewhere(node_ids: list[str]) -> list[str]:
    """The files of these `system` tests (pytest node ids) that SYSTEM_TEST_FILES does not list: the last step of
    `test` would never run them."""
    return sorted({node_id.split("::", 1)[0] for node_id in node_ids} - set(SYSTEM_TEST_FILES))


def site_command(python: Path | str, args: list[str]) -> tuple[list[str], dict[str, str], Path]:
    """The Sphinx command line, environment and output folder of ``site`` (``--fast``: the fast-mode site)."""
    fast = "--fast" in args
    args = [a for a in args if a != "--fast"]
    mode = "fast" if fast else "full"
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_FAST", "COURSE_SEED")}
    env.update(COURSE_FAST="1" if fast else "0", TQDM_DISABLE="1")
    env.pop("MPLBACKEND", None)  # the kernels' figures must be inline (ipykernel's default), not Agg
    out = ROOT / SITE_OUTPUT[mode]
    cmd = [
        str(python), "-m", "sphinx", "-b", "html", "-c", "docs",
        "-d", str(ROOT / "_build" / "doctrees" / mode), str(ROOT), str(out), *args,
    ]  # fmt: skip
    return cmd, env, out


def site(args: list[str]) -> int:
    """Build the course website: full mode by default, ``--fast`` for the fast-mode budgets."""
    python = ensure_installed()
    cmd, env, out = site_command(python, args)
    mode = "fast" if env["COURSE_FAST"] == "1" else "full"
    print(f"[course] building the website ({mode} mode) into {out.relative_to(ROOT)}", flush=True)
    started = time.perf_counter()
    code = subprocess.call(cmd, cwd=ROOT, env=env)
    seconds = time.perf_counter() - started
    if code == 0:
        print(f"[course] website built in {seconds:.1f} s: open {out / 'index.html'}", flush=True)
    else:
        print(f"[course] the website's build failed after {seconds:.1f} s (see the messages above)", flush=True)
    return code


def main(argv: list[str]) -> int:
    commands = {"lab": lab, "test": test, "site": site}
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
