"""The shape of every driver's result, checked before any property check looks at it.

A driver (public, in the assignment's ``drivers.py``) runs in the student's
process and returns plain data. Student code shares that process, so the data
can be anything: fewer records than calls, ``None`` where numbers belong, a
dict where a string belongs, nesting thousands deep. Each question therefore
declares the exact shape its driver produces, as a :class:`Schema` built from
the grader's inputs, and :func:`parse` checks the whole result against it
before the question's check runs:

- the driver's own structure must fit exactly (the number of records equal to
  the number of calls the driver makes, the keys it writes): anything else is
  :class:`Malformed` and the question scores 0 with the reason "malformed
  result" -- never fewer cases checked, never a crash in a check;
- inside a :class:`Call` record sits what the student's function returned (or
  the exception it raised). A value of the wrong type, shape or with NaNs is a
  wrong answer *for that call*: it becomes an :class:`Outcome` whose
  ``failure`` says what was wrong, and the check counts it as a failed case.

Checks then receive typed data (NumPy arrays, :class:`Outcome` lists) and
never need to guard against odd input themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_ELEMENTS = 10_000_000  # numbers in one returned array


class Malformed(Exception):
    """The result does not have the structure the driver builds (the notebook interfered with the driver)."""


class Invalid(Exception):
    """A value does not have the type, shape or finiteness the question asks for; the message says how."""


@dataclass(frozen=True)
class Outcome:
    """One call of a student's function: its checked ``value``, or the ``failure`` that replaces it."""

    value: Any = None
    failure: str | None = None  # "raised ValueError: ..." or "returned shape (3,), expected (5,)"
    exception: str | None = None  # the exception's type name when the call raised

    @property
    def ok(self) -> bool:
        return self.failure is None

    def get(self, name: str):
        """The value, or :class:`course_grader.checks.Wrong` naming ``name`` and the failure."""
        from .checks import Wrong

        if self.failure is not None:
            raise Wrong(f"{name} {self.failure}")
        return self.value


class Schema:
    """What one part of a driver's result must look like; ``parse`` returns it typed or raises."""

    def parse(self, raw, where: str):  # pragma: no cover - interface
        raise NotImplementedError


def _describe(raw) -> str:
    if isinstance(raw, list):
        return f"a list of {len(raw)} items"
    if isinstance(raw, dict):
        return "a dict"
    if raw is None:
        return "None"
    return type(raw).__name__


def _numbers(raw) -> tuple[int, ...]:
    """The shape of ``raw`` if it is a number or rectangular nested lists of numbers (bools allowed), else Invalid.

    Iterative (no recursion limit) and bounded by ``MAX_ELEMENTS``; strings, None, dicts and ragged lists are
    refused here, before NumPy could turn a string into a number or a ragged list into an object array.
    """
    shape: list[int] = []
    level = [raw]
    count = 1
    while True:
        if all(isinstance(x, (int, float)) for x in level):  # bool is an int
            return tuple(shape)
        bad = [x for x in level if not isinstance(x, (list, int, float))]
        if bad:
            raise Invalid(f"should be numbers, got {_describe(bad[0])}" + (" inside" if shape else ""))
        if not all(isinstance(x, list) for x in level):
            raise Invalid("is a ragged list (numbers and lists mixed), not an array")
        lengths = {len(x) for x in level}
        if len(lengths) != 1:
            raise Invalid("is a ragged list (rows of different lengths), not an array")
        n = lengths.pop()
        count *= max(n, 1)
        if count > MAX_ELEMENTS:
            raise Invalid(f"has more than {MAX_ELEMENTS} numbers")
        shape.append(n)
        level = [y for x in level for y in x]
        if n == 0:
            return tuple(shape)


@dataclass(frozen=True)
class Array(Schema):
    """Numbers of an exact ``shape`` (``None`` in a dimension: any length), as a float64 array."""

    shape: tuple[int | None, ...] | None = None
    finite: bool = True

    def parse(self, raw, where: str) -> np.ndarray:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            shape: tuple[int, ...] = ()
        else:
            shape = _numbers(raw)
        if self.shape is not None and (
            len(shape) != len(self.shape)
            or any(e is not None and e != s for s, e in zip(shape, self.shape, strict=True))
        ):
            expected = tuple("any" if e is None else e for e in self.shape)
            raise Invalid(f"has shape {shape}, expected {expected}")
        array = np.asarray(raw, dtype=np.float64)
        if self.finite and not np.all(np.isfinite(array)):
            raise Invalid("contains NaN or infinite values")
        return array


