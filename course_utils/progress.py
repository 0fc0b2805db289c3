"""Progress bars for anything that runs longer than a few seconds.

``progress`` is tqdm's notebook-aware bar (a widget in JupyterLab, text in a
terminal). It redraws at most once a second, so a tight training loop pays
almost nothing for it and nbval's captured output stays small;
``python benchmarks/progress_overhead.py`` measures the cost per iteration.
``TQDM_DISABLE=1`` switches every bar off, the notebook widget included (tqdm's notebook
bar ignores that variable by itself); the course website's build sets it.
"""

from __future__ import annotations

import os

from tqdm.auto import tqdm

_OFF = {"1", "true", "yes", "on"}


def progress(iterable=None, *, desc: str | None = None, total: int | None = None, **kwargs):
    """Wrap ``iterable`` (or count to ``total``) with a progress bar.

    Use ``bar.set_postfix(ret=...)`` to show the latest return next to it.
    """
    if os.environ.get("TQDM_DISABLE", "").strip().lower() in _OFF:
        kwargs["disable"] = True
    kwargs.setdefault("mininterval", 1.0)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, desc=desc, total=total, **kwargs)
