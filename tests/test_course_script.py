"""The two README commands: the install logic behind them, the lab server they start,
and that README and .ci/run name exactly these commands."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
LAB_COMMAND = "python3 course.py lab"
TEST_COMMAND = "python3 course.py test"


def load_course_script():
    spec = importlib.util.spec_from_file_location("course_script", ROOT / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


course = load_course_script()


def fake_root(tmp_path: Path) -> Path:
    for name in course.INSTALL_INPUTS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"content of {name}\n")
    return tmp_path


def test_fingerprint_changes_with_each_install_input_and_python(tmp_path):
    root = fake_root(tmp_path)
    base = course.install_fingerprint(root, "3.11.7")
    assert course.install_fingerprint(root, "3.11.7") == base
    assert course.install_fingerprint(root, "3.12.1") != base
    for name in course.INSTALL_INPUTS:
        path = root / name
        original = path.read_text()
        path.write_text(original + "changed\n")
        assert course.install_fingerprint(root, "3.11.7") != base, f"editing {name} must trigger a reinstall"
        path.write_text(original)


def test_missing_install_input_is_a_clear_error(tmp_path):
    root = fake_root(tmp_path)
    (root / "requirements" / "constraints.txt").unlink()
    with pytest.raises(course.SetupError, match="constraints.txt is missing"):
        course.install_fingerprint(root)


def test_is_installed_needs_interpreter_and_matching_stamp(tmp_path):
    venv = tmp_path / "venv"
    python = course.venv_python(venv)
    assert not course.is_installed(venv, "abc")
    python.parent.mkdir(parents=True)
    python.write_text("")
    assert not course.is_installed(venv, "abc")  # no stamp: an install never finished
    (venv / course.STAMP_NAME).write_text("abc\n")
    assert course.is_installed(venv, "abc")
    assert not course.is_installed(venv, "def")  # inputs changed since


def test_the_real_environment_is_stamped_with_the_current_inputs():
    """The venv running these tests was installed from the committed inputs."""
    if Path(sys.prefix).resolve() != course.VENV.resolve():
        pytest.skip("tests are not running inside the course's .venv")
    assert course.is_installed(course.VENV, course.install_fingerprint())


def test_unknown_command_prints_usage(capsys):
    assert course.main(["labb"]) == 2
    assert "usage: python3 course.py {lab,test}" in capsys.readouterr().err


def test_old_python_is_refused_with_advice(monkeypatch, capsys):
    monkeypatch.setattr(course.sys, "version_info", (3, 8, 0))
    assert course.main(["test"]) == 1
    assert "Python 3.10 or newer is needed" in capsys.readouterr().err


def shell_blocks(markdown: str) -> list[str]:
    blocks = re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", markdown, flags=re.S)
    return [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def test_readme_names_exactly_the_two_commands():
    assert sorted(set(shell_blocks(README))) == sorted({LAB_COMMAND, TEST_COMMAND})


def test_ci_runs_the_readme_test_command_and_nothing_hidden():
    lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert lines[-1] == f"exec {TEST_COMMAND}"
    assert all(line.startswith(("set ", "cd ")) for line in lines[:-1]), lines


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def test_lab_command_serves_the_course(tmp_path):
    """`python3 course.py lab` starts JupyterLab on the repository, with the course kernel."""
    port, token = free_port(), "course-test-token"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path))
    log_path = tmp_path / "lab.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "course.py",
                "lab",
                "--no-browser",
                f"--port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, body = get(f"{base}/api/contents/notebooks?token={token}")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"JupyterLab did not answer on port {port}:\n{log_path.read_text(errors='replace')[-3000:]}"
                    )
                time.sleep(0.5)
        assert status == 200
        names = {item["name"] for item in json.loads(body)["content"]}
        assert "00_rl_loop.ipynb" in names
        status, page = get(f"{base}/lab?token={token}")
        assert status == 200 and b"JupyterLab" in page
        status, specs = get(f"{base}/api/kernelspecs?token={token}")
        assert course.KERNEL_NAME in json.loads(specs)["kernelspecs"], "the course kernel is not registered"
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen) -> None:
    """Stop the command and everything it started (it leads its own process group)."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def test_environment_yml_pip_section_is_valid_pip_input():
    """What conda would hand to pip (a requirements file next to environment.yml) resolves."""
    conda_deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    (pip_lines,) = [d["pip"] for d in conda_deps if isinstance(d, dict)]
    with tempfile.NamedTemporaryFile("w", dir=ROOT, prefix="condaenv.", suffix=".requirements.txt") as req:
        req.write("\n".join(pip_lines) + "\n")
        req.flush()
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "-r", req.name],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    would_install = re.findall(r"^Would install (.*)$", result.stdout, flags=re.M)
    extra = [p for line in would_install for p in line.split() if not p.startswith("course-utils-")]
    assert not extra, f"environment.yml would install packages the README set-up did not: {extra}"
