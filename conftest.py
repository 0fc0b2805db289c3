"""Repository-wide pytest set-up: at the end of a run, each notebook's wall-clock time.

nbval runs a notebook as one test per cell; this adds the cells' times (kernel start included)
per notebook and prints them as a table, so `python3 course.py test --full` reports what each
notebook costs a student. With two workers the notebooks share the CPU, so times are upper bounds.
A notebook kernel that dies before it answers is started once more (retrying_kernel_start).
"""

from __future__ import annotations

import os
from collections import defaultdict

_seconds: defaultdict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _seconds:
        return
    mode = "fast" if os.environ.get("COURSE_FAST", "").strip().lower() in {"1", "true", "yes", "on"} else "full"
    terminalreporter.section(f"notebook wall-clock, {mode} mode")
    for path, seconds in sorted(_seconds.items()):
        terminalreporter.write_line(f"{seconds:8.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_seconds.values()):8.1f} s  in all ({len(_seconds)} notebooks)")


def pytest_collection_modifyitems(config, items):
    """System tests (marker ``system``) run only in the last step of `python3 course.py test`, which sets
    COURSE_SYSTEM_TESTS=1 (course.test_steps): they take minutes and start servers and Unix accounts. That step
    collects only the files in course.SYSTEM_TEST_FILES, so a `system` test anywhere else stops the run here."""
    import pytest

    system_items = [item for item in items if "system" in item.keywords]
    elsewhere = _load_root_module("course").system_tests_elsewhere([item.nodeid for item in system_items])
    if elsewhere:
        raise pytest.UsageError(
            f"system tests in {', '.join(elsewhere)}: add the file to SYSTEM_TEST_FILES in course.py, "
            "or the system step of `python3 course.py test` never runs them"
        )
    if os.environ.get("COURSE_SYSTEM_TESTS") == "1":
        return
    skip = pytest.mark.skip(
        reason="system test: run by the last step of `python3 course.py test` (COURSE_SYSTEM_TESTS=1)"
    )
    for item in system_items:
        item.add_marker(skip)


def _load_root_module(name: str, folder: str = ""):
    """Import ``<folder>/<name>.py`` of this repository by path (course.py, docs/site_cache.py)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def retrying_kernel_start(start, warn=None):
    """nbval's ``start_new_kernel`` (``start``), made to try a second time when the kernel dies before it answers.

    No cell has run then: the notebook is not at fault, the machine is (seen once in CI: a kernel of a full-mode
    run died within 2 s of its start, and nbval reported each of the notebook's 40 cells as an error). nbval sends
    the kernel's stderr to /dev/null; here it goes to a temporary file, whose end is shown in a warning when a
    start is retried, and in the error when the second start fails too.
    """
    import tempfile
    import warnings

    warn = warn or (lambda message: warnings.warn(message, RuntimeWarning, stacklevel=2))

    def start_with_retry(*args, **kwargs):
        for attempt in (1, 2):
            stderr = tempfile.TemporaryFile("w+")  # the kernel writes to its own copy of this file descriptor
            try:
                return start(*args, **{**kwargs, "stderr": stderr})
            except RuntimeError as err:
                stderr.seek(0)
                printed = stderr.read()[-3000:].strip() or "(nothing)"
                if attempt == 2:
                    raise RuntimeError(f"{err}, twice; the kernel printed:\n{printed}") from err
                warn(f"a notebook kernel died at start-up ({err}); starting it again. It printed:\n{printed}")
            finally:
                stderr.close()

    start_with_retry.retries = True
    return start_with_retry


def install_kernel_retry():
    """Make nbval start every notebook kernel through retrying_kernel_start (once per process). Called by
    pytest_configure below, and by the nbval run that tests/test_site.py starts with a conftest of its own."""
    try:
        import nbval.kernel
    except ImportError:  # pragma: no cover - nbval is a test dependency
        return
    if not getattr(nbval.kernel.start_new_kernel, "retries", False):
        nbval.kernel.start_new_kernel = retrying_kernel_start(nbval.kernel.start_new_kernel)


def pytest_configure(config):
    """Keep the outputs nbval produces, for the course website (docs/site_cache.py; `python3 course.py site`);
    start notebook kernels with one retry (retrying_kernel_start)."""
    config.addinivalue_line("markers", "site: builds the course website and checks it in a browser (run last)")
    config.addinivalue_line(
        "markers", "system: starts real servers, Unix accounts or clusters; skipped unless COURSE_SYSTEM_TESTS=1"
    )

    install_kernel_retry()

    site_cache = _load_root_module("site_cache", "docs")
    if site_cache.OutputRecorder.enabled():
        folder = site_cache.cache_dir(site_cache.site_mode())
        config.pluginmanager.register(site_cache.OutputRecorder(folder), "site_cache_recorder")
