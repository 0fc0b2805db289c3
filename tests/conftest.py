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


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One torch thread for every test's small networks: fastest alone, and far faster when the test command's two
    workers (or other processes) share the CPU (see set_torch_threads; a TRPO test took 21 s instead of 2 s with
    torch's default). Tests of the thread setting restore it themselves."""
    from course_utils import set_torch_threads

    previous = set_torch_threads(1)
    yield
    set_torch_threads(previous)
