"""Plot style and learning curves that are honest about noise.

Learning curves are drawn as the mean over seeds with a ±1 standard deviation
band, after light smoothing, on labelled axes. Used from notebook 00 on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib as mpl
import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

FIGSIZE = (6.4, 3.6)

COURSE_STYLE = {
    "figure.figsize": FIGSIZE,
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "font.size": 10,
}


def use_course_style() -> None:
    """Apply the course's matplotlib style (figure size set once, here)."""
    mpl.rcParams.update(COURSE_STYLE)


def smooth(values: Sequence[float] | np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points, same length as the input.

    The first points average over what is available so far, so the curve
    starts where the data starts instead of being shifted or padded with zeros.
    Works along the last axis of a 2-D array (one row per seed).
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    x = np.asarray(values, dtype=float)
    if x.ndim not in (1, 2):
        raise ValueError(f"smooth expects 1-D or 2-D data, got shape {x.shape}")
    csum = np.cumsum(x, axis=-1)
    out = csum.copy()
    out[..., window:] = csum[..., window:] - csum[..., :-window]
    counts = np.minimum(np.arange(1, x.shape[-1] + 1), window)
    return out / counts


def returns_on_grid(result, grid: Sequence[float] | np.ndarray, window: int = 20) -> np.ndarray:
    """Training return at each step of ``grid``: the mean of the last ``window`` episodes finished by then.

    ``result`` is anything with ``episode_end_steps`` and ``episode_returns``
    (a ``TrainResult``). Putting every run on one grid of environment steps
    lets runs with different episode lengths share a learning-curve plot
    (notebooks 03–05, 08). Returns shape ``(len(grid),)``.
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    ends = np.asarray(result.episode_end_steps, dtype=float)
    returns = np.asarray(result.episode_returns, dtype=float)
    if ends.shape != returns.shape or ends.ndim != 1:
        raise ValueError(f"need one end step per episode return, got {ends.shape} and {returns.shape}")
    order = np.argsort(ends, kind="stable")
    ends, returns = ends[order], returns[order]
    grid = np.asarray(grid, dtype=float)
    finished = np.searchsorted(ends, grid, side="right")  # episodes finished by each grid step
    if grid.size and finished.min() == 0:
        raise ValueError(
            f"no episode had finished by step {grid[finished == 0][0]:g}; start the grid after the first episode "
            f"(step {ends[0]:g})"
            if ends.size
            else "the run has no finished episodes"
        )
    csum = np.concatenate([[0.0], np.cumsum(returns)])
    first = np.maximum(finished - window, 0)
    return (csum[finished] - csum[first]) / (finished - first)


def plot_learning_curves(
    curves: Mapping[str, Sequence[Sequence[float]] | np.ndarray],
    *,
    x: Sequence[float] | np.ndarray | None = None,
    smoothing: int = 1,
    xlabel: str = "episode",
    ylabel: str = "return",
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Plot each method's learning curve as mean ± std over seeds.

    ``curves`` maps a label to an array of shape ``(n_seeds, n_points)``: one
    row per seed, all rows of equal length. ``x`` gives the shared x values
    (default 1, 2, ...). Each row is smoothed with :func:`smooth` first.
    """
    if not curves:
        raise ValueError("plot_learning_curves needs at least one curve")
    if ax is None:
        # pyplot only here: importing it costs about 0.2 s of CPU, which every grading sandbox would pay at
        # start-up (it imports course_utils and runs notebook_setup, whose style needs only matplotlib itself).
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    for label, rows in curves.items():
        try:
            data = np.asarray(rows, dtype=float)
        except ValueError as err:
            raise ValueError(f"{label!r}: every seed needs the same number of points ({err})") from None
        if data.ndim == 1:
            data = data[None, :]
        if data.ndim != 2 or data.shape[1] == 0:
            raise ValueError(f"{label!r}: expected shape (n_seeds, n_points), got {data.shape}")
        xs = np.arange(1, data.shape[1] + 1) if x is None else np.asarray(x, dtype=float)
        if xs.shape != (data.shape[1],):
            raise ValueError(f"{label!r}: x has {xs.size} values but each seed has {data.shape[1]} points")
        data = smooth(data, smoothing)
        mean, std = data.mean(axis=0), data.std(axis=0)
        n = data.shape[0]
        (line,) = ax.plot(xs, mean, label=f"{label} ({n} seed{'s' if n != 1 else ''})")
        if n > 1:
            ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend()
    return ax
