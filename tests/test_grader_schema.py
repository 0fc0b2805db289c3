"""Result schemas, the cell budget and the cell cap: the grader's checks on what comes back from the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from course_grader.schema import Array, Call, Fields, Flag, ListOf, Malformed, Number, parse, values
from course_grader.supervisor import RunLimits, Step, run_steps

# ----------------------------------------------------------------------------- the driver's envelope


def test_fewer_or_more_records_than_calls_is_malformed():
    schema = ListOf(Call(Number()), 4)
    for raw in ([{"value": 1.0}] * 3, [{"value": 1.0}] * 5, [], None, {"0": {"value": 1.0}}):
        with pytest.raises(Malformed):
            parse(schema, raw)
    assert [o.value for o in parse(schema, [{"value": 1.0}] * 4)] == [1.0] * 4


def test_a_record_that_is_neither_value_nor_error_is_malformed():
    schema = ListOf(Call(Number()), 1)
    for record in (None, 1.0, [], {}, {"value": 1, "extra": 2}, {"error": ["not", "a", "string"]}, {"exception": "X"}):
        with pytest.raises(Malformed):
            parse(schema, [record])


def test_fields_must_be_exactly_the_drivers_keys():
    schema = Fields({"a": Call(Number()), "b": Flag()})
    assert parse(schema, {"a": {"value": 2}, "b": True}) == {"a": parse(Call(Number()), {"value": 2}), "b": True}
    for raw in ({"a": {"value": 2}}, {"a": {"value": 2}, "b": True, "c": 1}, {"a": {"value": 2}, "b": "yes"}):
        with pytest.raises(Malformed):
            parse(schema, raw)


def test_deep_nesting_is_malformed_not_a_crash():
    raw: list = []
    for _ in range(100_000):
        raw = [raw]
    with pytest.raises(Malformed):
        parse(ListOf(Call(Array((None,))), 1), raw)


# ----------------------------------------------------------------------------- what the student's function returned


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "got None"),
        ("1.5", "got str"),
        ([1.0, "2"], "got str"),
        ([[1.0, 2.0], [3.0]], "ragged"),
        ([1.0, [2.0]], "ragged"),
        ({"a": 1}, "got a dict"),
        ([1.0, 2.0], "shape (2,), expected (3,)"),
        ([1.0, float("nan"), 3.0], "NaN"),
        ([1.0, float("inf"), 3.0], "NaN or infinite"),
    ],
)
def test_a_wrong_value_fails_that_call_only(value, reason):
    outcomes = parse(ListOf(Call(Array((3,))), 2), [{"value": value}, {"value": [1, 2, 3]}])
    assert not outcomes[0].ok and reason in outcomes[0].failure
    assert outcomes[1].ok and outcomes[1].value.dtype == np.float64 and outcomes[1].value.tolist() == [1.0, 2.0, 3.0]


def test_an_error_record_keeps_the_exception_name():
    (outcome,) = parse(ListOf(Call(Number()), 1), [{"error": "ValueError: no", "exception": "ValueError"}])
    assert not outcome.ok and outcome.exception == "ValueError" and "raised ValueError: no" in outcome.failure


def test_values_stacks_or_names_the_first_failure():
    from course_grader.checks import Wrong

    ok = parse(ListOf(Call(Array((2,))), 3), [{"value": [k, k]} for k in range(3)])
    assert values(ok, "f").shape == (3, 2)
    bad = parse(ListOf(Call(Array((2,))), 3), [{"value": [0, 0]}, {"value": None}, {"error": "E: x"}])
    with pytest.raises(Wrong, match=r"f returned a value that should be numbers.*1 more calls failed"):
        values(bad, "f")


def test_a_huge_array_is_refused_before_numpy_sees_it():
    (outcome,) = parse(ListOf(Call(Array(None)), 1), [{"value": [[0.0] * 4000] * 4000}])
    assert not outcome.ok and "more than" in outcome.failure


# ----------------------------------------------------------------------------- time budgets and the cell cap


def test_cells_share_one_budget_and_the_drivers_still_run(tmp_path):
    """Many cells each under its own limit cannot hold the grader for long: together they get ``cell_budget``."""
    drivers = tmp_path / "drivers.py"
    drivers.write_text("def answer(inputs, h):\n    return {'value': h.student.x}\n")
    steps = [Step("cell", 5.0, source="import time; time.sleep(0.7); x = 1", label=f"cell {k}") for k in range(10)]
    steps.append(Step("driver", 10.0, question="q", driver="answer", inputs={}, label="question q"))
    report = run_steps(steps, None, limits=RunLimits(cell_budget=2.0, total_timeout=60.0), drivers=drivers)
    statuses = [r.status for r in report.records]
    assert statuses[:2] == ["ok", "ok"] and "not-run" in statuses[:10], statuses
    assert statuses.count("ok") <= 5, statuses
    assert statuses[-1] == "ok" and report.records[-1].result == {"value": 1}
    assert any("used up their total time of 2 s" in p for p in report.problems), report.problems
    assert report.seconds < 15


def test_a_step_limit_counts_cpu_time_and_the_clock_stops_a_waiting_step():
    """A step's limit is CPU time: one that waits longer than its limit, without computing, still finishes (a busy
    machine is not the student's fault); one that waits for ever is stopped after wall_slack × its limit; a busy
    loop is stopped by its CPU time, long before a large wall_slack."""
    sleepy = [Step("cell", 1.0, source="import time; time.sleep(2.0); x = 1", label="cell 1")]
    report = run_steps(sleepy, None, limits=RunLimits(wall_slack=4.0))
    assert report.records[0].status == "ok", report.records[0].error

    stuck = [Step("cell", 1.0, source="import time; time.sleep(600)", label="cell 1")]
    report = run_steps(stuck, None, limits=RunLimits(wall_slack=4.0, max_restarts=0))
    record = report.records[0]
    assert record.status == "timeout" and 3.5 < record.seconds < 10, (record.status, record.seconds)
    assert "more than 1 s (of CPU time, or 4 s on the clock)" in record.error

    loop = [Step("cell", 1.0, source="while True:\n    pass", label="cell 1")]
    report = run_steps(loop, None, limits=RunLimits(wall_slack=60.0, max_restarts=0))
    record = report.records[0]
    assert record.status == "timeout" and record.seconds < 20, (record.status, record.seconds)


def test_a_process_trees_cpu_time_is_measured():
    """The CPU time of a process and its descendants: a child that computes for a second shows up in its parent's."""
    from course_grader.supervisor import process_tree_cpu_seconds

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0:\n    pass\ntime.sleep(60)"
    before = process_tree_cpu_seconds(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", burn])
    try:
        deadline = time.monotonic() + 60
        while (own := process_tree_cpu_seconds(child.pid)) < 1.0:
            assert time.monotonic() < deadline, f"the child's busy second was not seen ({own} s)"
            time.sleep(0.1)
        assert process_tree_cpu_seconds(os.getpid()) - before >= 1.0, "the parent's tree includes its child"
    finally:
        child.kill()
        child.wait()
    assert process_tree_cpu_seconds(child.pid) is None, "a process that is gone has no CPU time to report"


def test_a_notebook_over_the_cell_cap_is_told(tmp_path):
    from course_grader.notebooks import MAX_CELLS, load_submission

    cells = [{"cell_type": "code", "source": f"x = {k}", "metadata": {}, "outputs": []} for k in range(MAX_CELLS + 5)]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    submission = load_submission(path)
    assert len(submission.code_cells) == MAX_CELLS
    assert submission.notes and f"{MAX_CELLS + 1} to {MAX_CELLS + 5} were neither run nor graded" in submission.notes[0]


def test_the_job_file_holds_no_inputs(tmp_path):
    """Inputs reach the sandbox with their step only: a cell that reads the job file before any driver finds none."""
    drivers = tmp_path / "drivers.py"
    drivers.write_text("def echo(inputs, h):\n    return {'value': inputs['public']}\n")
    steps = [
        Step("cell", 10.0, source="import sys, json; job = open(sys.argv[1]).read(); print(job)", label="cell"),
        Step("driver", 10.0, question="q", driver="echo", inputs={"public": 7}, label="question q"),
    ]
    report = run_steps(steps, None, drivers=drivers)
    job = json.loads(report.records[0].output)
    assert set(job) == {"preload", "drivers"}, job
    assert report.records[1].result == {"value": 7}


def test_non_finite_numbers_cross_the_protocol_and_are_refused_by_the_schema(tmp_path):
    drivers = tmp_path / "drivers.py"
    drivers.write_text(
        "def odd(inputs, h):\n    return [h.call(float, 'nan'), h.call(float, '-inf'), h.call(float, 2)]\n"
    )
    report = run_steps([Step("driver", 10.0, question="q", driver="odd", inputs={}, label="q")], None, drivers=drivers)
    outcomes = parse(ListOf(Call(Number()), 3), report.records[0].result)
    assert [o.ok for o in outcomes] == [False, False, True] and "NaN or infinite" in outcomes[0].failure
    assert np.isneginf(parse(ListOf(Call(Number(finite=False)), 3), report.records[0].result)[1].value)


def test_a_dict_or_list_the_students_function_returned_wrongly_fails_that_call_only():
    schema = ListOf(Call(Fields({"q": Array((2,))})), 2)
    outcomes = parse(schema, [{"value": {"q": [1, 2], "extra": 3}}, {"value": {"q": [1, 2]}}])
    assert not outcomes[0].ok and "does not fit" in outcomes[0].failure and outcomes[1].ok
