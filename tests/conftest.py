"""Shared test set-up: a headless plotting backend, a clean fast-mode switch, one torch thread, the browser."""

import os
import shutil

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


@pytest.fixture
def fast_env(monkeypatch):
    """Set COURSE_FAST for one test: ``fast_env("1")``; the variable is restored afterwards."""

    def set_value(value):
        if value is None:
            monkeypatch.delenv("COURSE_FAST", raising=False)
        else:
            monkeypatch.setenv("COURSE_FAST", value)

    return set_value


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One torch thread for every test's small networks: fastest alone, and far faster when the test command's two
    workers (or other processes) share the CPU (see set_torch_threads; a TRPO test took 21 s instead of 2 s with
    torch's default). Tests of the thread setting restore it themselves."""
    from course_utils import set_torch_threads

    previous = set_torch_threads(1)
    yield
    set_torch_threads(previous)


@pytest.fixture(scope="session")
def root_conftest():
    """The repository's root conftest.py as a module of its own, for tests of its hooks and helpers (pytest
    loads it as a plugin, not as an importable module)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "root_conftest", Path(__file__).resolve().parent.parent / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def chromium_browser():
    """Debian's chromium, headless, launched by Playwright (no browser download): the browser tests' browser.
    Under CI a missing chromium fails the test (``python3 course.py test`` installs it as root); elsewhere it skips."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs chromium for the browser tests (python3 course.py test installs it as root)")
        pytest.skip("no chromium here (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-background-networking"]
        )
        try:
            yield browser
        finally:
            browser.close()
