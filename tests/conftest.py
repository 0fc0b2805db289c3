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
