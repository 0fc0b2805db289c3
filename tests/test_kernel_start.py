"""conftest.retrying_kernel_start: a notebook kernel that dies before it answers is started once more."""

from __future__ import annotations

import pytest


def flaky_start(failures: int, calls: list):
    """A stand-in for nbval's start_new_kernel that fails ``failures`` times, printing to the stderr it is given."""

    def start(kernel_name, **kwargs):
        calls.append(kernel_name)
        if len(calls) <= failures:
            kwargs["stderr"].write(f"zmq.error.ZMQError: Address already in use (start {len(calls)})\n")
            kwargs["stderr"].flush()
            raise RuntimeError("Kernel died before replying to kernel_info")
        return "km", "kc"

    return start


def test_a_kernel_that_dies_once_is_started_again_and_the_warning_shows_what_it_printed(root_conftest):
    calls, warned = [], []
    start = root_conftest.retrying_kernel_start(flaky_start(1, calls), warn=warned.append)
    assert start(kernel_name="k", cwd="notebooks") == ("km", "kc")
    assert calls == ["k", "k"]
    assert len(warned) == 1 and "Address already in use (start 1)" in warned[0], warned


def test_a_kernel_that_dies_twice_fails_with_what_it_printed_and_no_third_start(root_conftest):
    calls, warned = [], []
    start = root_conftest.retrying_kernel_start(flaky_start(5, calls), warn=warned.append)
    with pytest.raises(RuntimeError, match=r"(?s)twice; the kernel printed:.*Address already in use \(start 2\)"):
        start(kernel_name="k")
    assert calls == ["k", "k"] and len(warned) == 1


def test_a_kernel_that_starts_is_started_once_without_a_warning(root_conftest):
    calls, warned = [], []
    start = root_conftest.retrying_kernel_start(flaky_start(0, calls), warn=warned.append)
    assert start(kernel_name="k") == ("km", "kc") and calls == ["k"] and warned == []


def test_nbval_starts_its_kernels_through_the_retry():
    import nbval.kernel

    assert getattr(nbval.kernel.start_new_kernel, "retries", False), "conftest.pytest_configure did not wrap it"
