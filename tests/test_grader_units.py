"""The grader's building blocks, each on its own (fast; the end-to-end corpus is in test_grading.py)."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from course_grader.checks import (
    Rubric,
    Wrong,
    as_array,
    load_arrays,
    load_state_dict,
    mean_matches,
    means_agree,
    variance_matches,
)
from course_grader.course import Course, check_student_id
from course_grader.grading import question_points
from course_grader.notebooks import load_submission
from course_grader.release import ReleaseError, check_released_folder
from course_grader.runner import Helpers, plain
from course_grader.sandbox import (
    SandboxStatus,
    bubblewrap_command,
    python_read_only_paths,
    sandbox_env,
    sandbox_required_by_environment,
)
from course_grader.spec import SpecError, load_assignment
from course_grader.workflow import collect

REPO = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- statistical checks


def test_mean_test_accepts_unbiased_and_rejects_biased_estimates():
    rng = np.random.default_rng(0)
    exact = np.array([0.5, -1.0, 2.0])
    samples = exact + rng.normal(0, 3.0, size=(4000, 3))
    assert mean_matches(samples, exact).passed
    biased = mean_matches(samples + np.array([0.0, 0.0, 0.5]), exact)  # 0.5 bias = 10 standard errors
    assert not biased.passed and biased.worst_index == 2 and biased.worst_z > biased.threshold


def test_mean_test_false_alarm_rate_is_tiny():
    rng = np.random.default_rng(1)
    failures = sum(not mean_matches(rng.normal(0, 1, size=(200, 5)), np.zeros(5)).passed for _ in range(300))
    assert failures == 0, "with alpha = 1e-6 a correct estimator should essentially never fail"


def test_constant_estimates_must_equal_the_exact_value():
    assert mean_matches(np.ones((10, 2)), np.ones(2)).passed
    assert not mean_matches(np.ones((10, 2)), np.array([1.0, 1.1])).passed


def test_variance_checks_compare_with_the_predicted_and_with_a_reference():
    rng = np.random.default_rng(2)
    samples = rng.normal(0, 2.0, size=(5000, 2))  # total variance 8
    assert variance_matches(samples, np.zeros(2), 8.0)[0]
    assert not variance_matches(samples, np.zeros(2), 4.0)[0]
    assert not variance_matches(np.zeros((100, 2)), np.zeros(2), 8.0)[0], (
        "the exact value returned every time has no variance"
    )
    assert means_agree(rng.normal(1, 1, 3000), rng.normal(1, 1, 3000))[0]
    assert not means_agree(rng.normal(1, 1, 3000), rng.normal(1.3, 1, 3000))[0]


def test_rubric_sums_weighted_parts_and_explains_failures():
    rubric = Rubric()
    rubric.part("first", 2.0, True)
    rubric.part("second", 1.0, False, "off by a lot")
    verdict = rubric.verdict()
    assert verdict.fraction == pytest.approx(2 / 3)
    assert verdict.messages == ["✓ first", "✗ second: off by a lot"]


def test_as_array_reports_shape_and_nan_problems():
    assert as_array([[1, 2]], "x", (1, 2)).dtype == np.float64
    with pytest.raises(Wrong, match="shape"):
        as_array([1, 2, 3], "x", (2,))
    with pytest.raises(Wrong, match="NaN"):
        as_array([1.0, float("nan")], "x")
    with pytest.raises(Wrong, match="numbers"):
        as_array(["a", {}], "x")


# ----------------------------------------------------------------------------- weights without pickle


def _blob(mapping):
    return Helpers({}).arrays(mapping)


def test_state_dict_round_trip_into_the_graders_own_network():
    student = torch.nn.Linear(3, 2)
    grader = load_state_dict(_blob(student.state_dict()), torch.nn.Linear(3, 2))
    assert torch.equal(grader.weight, student.weight) and not grader.training


def test_state_dict_must_fit_the_graders_network():
    with pytest.raises(Wrong, match="missing keys"):
        load_state_dict(_blob({"weight": torch.zeros(2, 3)}), torch.nn.Linear(3, 2))
    with pytest.raises(Wrong, match="shape"):
        load_state_dict(_blob(torch.nn.Linear(4, 2).state_dict()), torch.nn.Linear(3, 2))
    with pytest.raises(Wrong, match="NaN"):
        load_state_dict(
            _blob({"weight": torch.full((2, 3), float("nan")), "bias": torch.zeros(2)}), torch.nn.Linear(3, 2)
        )


def test_weights_are_never_unpickled():
    buffer = io.BytesIO()
    np.savez(buffer, evil=np.array([object()], dtype=object))  # an object array needs pickle to load
    import base64

    with pytest.raises(Wrong):
        load_arrays({"__npz__": base64.b64encode(buffer.getvalue()).decode()})
    with pytest.raises(Wrong):
        load_arrays({"__npz__": "not base64 !"})


# ----------------------------------------------------------------------------- what the sandbox returns


def test_plain_turns_results_into_json_data():
    value = plain({"t": torch.tensor([1.0, 2.0]), "a": np.arange(3), "s": np.float32(1.5), "n": [True, None, "x"]})
    assert value == {"t": [1.0, 2.0], "a": [0, 1, 2], "s": 1.5, "n": [True, None, "x"]}
    json.dumps(value)
    with pytest.raises(TypeError, match="cannot be graded"):
        plain(object())


def test_helpers_report_student_exceptions_as_data():
    h = Helpers({"f": lambda x: 1 / x})
    assert h.call(h.student.f, 2) == {"value": 0.5}
    error = h.call(h.student.f, 0)
    assert error["exception"] == "ZeroDivisionError" and "division by zero" in error["error"]
    with pytest.raises(Exception, match="does not define `g`"):
        _ = h.student.g


# ----------------------------------------------------------------------------- untrusted notebooks


def test_broken_submissions_are_reported_not_raised(tmp_path):
    cases = {
        "cut.ipynb": b'{"cells": [{"cell_type": "code", "sou',
        "binary.ipynb": b"\xff\xfe\x00garbage",
        "list.ipynb": b"[1, 2, 3]",
        "empty.ipynb": b'{"cells": []}',
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert load_submission(tmp_path / name).problem, name
    weird = {
        "cells": [
            {"cell_type": "code", "source": ["x = ", "1"], "metadata": {"nbgrader": {"grade_id": 5}}},
            {"cell_type": "code", "source": 42},
            "not a cell",
            {"cell_type": "markdown", "source": "hi"},
        ],
        "metadata": {"kernelspec": {"name": "ir"}},
    }
    (tmp_path / "weird.ipynb").write_text(json.dumps(weird))
    sub = load_submission(tmp_path / "weird.ipynb")
    assert sub.problem is None and sub.code_cells == [(0, "x = 1", None)], (
        "odd cells are skipped, odd grade ids ignored"
    )


def test_student_ids_are_checked():
    assert check_student_id("anna.s-2") == "anna.s-2"
    for bad in ("../x", "", "a/b", ".hidden", "x" * 200):
        with pytest.raises(ValueError):
            check_student_id(bad)


def _course_copy(tmp_path) -> Course:
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    for folder in ("solutions", "assignments"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return Course.at(tmp_path)


def test_collect_reads_folders_and_file_names_and_refuses_unsafe_zips(tmp_path):
    course = _course_copy(tmp_path / "course")
    name = "a1_score_function"
    downloads = tmp_path / "downloads"
    (downloads / "anna").mkdir(parents=True)
    (downloads / "anna" / "whatever.ipynb").write_text("{}")
    (downloads / "ben_attempt2.ipynb").write_text("{}")
    (downloads / "notes.txt").write_text("x")
    result = collect(course, name, downloads, log=lambda *a: None)
    assert result["collected"] == ["anna", "ben"]
    assert (course.submission_dir("ben", name) / "a1_score_function.ipynb").is_file()
    assert (course.submission_dir("anna", name) / "timestamp.txt").is_file()
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escaped.ipynb", "{}")
    with pytest.raises(ValueError, match="unsafe path"):
        collect(course, name, archive, log=lambda *a: None)
    with pytest.raises(ValueError, match="student_id"):
        collect(course, name, downloads, pattern=r"^(\w+)", log=lambda *a: None)


# ----------------------------------------------------------------------------- release and specs


def test_release_check_catches_leaks_and_broken_stubs(tmp_path):
    import nbformat

    folder = tmp_path / "a1"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1")]
    nbformat.write(nb, folder / "a1.ipynb")
    with pytest.raises(ReleaseError, match="BEGIN SOLUTION"):
        check_released_folder(folder)
    nb.cells = [nbformat.v4.new_code_cell("state = # TODO")]
    nbformat.write(nb, folder / "a1.ipynb")
    (folder / "hidden_tests.py").write_text("")
    with pytest.raises(ReleaseError) as err:
        check_released_folder(folder)
    assert "hidden_tests.py was copied" in str(err.value) and "not valid Python" in str(err.value)


def test_hidden_tests_and_notebook_must_agree(tmp_path):
    course = _course_copy(tmp_path)
    spec_path = course.solutions / "a1_score_function" / "hidden_tests.py"
    spec_path.write_text(spec_path.read_text().replace('"train_policy",', '"train_policy_renamed",'))
    with pytest.raises(SpecError, match="train_policy"):
        question_points(load_assignment(course.solutions, "a1_score_function"))
    with pytest.raises(SpecError, match="no assignment"):
        load_assignment(course.solutions, "a9_missing")


# ----------------------------------------------------------------------------- the sandbox command


def test_sandbox_sees_the_interpreter_and_course_utils_but_not_the_repository():
    paths = python_read_only_paths()
    assert REPO not in paths and REPO / "solutions" not in paths
    assert any((p / "tabular.py").exists() for p in paths), "course_utils must be visible"
    status = SandboxStatus(True, "/usr/bin/bwrap", "0.8.0", "", frozenset({"--size", "--disable-userns"}))
    cmd = bubblewrap_command(
        status,
        "/venv/bin/python",
        Path("/x/runner.py"),
        Path("/x/job.json"),
        sandbox_env(True),
        __import__("course_grader.sandbox", fromlist=["SandboxLimits"]).SandboxLimits(),
    )
    for flag in (
        "--unshare-all",
        "--unshare-user",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--disable-userns",
    ):
        assert flag in cmd
    binds = [cmd[i + 1] for i, a in enumerate(cmd) if a in ("--bind", "--ro-bind")]
    assert str(REPO) not in binds and not any(b.startswith(str(REPO / "solutions")) for b in binds)
    assert "--bind" not in cmd, "nothing of the host is writable inside the sandbox"


def test_sandbox_requirement_follows_the_environment(monkeypatch):
    monkeypatch.delenv("COURSE_REQUIRE_SANDBOX", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert not sandbox_required_by_environment()
    monkeypatch.setenv("CI", "true")
    assert sandbox_required_by_environment()
    monkeypatch.setenv("COURSE_REQUIRE_SANDBOX", "0")
    assert not sandbox_required_by_environment()
    monkeypatch.setenv("COURSE_REQUIRE_SANDBOX", "1")
    monkeypatch.delenv("CI")
    assert sandbox_required_by_environment()


def test_cli_lists_assignments_and_checks_releases(capsys):
    from course_grader.cli import main

    assert main(["--root", str(REPO), "list"]) == 0
    out = capsys.readouterr().out
    assert "a1_score_function" in out and "by hand" in out and "sandbox:" in out
    assert main(["--root", str(REPO), "release"]) == 2, "release needs a name or --all"


def test_a_sandbox_that_cannot_start_is_the_graders_error_not_the_students():
    from course_grader.supervisor import SandboxStartError, Step, run_steps

    broken = SandboxStatus(True, "/bin/false", "0", "", frozenset())
    with pytest.raises(SandboxStartError, match="did not start"):
        run_steps([Step("cell", 5.0, source="x = 1", label="cell 1")], broken)


def test_trained_weights_can_be_evaluated_in_an_environment_the_grader_controls():
    """The path assignments 2-4 use: student weights -> the grader's own network class -> course evaluation."""
    from course_utils.evaluation import evaluate
    from course_utils.networks import CategoricalPolicy

    torch.manual_seed(0)
    student = CategoricalPolicy(4, 2, hidden=(8,))
    net = load_state_dict(_blob(student.state_dict()), CategoricalPolicy(4, 2, hidden=(8,)))
    mean, std = evaluate(net, "CartPole-v1", n_episodes=2, seed=10_000)
    assert 1 <= mean <= 500 and std >= 0
    with pytest.raises(Wrong, match="missing keys|shape"):
        load_state_dict(_blob(student.state_dict()), CategoricalPolicy(4, 2, hidden=(16,)))
