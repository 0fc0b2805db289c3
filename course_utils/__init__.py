"""Shared helpers for the Deep RL and Gradient Estimation notebooks.

Each helper's docstring names the notebook that explains it. Importing this
package makes pygame headless (``SDL_VIDEODRIVER=dummy``) before pygame loads,
so environments render off-screen on machines with no display.
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from .config import budget, course_seed, fast_mode  # noqa: E402
from .notebook import notebook_setup  # noqa: E402
from .plotting import plot_learning_curves, returns_on_grid, smooth, use_course_style  # noqa: E402
from .progress import progress  # noqa: E402
from .render import animate, animation_gif, record_episode  # noqa: E402
from .rollout import Trajectory, discounted_return, mean_and_stderr, rollout  # noqa: E402
from .seeding import make_env, seed_everything  # noqa: E402
from .torch_setup import pick_device, set_torch_threads  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Trajectory",
    "animate",
    "animation_gif",
    "budget",
    "course_seed",
    "discounted_return",
    "fast_mode",
    "make_env",
    "mean_and_stderr",
    "notebook_setup",
    "pick_device",
    "plot_learning_curves",
    "progress",
    "record_episode",
    "returns_on_grid",
    "rollout",
    "seed_everything",
    "set_torch_threads",
    "smooth",
    "use_course_style",
]
