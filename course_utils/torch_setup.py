"""Device choice and CPU thread count for the small networks of this course."""

from __future__ import annotations

import torch


def pick_device() -> torch.device:
    """CUDA if a GPU is available, else the CPU. Never hard-code the device."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_torch_threads(n: int = 1) -> int:
    """Set torch's intra-op CPU threads to ``n`` and return the previous value.

    For the small MLPs of RL, extra threads buy nothing even on an idle
    machine, and once two such processes share two cores (the test command
    runs two notebooks at once; a laptop is rarely idle) torch's default
    thread count makes a training step about 50 times slower, measured by
    ``python benchmarks/torch_threads.py``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"thread count must be a positive integer, got {n!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    return previous
