"""Executed notebooks for the course website, recorded while the tests run them.

The test commands already execute every notebook under nbval: ``python3 course.py test`` in fast mode,
``python3 course.py test --full`` in full mode. Executing them all a third time to build the website would
cost another 5 to 25 minutes, so the pytest plugin below keeps what nbval produced: it collects each code
cell's outputs and, when every cell of a notebook has passed, stores the executed notebook in a
jupyter-cache (the cache myst-nb reads with ``nb_execution_mode = "cache"``, see docs/conf.py).

jupyter-cache keys a notebook by its code cells (source and metadata) and its kernelspec, not by its
markdown, so a prose edit keeps the cached outputs and a code edit makes myst-nb execute that notebook
again. What the key cannot see, the folder name holds: one cache per mode (fast and full budgets give
different outputs) and per version of the code the notebooks import (``course_utils`` and the pinned
dependencies), so the site never shows outputs that the current code would not produce.

This module is imported by the root conftest.py (the pytest plugin), by docs/conf.py (the cache folder)
and by tests/test_site.py. It uses only nbformat and jupyter-cache from the course's environment.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE_ROOT = ROOT / "_build" / "cache"
# What the notebooks' outputs depend on besides their own code cells.
CODE_INPUTS = ("course_utils", "requirements/constraints.txt")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"  # ipykernel's own default
# tqdm's text bar: "desc:  40%|####      | 4/10 [00:01<00:02,  3.1it/s]" (stderr, redrawn with \r).
_TQDM_LINE = re.compile(r"\d+%\|.*\|\s*\d+(?:\.\d+)?[kMG]?/\S+\s*\[|\|\s*\d+/\d+\s*\[\d")


def site_mode(environ=os.environ) -> str:
    """ "fast" when COURSE_FAST asks for the small budgets (course_utils.config's rule), else "full"."""
    return "fast" if environ.get("COURSE_FAST", "").strip().lower() in {"1", "true", "yes", "on"} else "full"


def code_fingerprint(root: Path = ROOT) -> str:
    """A short hash of every file the notebooks import from this repository, and of the pinned versions."""
    digest = hashlib.sha256()
    for name in CODE_INPUTS:
        path = root / name
        files = sorted(p for p in path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_dir(mode: str, root: Path = ROOT) -> Path:
    """The jupyter-cache folder for ``mode`` ("fast" or "full") and the current code."""
    if mode not in ("fast", "full"):
        raise ValueError(f"mode must be 'fast' or 'full', not {mode!r}")
    return root / "_build" / "cache" / mode / code_fingerprint(root)


def is_progress_output(output: dict) -> bool:
    """A progress bar: tqdm's notebook widget, or a stderr stream made only of tqdm's text bars."""
    if output.get("output_type") in ("display_data", "execute_result"):
        return WIDGET_VIEW in output.get("data", {})
    if output.get("output_type") == "stream" and output.get("name") == "stderr":
        lines = [line for line in re.split(r"[\r\n]+", output.get("text", "")) if line.strip()]
        return bool(lines) and all(_TQDM_LINE.search(line) for line in lines)
    return False


def strip_progress(outputs: list) -> list:
    """``outputs`` without progress bars (they would show as dead widgets or stray text on the website)."""
    return [out for out in outputs if not is_progress_output(out)]


def executed_notebook(path: Path, outputs: dict[int, list]):
    """The notebook at ``path`` with the recorded ``outputs`` (code-cell index -> nbval's outputs) filled in."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    if sorted(outputs) != list(range(len(code_cells))):
        raise ValueError(f"{path}: outputs recorded for {len(outputs)} of {len(code_cells)} code cells")
    for number, cell in enumerate(code_cells):
        cell.execution_count = number + 1
        cell.outputs = []
        for out in strip_progress(outputs[number]):
            out = copy.deepcopy(dict(out))
            if out["output_type"] == "execute_result":
                out["execution_count"] = number + 1
            if out["output_type"] == "error":
                out.setdefault("traceback", [])
            cell.outputs.append(nbformat.from_dict(out))
    nbformat.validate(nb)
    return nb


@contextlib.contextmanager
def _locked(folder: Path):
    """One writer at a time per cache (pytest-xdist's workers finish notebooks concurrently)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".write-lock", "w") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: SQLite's own locking, retried by jupyter-cache's caller
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def store(folder: Path, path: Path, nb, seconds: float | None = None) -> int:
    """Store the executed notebook ``nb`` (read from ``path``) in the jupyter-cache at ``folder``; its record id."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    with _locked(folder):
        cache = get_cache(folder)
        record = cache.cache_notebook_bundle(
            CacheBundleIn(
                nb,
                str(Path(path).resolve()),
                data={"execution_seconds": seconds, "by": "nbval", "worker": os.environ.get("PYTEST_XDIST_WORKER", "")},
            ),
            check_validity=True,
            overwrite=True,
        )
        return record.pk


class OutputRecorder:
    """pytest plugin: keeps nbval's outputs per notebook and caches each notebook whose cells all passed.

    Active unless COURSE_SEED is set (a notebook on another seed is not what the website shows) or
    ``COURSE_SITE_RECORD=0``. Notebooks outside ``root`` (a test's temporary copies) are not recorded.
    """

    def __init__(self, folder: Path, root: Path = ROOT):
        self.folder = folder
        self.root = Path(root).resolve()
        self.outputs: dict[str, dict[int, list]] = {}
        self.seconds: dict[str, float] = {}
        self.failed: set[str] = set()
        self.stored: list[str] = []

    @staticmethod
    def enabled(environ=os.environ) -> bool:
        return not environ.get("COURSE_SEED", "").strip() and environ.get("COURSE_SITE_RECORD", "1") != "0"

    def _notebook_cell(self, item):
        path = Path(str(item.path))
        if path.suffix != ".ipynb" or not hasattr(item, "cell_num") or self.root not in path.resolve().parents:
            return None
        return str(path.resolve())

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item):
        """The kernel nbval starts for a notebook shows figures inline, as in JupyterLab, even though the test
        session itself draws with Agg (tests/conftest.py): otherwise no figure would reach the website."""
        if self._notebook_cell(item) is None:
            yield
            return
        saved = os.environ.get("MPLBACKEND")
        os.environ["MPLBACKEND"] = INLINE_BACKEND
        yield
        if saved is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = saved

    def pytest_runtest_makereport(self, item, call):
        path = self._notebook_cell(item)
        if path is None:
            return
        self.seconds[path] = self.seconds.get(path, 0.0) + call.duration
        if call.excinfo is not None:  # a failed or skipped cell: the notebook is not complete
            self.failed.add(path)
        elif call.when == "call":
            self.outputs.setdefault(path, {})[item.cell_num] = list(item.test_outputs or [])

    def pytest_runtest_teardown(self, item, nextitem):
        path = self._notebook_cell(item)
        if path is None or (nextitem is not None and self._notebook_cell(nextitem) == path):
            return
        outputs = self.outputs.pop(path, {})
        if path in self.failed:
            return
        try:
            nb = executed_notebook(Path(path), outputs)
        except ValueError:  # not every cell ran (e.g. a -k selection): nothing to store
            return
        try:
            store(self.folder, Path(path), nb, self.seconds.get(path))
        except Exception as err:  # the website would execute this notebook itself: a warning, not a failure
            warnings.warn(f"could not cache the outputs of {path} for the website: {err!r}", stacklevel=1)
            return
        self.stored.append(path)
