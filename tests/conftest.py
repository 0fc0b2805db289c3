"""Shared test set-up: a headless plotting backend and a clean fast-mode switch."""

import os

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


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's small networks: fastest alone, and far faster when other
    processes share the CPU (see set_torch_threads). Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    from course_utils import set_torch_threads

    previous = set_torch_threads(1)
    yield
    set_torch_threads(previous)
