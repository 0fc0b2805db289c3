"""Property-based fuzzing of every hidden check: no result a notebook can produce crashes a check or beats the stub.

For each question of each assignment, Hypothesis builds results of two kinds and
hands them to :func:`course_grader.grading.check_question` exactly as the
grader does after a sandbox run:

- arbitrary JSON-like data (None, booleans, huge and non-finite numbers, text
  with lone surrogates, nested lists and dicts) -- what a notebook that tampers
  with the driver can send;
- results that follow the question's schema (right lengths, call records,
  arrays of the right shape) but with arbitrary numbers, errors and odd values
  inside -- what a wrong or cheating implementation can return;
- and, tried every time, degenerate implementations: every call raising the
  same exception, returning zeros, ones, a huge constant or None.

The properties: the check never raises (no "grader-error"), and no such result
scores more than the released stub (every call raising NotImplementedError).
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_grader.grading import check_question
from course_grader.schema import Array, Call, Fields, Flag, ListOf, Schema, Weights
from course_grader.spec import assignment_names, load_assignment

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"
EXAMPLES = int(os.environ.get("COURSE_FUZZ_EXAMPLES", "25"))
SEED = 20_261_203

_text = st.text(st.characters(codec=None, categories=None), max_size=12)  # lone surrogates included
_number = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 1e308, -1e-320]),
)
json_like = st.recursive(
    st.none() | st.booleans() | _number | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=24,
)


def _nested(shape: tuple[int, ...], element) -> st.SearchStrategy:
    """Nested lists of ``shape`` (a free dimension gets 0-6 items) holding ``element``s; large arrays repeat a row."""
    if not shape:
        return element
    first, rest = shape[0], shape[1:]
    inner = _nested(rest, element)
    if first is None:
        return st.lists(inner, max_size=6)
    if first <= 8:
        return st.lists(inner, min_size=first, max_size=first)
    return st.lists(inner, min_size=1, max_size=3).map(lambda rows, n=first: (rows * n)[:n])


def _array(schema: Array) -> st.SearchStrategy:
    shape = schema.shape if schema.shape is not None else (None,)
    elements = st.one_of(st.floats(-1e6, 1e6), st.integers(-5, 5), st.just(0.0), st.floats(allow_nan=True))
    wrong_shape = _nested(tuple(None if s is None else s + 1 for s in shape) or (2,), st.floats(-10, 10))
    return st.one_of(_nested(shape, elements), wrong_shape, json_like)


def _npz(shapes) -> st.SearchStrategy:
    def pack(seed_and_scale):
        seed, scale = seed_and_scale
        rng = np.random.default_rng(seed)
        arrays = {k: (rng.normal(size=v) * scale).astype(np.float32) for k, v in shapes.items()}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return {"__npz__": base64.b64encode(buffer.getvalue()).decode("ascii")}

    garbage = st.binary(max_size=64).map(lambda b: {"__npz__": base64.b64encode(b).decode("ascii")})
    return st.one_of(st.tuples(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.1, 1.0, 100.0])).map(pack), garbage)


def shaped(schema: Schema) -> st.SearchStrategy:
    """Results that follow ``schema``'s structure, with arbitrary contents (and now and then a wrong part)."""
    if isinstance(schema, ListOf):
        n = schema.length
        right = (
            st.lists(shaped(schema.item), min_size=n, max_size=n)
            if n <= 8
            else st.lists(shaped(schema.item), min_size=1, max_size=3).map(lambda xs, n=n: (xs * n)[:n])
        )
        return st.one_of(right, right, right, st.lists(shaped(schema.item), max_size=3), json_like)
    if isinstance(schema, Fields):
        return st.fixed_dictionaries({k: shaped(v) for k, v in schema.fields.items()}) | json_like
    if isinstance(schema, Call):
        error = st.fixed_dictionaries(
            {"error": _text, "exception": st.sampled_from(["ValueError", "NotImplementedError", "TypeError"]) | _text}
        )
        return st.one_of(st.fixed_dictionaries({"value": shaped(schema.value)}), error, json_like)
    if isinstance(schema, Array):
        return _array(schema)
    if isinstance(schema, Weights):
        return _npz(schema.shapes) | json_like
    if isinstance(schema, Flag):
        return st.booleans() | json_like
    raise AssertionError(f"no strategy for {type(schema).__name__}: add one to tests/test_grader_fuzz.py")