def Number(finite: bool = True) -> Array:  # noqa: N802 - reads as a type in schemas
    """A single number (a 0-d array, a Python float or a one-element tensor's item)."""
    return Array((), finite)


@dataclass(frozen=True)
class Flag(Schema):
    """True or False."""

    def parse(self, raw, where: str) -> bool:
        if not isinstance(raw, bool):
            raise Invalid(f"should be True or False, got {_describe(raw)}")
        return raw


@dataclass(frozen=True)
class Weights(Schema):
    """Tensors packed by the driver's ``h.arrays`` (an .npz), with exactly these keys and shapes."""

    shapes: Mapping[str, tuple[int, ...]]

    def parse(self, raw, where: str) -> dict[str, np.ndarray]:
        from .checks import Wrong, load_arrays

        try:
            arrays = load_arrays(raw, "the returned weights", {k: tuple(v) for k, v in self.shapes.items()})
        except Wrong as err:
            raise Invalid(f"is not the network's weights ({err})") from None
        for key, array in arrays.items():
            if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
                raise Invalid(f"holds NaN or infinite values in {key}")
        return arrays


_CALL_KEYS = {"value"}
_ERROR_KEYS = {"error", "exception", "traceback"}


@dataclass(frozen=True)
class Call(Schema):
    """A record of one call of the student's function (``h.call``): its value, checked by ``value``, or its error."""

    value: Schema

    def parse(self, raw, where: str) -> Outcome:
        if not isinstance(raw, dict):
            raise Malformed(f"{where} should be a call record, got {_describe(raw)}")
        keys = set(raw)
        if keys == _CALL_KEYS:
            try:
                return Outcome(self.value.parse(raw["value"], where))
            except Invalid as err:
                return Outcome(failure=f"returned a value that {err}")
            except Malformed as err:  # a list or dict the student's function returned, not the driver's
                return Outcome(failure=f"returned a value that does not fit: {str(err).replace(where, 'it')}")
        if "error" in keys and keys <= _ERROR_KEYS and all(isinstance(raw[k], str) for k in keys):
            return Outcome(failure=f"raised {raw['error'][:300]}", exception=raw.get("exception"))
        raise Malformed(f"{where} is neither a value nor an error record")


@dataclass(frozen=True)
class ListOf(Schema):
    """Exactly ``length`` items, each of schema ``item``."""

    item: Schema
    length: int

    def parse(self, raw, where: str) -> list:
        if not isinstance(raw, list):
            raise Malformed(f"{where} should be a list of {self.length} items, got {_describe(raw)}")
        if len(raw) != self.length:
            raise Malformed(f"{where} holds {len(raw)} items where the driver makes {self.length}")
        return [self.item.parse(x, f"{where}[{i}]") for i, x in enumerate(raw)]


@dataclass(frozen=True)
class Fields(Schema):
    """A dict with exactly these keys, each of its own schema."""

    fields: Mapping[str, Schema]

    def parse(self, raw, where: str) -> dict:
        if not isinstance(raw, dict):
            raise Malformed(f"{where} should be a dict with keys {sorted(self.fields)}, got {_describe(raw)}")
        if set(raw) != set(self.fields):
            raise Malformed(f"{where} has keys {sorted(map(str, raw))[:8]}, the driver writes {sorted(self.fields)}")
        return {key: schema.parse(raw[key], f"{where}[{key!r}]") for key, schema in self.fields.items()}


def parse(schema: Schema, raw) -> Any:
    """``raw`` checked against ``schema`` and typed; :class:`Malformed` if it does not fit.

    A value that does not fit outside any :class:`Call` record was built by the driver itself, so it is
    malformed too.
    """
    try:
        return schema.parse(raw, "the result")
    except Invalid as err:
        raise Malformed(f"the result {err}") from None
    except RecursionError:
        raise Malformed("the result is nested too deeply") from None


def values(outcomes: list[Outcome], name: str) -> np.ndarray:
    """Stack the values of many calls into one array; the first failed call becomes the check's message."""
    from .checks import Wrong

    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise Wrong(
            f"{name} {failed[0].failure}" + (f" (and {len(failed) - 1} more calls failed)" if len(failed) > 1 else "")
        )
    return np.stack([o.value for o in outcomes]) if outcomes else np.zeros((0,))
