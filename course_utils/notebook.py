"""The body of every notebook's setup cell, in one call."""

from __future__ import annotations

import torch

from .config import fast_mode
from .plotting import use_course_style
from .seeding import seed_everything
from .torch_setup import pick_device, set_torch_threads


def notebook_setup(seed: int, torch_threads: int = 1) -> torch.device:
    """Seed everything, set torch threads, apply the plot style, and say what was chosen.

    Returns the device to use (CUDA only if available). Notebooks call this
    once, in their setup cell, next to the visible ``FAST = fast_mode()`` line.
    """
    seed_everything(seed)
    set_torch_threads(torch_threads)
    use_course_style()
    device = pick_device()
    mode = "FAST (COURSE_FAST=1: small budgets for CI)" if fast_mode() else "full"
    print(
        f"seed={seed} | device={device} | torch {torch.__version__}, {torch.get_num_threads()} thread(s) | mode: {mode}"
    )
    return device