def uniform(schema: Schema, answer: str):
    """A degenerate implementation's result: every call gives the same ``answer``.

    ``raise:<Exception>`` raises it; ``zeros``/``ones``/``huge`` return a constant array of the right shape;
    ``none`` returns None. The stub is ``uniform(schema, "raise:NotImplementedError")``.
    """
    if isinstance(schema, ListOf):
        return [uniform(schema.item, answer) for _ in range(schema.length)]
    if isinstance(schema, Fields):
        return {k: uniform(v, answer) for k, v in schema.fields.items()}
    if isinstance(schema, Call):
        if answer.startswith("raise:"):
            name = answer.split(":", 1)[1]
            return {"error": f"{name}: degenerate", "exception": name, "traceback": ""}
        return {"value": None if answer == "none" else _constant(schema.value, answer)}
    if isinstance(schema, Array):  # a number the driver counts itself (calls back into the grader's functions):
        return _constant(schema, "zeros")  # a degenerate implementation that returns at once makes none
    raise AssertionError(f"a {type(schema).__name__} outside a call record: the stub's result is not defined")


def _constant(schema: Schema, answer: str):
    fill = {"zeros": 0.0, "ones": 1.0, "huge": 1e12}[answer]
    if isinstance(schema, Array):
        shape = tuple(3 if s is None else s for s in (schema.shape or ()))
        return np.full(shape, fill).tolist()
    if isinstance(schema, Weights):
        buffer = io.BytesIO()
        np.savez(buffer, **{k: np.full(v, fill, dtype=np.float32) for k, v in schema.shapes.items()})
        return {"__npz__": base64.b64encode(buffer.getvalue()).decode("ascii")}
    if isinstance(schema, Flag):
        return bool(fill)
    if isinstance(schema, Fields):
        return {k: _constant(v, answer) for k, v in schema.fields.items()}
    if isinstance(schema, ListOf):
        return [_constant(schema.item, answer) for _ in range(schema.length)]
    return fill


DEGENERATE = [
    "raise:NotImplementedError",
    "raise:ValueError",
    "raise:TypeError",
    "raise:RuntimeError",
    "zeros",
    "ones",
    "huge",
    "none",
]


QUESTIONS = [(name, q.id) for name in assignment_names(SOLUTIONS) for q in load_assignment(SOLUTIONS, name).questions]


@pytest.mark.parametrize(("assignment", "question"), QUESTIONS, ids=[f"{a}:{q}" for a, q in QUESTIONS])
def test_no_result_crashes_a_check_or_beats_the_stub(assignment, question):
    spec = load_assignment(SOLUTIONS, assignment)
    q = spec.question(question)
    inputs = q.make_inputs(np.random.default_rng([SEED, spec.questions.index(q)]))
    schema = q.result(inputs)
    stub_fraction, stub_status, _, _ = check_question(q, inputs, uniform(schema, "raise:NotImplementedError"))
    assert stub_status != "grader-error"
    for answer in DEGENERATE:  # each tried for sure, not left to chance
        fraction, status, messages, _ = check_question(q, inputs, uniform(schema, answer))
        assert status != "grader-error", f"{assignment}:{question}: the check crashed on '{answer}' answers"
        assert fraction <= stub_fraction + 1e-12, (
            f"{assignment}:{question}: an implementation whose every call gives '{answer}' scored {fraction:.3f}, "
            f"the stub {stub_fraction:.3f}: {messages}"
        )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.one_of(json_like, shaped(schema), shaped(schema)))
    def fuzz(raw):
        fraction, status, messages, _ = check_question(q, inputs, raw)  # raises if a check crashes
        assert status != "grader-error"
        assert all(isinstance(m, str) for m in messages)
        assert fraction <= stub_fraction + 1e-12, (
            f"{assignment}:{question}: a fuzzed result scored {fraction:.3f}, the stub {stub_fraction:.3f}: {messages}"
        )

    fuzz()
