"""The two README commands: the install logic behind them, the lab server they start (looked at over HTTP and
in a real browser), and that README and .ci/run name exactly these commands."""

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
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
LAB_COMMAND = "python3 course.py lab"
TEST_COMMAND = "python3 course.py test"
SITE_COMMAND = "python3 course.py site"


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
    assert "usage: python3 course.py {lab,test,site}" in capsys.readouterr().err


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


README_COMMANDS = {
    LAB_COMMAND,
    f"{LAB_COMMAND} --instructor",
    TEST_COMMAND,
    f"{TEST_COMMAND} --full",
    SITE_COMMAND,
    f"{SITE_COMMAND} --fast",
}


def test_readme_names_exactly_the_course_commands():
    assert set(shell_blocks(README)) == README_COMMANDS


def test_ci_runs_the_readme_test_commands_and_nothing_hidden():
    lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    commands = [line.removeprefix("exec ") for line in lines if not line.startswith(("set ", "cd "))]
    assert all(" course.py " in f" {command} " for command in commands), lines
    # The fast suite first; the full-mode website (`site`) after the full-mode run whose outputs it shows; `site
    # --fast` is built and checked in a browser by the first command (tests/test_site.py).
    assert commands[0] == TEST_COMMAND and commands[-2:] == [f"{TEST_COMMAND} --full", SITE_COMMAND], lines
    assert lines[-1].startswith("exec "), "the last command's exit code is CI's"


def test_full_mode_runs_every_notebook_folder_without_fast_mode(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    monkeypatch.setenv("COURSE_SEED", "3")
    cmd, env = course.test_command("py", ["--full"])
    assert env["COURSE_FAST"] == "0" and "COURSE_SEED" not in env, "full mode runs the notebooks' own seeds"
    assert cmd[-len(course.NOTEBOOK_FOLDERS) :] == list(course.NOTEBOOK_FOLDERS) and "--full" not in cmd
    for folder in course.NOTEBOOK_FOLDERS:
        assert any((ROOT / folder).rglob("*.ipynb")), f"{folder}/ holds no notebook"
    cmd, env = course.test_command("py", ["--full", "notebooks/00_rl_loop.ipynb"])
    assert cmd[-1] == "notebooks/00_rl_loop.ipynb" and "notebooks" not in cmd, "a path given narrows the run"
    cmd, env = course.test_command("py", ["--full", "-k", "rl_loop"])
    folders = list(course.NOTEBOOK_FOLDERS)
    assert cmd[-len(folders) :] == folders and "rl_loop" in cmd, "an option's value is not a path to narrow to"
    cmd, env = course.test_command("py", ["-k", "x"])
    assert env["COURSE_FAST"] == "1" and cmd[-2:] == ["-k", "x"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def start_lab(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, str, Path]:
    port, token = free_port(), "course-test-token"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path))
    log_path = tmp_path / "lab.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "course.py", "lab", *extra, "--no-browser", f"--port={port}",
                "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            get(f"{base}/api/status?token={token}")
            return process, f"{base}/%s?token={token}", log_path
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_group(process)
                pytest.fail(
                    f"JupyterLab did not answer on port {port}:\n{log_path.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.5)


def page_config(html: bytes) -> dict:
    """The JSON JupyterLab embeds in its page: which extensions load, which are disabled."""
    match = re.search(rb'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, flags=re.S)
    assert match, "no page config in JupyterLab's page"
    return json.loads(match.group(1))


def formgrader_status(url: str) -> int:
    try:
        return get(url % "formgrader")[0]
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture(scope="module")
def student_lab(tmp_path_factory):
    """One `python3 course.py lab` server, as a student starts it, for the checks over HTTP and in the browser."""
    process, url, log_path = start_lab(tmp_path_factory.mktemp("student-lab"))
    yield url, log_path
    stop_group(process)


def test_lab_command_opens_notebook_00_for_students(student_lab):
    """`python3 course.py lab`: JupyterLab on the repository with the course kernel; the URL it prints
    opens notebook 00; nbgrader's instructor tools and build folders are out of a student's sight."""
    url, log_path = student_lab
    status, body = get(url % "api/contents/notebooks")
    assert status == 200 and "00_rl_loop.ipynb" in {item["name"] for item in json.loads(body)["content"]}
    listing = {item["name"] for item in json.loads(get(url % "api/contents")[1])["content"]}
    assert "notebooks" in listing and not any(name.endswith(".egg-info") for name in listing), listing
    status, specs = get(url % "api/kernelspecs")
    assert course.KERNEL_NAME in json.loads(specs)["kernelspecs"], "the course kernel is not registered"

    status, page = get(url % "lab")
    assert status == 200 and b"JupyterLab" in page
    config = page_config(page)
    assert "@jupyter/nbgrader" in config["disabledExtensions"], "students should not see nbgrader's tools"
    assert formgrader_status(url) == 404, "the formgrader must be off for students"

    printed = re.findall(r"http://127\.0\.0\.1:\d+(/\S*)\?token=", log_path.read_text(errors="replace"))
    assert printed and set(printed) == {f"/lab/tree/{course.FIRST_NOTEBOOK}"}, f"printed URLs: {printed}"


def test_first_minutes_in_jupyterlab(student_lab, chromium_browser, tmp_path):
    """A student's first minutes, in a real browser (Debian's chromium, headless, driven by Playwright): the
    command's URL opens notebook 00 (not the Launcher), the notebook is not marked modified once its kernel is up,
    and nbgrader's instructor tools and Jupyter's news pop-up are out of sight."""
    url, log_path = student_lab
    # The URL the command printed (its token is masked in the log: put the test's own back).
    printed = re.search(r"http://127\.0\.0\.1:\d+/(\S+)\?token=", log_path.read_text(errors="replace"))
    browser = chromium_browser
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(url % printed.group(1) + "&reset")  # a fresh workspace, as on a first start
    tab = page.locator("li.lm-TabBar-tab", has_text="00_rl_loop.ipynb")
    tab.wait_for(timeout=90_000)
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
    status = page.locator(".jp-StatusBar-Widget", has_text="Idle")  # the kernel has started
    status.first.wait_for(timeout=90_000)
    page.wait_for_timeout(2_000)  # let JupyterLab apply the kernel's metadata
    page.screenshot(path=str(tmp_path / "lab.png"))
    classes = tab.get_attribute("class") or ""
    assert "jp-mod-current" in classes, "notebook 00 should be the open tab"
    assert "jp-mod-dirty" not in classes, "opening notebook 00 marked it modified"
    assert page.locator(".lm-TabBar-tab", has_text="Launcher").count() == 0, "the Launcher opened too"
    menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
    assert "Nbgrader" not in menus and "Formgrader" not in " ".join(menus), menus
    assert page.get_by_text("get notified about official Jupyter news").count() == 0


def test_lab_command_with_instructor_flag_keeps_nbgrader(tmp_path):
    process, url, _ = start_lab(tmp_path, "--instructor")
    try:
        config = page_config(get(url % "lab")[1])
        assert "@jupyter/nbgrader" not in config["disabledExtensions"], "instructors need nbgrader's tools"
        assert any(ext["name"] == "@jupyter/nbgrader" for ext in config["federated_extensions"])
        assert formgrader_status(url) != 404, "the formgrader must be served in instructor mode"
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
