"""The fast-mode switch and the seed override: the one place that reads ``COURSE_FAST`` and ``COURSE_SEED``.

Every notebook shows ``FAST = fast_mode()`` in its setup cell and sizes its
budgets (episodes, steps, samples) with :func:`budget`. The test command sets
``COURSE_FAST=1`` so that CI runs each notebook in seconds; students run the
full budgets. Only the sizes change, never the code path.
"""

from __future__ import annotations

import os

ENV_VAR = "COURSE_FAST"
SEED_VAR = "COURSE_SEED"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def fast_mode() -> bool:
    """Return True when ``COURSE_FAST`` asks for the small CI budgets.

    Accepted values (case-insensitive): ``1/true/yes/on`` and
    ``0/false/no/off`` or unset. Anything else is a typo we refuse to guess at.
    """
    raw = os.environ.get(ENV_VAR, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(
        f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not understood; "
        f"use {ENV_VAR}=1 for the fast CI budgets or {ENV_VAR}=0 (or unset) for full runs."
    )


def budget(full, fast):
    """Pick a budget: ``fast`` in fast mode, ``full`` otherwise.

    ``budget(full=500, fast=20)`` reads as "500 episodes, 20 under CI". Both
    must be positive numbers of the same kind and the fast budget may not be
    the larger one, so a swapped pair fails loudly instead of silently making
    CI slow.
    """
    for name, value in (("full", full), ("fast", fast)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"budget({name}={value!r}): budgets must be positive numbers")
    if type(full) is not type(fast):
        raise TypeError(f"budget(full={full!r}, fast={fast!r}): give both as int or both as float")
    if fast > full:
        raise ValueError(f"budget(full={full!r}, fast={fast!r}): the fast budget is larger than the full one")
    return fast if fast_mode() else full


def course_seed(default: int) -> int:
    """The notebook's seed: ``default``, unless ``COURSE_SEED`` names another one.

    Every notebook's setup cell reads ``SEED = course_seed(0)`` and derives every
    other seed it uses from ``SEED``, so ``COURSE_SEED=7`` reruns the whole notebook
    on fresh randomness. ``benchmarks/notebook_seeds.py`` does that to check that no
    assert holds only on the seed the notebook ships with.
    """
    if isinstance(default, bool) or not isinstance(default, int) or default < 0:
        raise ValueError(f"course_seed({default!r}): the default seed must be a non-negative int")
    raw = os.environ.get(SEED_VAR, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ValueError(
            f"{SEED_VAR}={os.environ[SEED_VAR]!r} is not a seed; use a non-negative integer, e.g. {SEED_VAR}=1"
        )
    return int(raw)
