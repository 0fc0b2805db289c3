"""Progress bars for anything that runs longer than a few seconds.

``progress`` is tqdm's notebook-aware bar (a widget in JupyterLab, text in a
terminal). It redraws at most once a second, so a tight training loop pays
almost nothing for it and nbval's captured output stays small;
``python benchmarks/progress_overhead.py`` measures the cost per iteration.
tqdm's own ``TQDM_DISABLE=1`` switches every bar off.
"""

from __future__ import annotations

from tqdm.auto import tqdm


def progress(iterable=None, *, desc: str | None = None, total: int | None = None, **kwargs):
    """Wrap ``iterable`` (or count to ``total``) with a progress bar.

    Use ``bar.set_postfix(ret=...)`` to show the latest return next to it.
    """
    kwargs.setdefault("mininterval", 1.0)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, desc=desc, total=total, **kwargs)
