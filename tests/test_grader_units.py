"""The grader's building blocks, each on its own (fast; the end-to-end corpus is in test_grading.py)."""

from __future__ import annotations

import csv
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
    Verdict,
    Wrong,
    load_arrays,
    load_state_dict,
    mean_matches,
    means_agree,
    variance_matches,
)
from course_grader.collection import collect
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
    for bad in ("../x", "", "a/b", ".hidden", "x" * 200, "alice\n"):
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
        zf.writestr("/abs/olga.ipynb", "{}")
        zf.writestr("carl/a1_score_function.ipynb", '{"carl": 1}')
    result = collect(course, name, archive, log=lambda *a: None)  # one bad member is skipped, never fatal
    assert result["collected"] == ["carl"], "a zip holding one student's folder is that student"
    assert sum("unsafe path" in line for line in result["skipped"]) == 2, result["skipped"]
    assert not (tmp_path / "escaped.ipynb").exists() and not (tmp_path.parent / "escaped.ipynb").exists()
    with pytest.raises(ValueError, match="student_id"):
        collect(course, name, downloads, pattern=r"^(\w+)", log=lambda *a: None)


@pytest.fixture
def no_hang():
    """Fail (instead of hanging the suite) if collecting blocks, e.g. on a FIFO."""
    import signal

    def expire(*_):
        raise TimeoutError("collect blocked")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_collect_reads_regular_files_only_and_never_leaves_the_folder(tmp_path, no_hang):
    import os
    import unicodedata

    course = _course_copy(tmp_path / "course")
    name = "a1_score_function"
    solution = course.solutions / name / "a1_score_function.ipynb"
    downloads = tmp_path / "downloads"
    (downloads / "anna").mkdir(parents=True)
    (downloads / "anna" / "a1_score_function.ipynb").write_text('{"anna": 1}')
    (downloads / "eve").mkdir()
    (downloads / "eve" / "a1_score_function.ipynb").symlink_to(solution)  # full marks from the solutions
    (downloads / "mallory").symlink_to(downloads / "anna", target_is_directory=True)  # another student's work
    (downloads / "zero_a1.ipynb").symlink_to("/dev/zero")  # never ends
    os.mkfifo(downloads / "fifo_a1.ipynb")  # blocks a reader forever
    (downloads / "dan").mkdir()
    os.mkfifo(downloads / "dan" / "a1_score_function.ipynb")
    (downloads / "alice\n").mkdir()
    (downloads / "alice\n" / "a1.ipynb").write_text("{}")
    nfd = unicodedata.normalize("NFD", "zoë")
    (downloads / nfd).mkdir()
    (downloads / nfd / "a1.ipynb").write_text('{"zoe": 1}')
    (downloads / "李明_a1.ipynb").write_text('{"li": 1}')
    (downloads / "anna smith_a1.ipynb").write_text("{}")  # not "anna": an id is never cut short
    (downloads / ("é" * 101)).mkdir()
    (downloads / ("é" * 101) / "a1.ipynb").write_text("{}")
    result = collect(course, name, downloads, log=lambda *a: None)
    assert sorted(result["collected"]) == sorted(["anna", "zoë", "李明"]), result
    skipped = "\n".join(result["skipped"])
    for who in ("eve/", "mallory", "zero_a1", "fifo_a1", "dan/", "alice\\n:", "anna smith", "é" * 101):
        assert who in skipped, f"{who!r} not reported: {skipped}"
    assert "symbolic link" in skipped and "not a regular file" in skipped
    assert not course.submission_dir("eve", name).exists() and not course.submission_dir("mallory", name).exists()
    assert course.submission_dir("zoë", name).is_dir() and unicodedata.is_normalized("NFC", "zoë")
    assert not any(p.name.startswith("alice") for p in course.submitted.iterdir())
    assert not course.submission_dir("é" * 100, name).exists()
    assert (course.submission_dir("anna", name) / "a1_score_function.ipynb").read_text() == '{"anna": 1}'


def test_collect_from_zips_skips_links_and_oversized_members_and_unwraps_only_course_folders(tmp_path, monkeypatch):
    import stat

    from course_grader import collection

    course = _course_copy(tmp_path / "course")
    name = "a1_score_function"
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("export/anna/a1_score_function.ipynb", '{"anna": 1}')
        zf.writestr("export/ben/a1_score_function.ipynb", '{"ben": 1}')
        link = zipfile.ZipInfo("export/eve/a1_score_function.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "../../../solutions/a1_score_function/a1_score_function.ipynb")
        zf.writestr("export/carl/a1_score_function.ipynb", "{" + " " * 4000 + "}")
    monkeypatch.setattr(collection, "MAX_SUBMISSION_BYTES", 1000)
    result = collect(course, name, archive, log=lambda *a: None)
    assert result["collected"] == ["anna", "ben"], "the 'download all' folder is unwrapped"
    skipped = "\n".join(result["skipped"])
    assert "eve" in skipped and "symbolic link" in skipped and "carl" in skipped and "MB" in skipped
    single = tmp_path / "one.zip"
    with zipfile.ZipFile(single, "w") as zf:
        zf.writestr("dora/a1_score_function/a1_score_function.ipynb", "{}")
    assert collect(course, name, single, log=lambda *a: None)["collected"] == ["dora"]


def test_student_ids_match_whole_and_keep_unicode():
    import unicodedata

    assert check_student_id(unicodedata.normalize("NFD", "zoë")) == "zoë"
    assert check_student_id("李明") == "李明" and check_student_id("हिन्दी") == "हिन्दी"
    for bad in ("alice\n", "alice ", " alice", "a\u200bb", "\udcff", "é" * 101):
        with pytest.raises(ValueError):
            check_student_id(bad)


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


# ----------------------------------------------------------------------------- grader robustness


def test_replies_are_decoded_iteratively_with_a_depth_limit():
    from course_grader.untrusted import ReplyError, json_depth, loads_limited

    assert json_depth(b'{"a": [1, "[[[\\"[", {"b": [[2]]}]}') == 5
    with pytest.raises(ReplyError, match="nested"):
        loads_limited(b"[" * 200_000 + b"]" * 200_000)
    with pytest.raises(ReplyError):
        loads_limited(b"[1, 2]")
    message = loads_limited(b'{"r": [NaN, {"k": -Infinity}], "o": "a\\ud800b\\ud83d\\ude00"}')
    assert np.isnan(message["r"][0]) and message["r"][1]["k"] == -np.inf
    assert message["o"] == "a\ufffdb\U0001f600", "a lone surrogate is replaced, a valid pair kept"


CPU_HOG_AFTER_A_DEEP_REPLY = """import os, stat, time
open({pidfile!r}, "w").write(str(os.getpid()))
deep = b'{{"step": 0, "status": "ok", "output": "", "error": null, "result": ' + b"[" * 900 + b"]" * 900 + b'}}\\n'
for fd in range(3, 64):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, deep)
    except OSError:
        pass
while True:   # a CPU hog that must not outlive grading
    pass"""


def test_a_reply_the_grader_cannot_handle_is_a_protocol_error_and_the_sandbox_dies(tmp_path):
    import os
    import time

    from course_grader.supervisor import RunLimits, Step, run_steps

    pidfile = tmp_path / "pid"
    steps = [Step("cell", 20.0, source=CPU_HOG_AFTER_A_DEEP_REPLY.format(pidfile=str(pidfile)), label="cell 1")]
    report = run_steps(steps, None, limits=RunLimits(max_restarts=0))
    assert report.records[0].status == "protocol", report.records[0]
    pid = int(pidfile.read_text())
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _npz(**arrays) -> dict:
    import base64

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return {"__npz__": base64.b64encode(buffer.getvalue()).decode()}


def test_weights_are_checked_from_the_archive_headers_before_any_data_is_read(monkeypatch):
    from course_grader import checks

    small = _npz(w=np.zeros((2, 3)))
    assert load_arrays(small)["w"].shape == (2, 3)
    monkeypatch.setattr(checks, "MAX_ARRAY_BYTES", 2**20)
    bomb = _npz(w=np.zeros(4 * 2**20 // 8))  # 4 MB of zeros packs into a few kB
    assert len(bomb["__npz__"]) < 20_000
    with pytest.raises(Wrong, match="unpacks to more than"):
        load_arrays(bomb)
    with pytest.raises(Wrong, match="shape"):
        load_arrays(small, expected={"w": (3, 2)})
    with pytest.raises(Wrong, match="missing keys"):
        load_arrays(small, expected={"v": (2, 3)})
    with pytest.raises(Wrong, match="not numeric"):
        load_arrays(_npz(s=np.array(["text"])))


def _fake_assignment(check):
    from course_grader.schema import Array, Call, Fields
    from course_grader.spec import Assignment, Question

    def drive(inputs, h):  # never run here: the report below stands in for the sandbox
        return {}

    return Assignment(
        "x.ipynb",
        [
            Question("crashes", drive, lambda rng: {}, lambda inputs: Fields({"student": Array(None)}), check),
            Question("fine", drive, lambda rng: {}, lambda inputs: Call(Array(())), lambda i, r: Verdict(1.0, ["✓"])),
        ],
        name="fake",
    )


def test_a_crashing_check_is_a_grader_error_of_the_submission_not_plain_graded(monkeypatch, capsys):
    from course_grader import autograding
    from course_grader.cli import main
    from course_grader.grading import GradeResult, Prepared, score_run
    from course_grader.notebooks import Submission
    from course_grader.supervisor import RunReport, StepRecord

    def check(inputs, result):
        return {"unhashable": 1}[result["student"]]  # a bug in a check, crashing on a well-formed result

    prepared = Prepared(_fake_assignment(check), {"crashes": 2, "fine": 1}, [], ())
    report = RunReport(
        [StepRecord("ok", result={"student": [1.0]}), StepRecord("ok", result={"value": 1.0})], "test", 0, 0.1, []
    )
    result = GradeResult("fake", "graded", {}, {})
    score_run(prepared, Submission([], []), {"crashes": {}, "fine": {}}, report, result)
    assert result.questions["crashes"].status == "grader-error" and result.questions["fine"].score == 1
    assert result.status == "grader-error", "a grader error must never be reported as plain 'graded'"
    assert any("grader error" in p and "crashes" in p for p in result.problems)
    assert "TypeError" in result.grader_errors["crashes"]
    assert "grader_errors" not in result.public_json() and "TypeError" not in json.dumps(result.public_json())
    monkeypatch.setattr(autograding, "autograde", lambda *a, **k: {"anna": result})
    threads = torch.get_num_threads()  # the CLI sets one torch thread for grading
    try:
        assert main(["--root", str(REPO), "autograde", "a1_score_function"]) == 1, "the CLI's exit code shows it"
    finally:
        torch.set_num_threads(threads)
    assert "anna" in capsys.readouterr().err


def test_student_strings_cannot_break_export_or_feedback_for_anyone(tmp_path):
    from course_grader.reports import export, generate_feedback

    course = _course_copy(tmp_path / "course")
    name = "a1_score_function"
    for student in ("anna", "ben"):
        out = course.autograded_dir(student, name)
        out.mkdir(parents=True)
        public = {
            "assignment": name,
            "status": "grader-error" if student == "anna" else "graded",
            "questions": {"returns_to_go": {"title": "t", "points": 2, "score": 1.0, "status": "partial",
                                            "messages": ["✗ raised ValueError: \ud800"]}},
            "manual": {},
            "cells": [{"index": 0, "status": "ok", "output": "out \udfff", "error": "tb \ud800", "seconds": 0.1}],
            "problems": ["grader error: the checks of returns_to_go crashed \ud800"],
            "score": 1.0, "max_score": 2, "seconds": 1.0,
        }  # fmt: skip
        (out / "result.json").write_text(json.dumps(public))  # as a run before this fix could have written it
    path = export(course, name, tmp_path / "grades.csv", log=lambda *a: None)
    rows = {r["student_id"]: r for r in csv.DictReader(path.open(encoding="utf-8"))}
    assert set(rows) == {"anna", "ben"} and "grader error" in rows["anna"]["problems"]
    assert "\ufffd" in rows["anna"]["problems"] and rows["anna"]["status"] == "grader-error"
    pages = generate_feedback(course, name, log=lambda *a: None)
    assert len(pages) == 2 and "\ufffd" in pages[0].read_text(encoding="utf-8")


def test_submitted_strings_with_lone_surrogates_are_cleaned_when_read(tmp_path):
    path = tmp_path / "s.ipynb"
    path.write_text('{"cells": [{"cell_type": "code", "source": "print(\\"\\ud800\\")", "metadata": {}}]}')
    submission = load_submission(path)
    assert submission.code_cells[0][1] == 'print("\ufffd")'


# ----------------------------------------------------------------------------- formgrader


ATTACKS = [
    "<script>alert(1)</script>",
    "An answer <img src=x onerror=alert(1)> with a picture",
    "[click me](javascript:alert(1))",
    "<a href='JaVaScRiPt:alert(1)'>x</a>",
    "<javascript:alert(1)>",
    "[ref]: javascript:alert(3)\n\n[click][ref]",
    '<div onmouseover="alert(1)">\n\n*hover*\n\n</div>',
    "<svg onload=alert(1)>",
    "<iframe src=//evil.example>",
    "<style>body { display: none }</style>",
    "# Heading <img src=x onerror=alert(1)>",
]
HONEST = [
    "YOUR ANSWER HERE",
    "Since $\\mathbb{E}[\\nabla \\log \\pi] = 0$ and $a<b$, the baseline drops out: $x > y$.",
    "**Bold**, *italic*, <b>b</b><br>\n\n- one\n- two\n\n1. first",
    "```python\nif a < b:\n    print('<tag>')\n```",
    "# Title\n\n> a quote\n\n| a | b |\n|:-|-:|\n| 1 | 2 |",
    "See [the notes](https://example.org/notes?x=1) and <https://example.org>.",
    "$$\n\\begin{align} a &= b \\\\ c &< d \\end{align}\n$$",
]


def _unsafe(rendered: str) -> list[str]:
    """Scripts, event handlers and script URLs in an HTML page, as a browser's parser would see them."""
    from html.parser import HTMLParser

    found = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag in ("script", "iframe", "svg", "style", "object", "embed", "math", "form"):
                found.append(tag)
            for name, value in attrs:
                squeezed = "".join((value or "").split()).lower()
                if name.startswith("on") or squeezed.startswith(("javascript:", "vbscript:", "data:text")):
                    found.append(f"{tag} {name}={value}")

    Parser().feed(rendered)
    return found


def test_markdown_answers_are_sanitized_for_formgrader_and_stay_readable():
    from nbconvert.filters.markdown import markdown2html

    from course_grader.untrusted import sanitize_html, sanitize_markdown

    for text in ATTACKS:
        safe = sanitize_markdown(text)
        assert not _unsafe(markdown2html(safe)), (text, safe, markdown2html(safe))
        assert "alert" in safe or "evil" in safe or "display" in safe, "the attempt stays visible as text"
    for text in HONEST:
        assert sanitize_markdown(text) == text, "safe Markdown, math and code are left exactly as written"
    assert "<script" not in sanitize_html("<script>alert(1)</script>") and sanitize_html("<b>x</b>") == "<b>x</b>"


def test_formgraders_notebook_holds_no_student_script(tmp_path):
    import nbformat
    from nbconvert.filters.markdown import markdown2html

    from course_grader.autograding import autograded_notebook

    release = REPO / "assignments" / "a1_score_function" / "a1_score_function.ipynb"
    nb = nbformat.read(release, as_version=4)
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "baseline_derivation")
    answer.source = "\n\n".join(ATTACKS) + "\n\nThe gradient is $\\nabla J$ \ud800."
    nb.cells.append(nbformat.v4.new_raw_cell("<img src=x onerror=alert(2)>"))
    submitted = tmp_path / "a1_score_function.ipynb"
    submitted.write_text(json.dumps(nb))
    shown = autograded_notebook(release, submitted, {"cells": [], "questions": {}})
    nbformat.write(shown, tmp_path / "shown.ipynb")  # the lone surrogate no longer breaks writing it
    for cell in shown.cells:
        if cell.cell_type == "markdown":
            assert not _unsafe(markdown2html(cell.source)), cell.source
        elif cell.cell_type == "raw":
            assert not _unsafe(cell.source), cell.source
    assert any("$\\nabla J$" in c.source for c in shown.cells), "the answer's text and math are kept"


def test_a_new_gradebook_is_the_one_nbgrader_creates_without_its_alembic_subprocess(tmp_path, monkeypatch):
    """create_gradebook writes nbgrader's own tables and migration stamp; nbgrader then opens the database as
    one it made (it would start ``alembic heads`` for a database without tables)."""
    import sqlite3

    import nbgrader.api
    from nbgrader.api import Gradebook

    from course_grader.course import create_gradebook, nbgrader_environment

    def contents(path: Path) -> tuple[list, list]:
        with sqlite3.connect(path) as db:
            schema = sorted(db.execute("SELECT type, name, sql FROM sqlite_master").fetchall())
            return schema, db.execute("SELECT version_num FROM alembic_version").fetchall()

    nbgrader_environment()
    with Gradebook(f"sqlite:///{tmp_path / 'by_nbgrader.db'}"):  # nbgrader's own way, subprocess included
        pass
    ours = Course(*[tmp_path] * 6, db_url=f"sqlite:///{tmp_path / 'sub' / 'ours.db'}")  # only its database is used
    create_gradebook(ours)
    assert contents(tmp_path / "sub" / "ours.db") == contents(tmp_path / "by_nbgrader.db")

    def no_subprocess():
        raise AssertionError("nbgrader ran alembic for a gradebook that already had its tables")

    monkeypatch.setattr(nbgrader.api, "get_alembic_version", no_subprocess)
    with Gradebook(ours.db_url) as gb:
        gb.update_or_create_student("ada")
    create_gradebook(ours)  # a second call leaves an existing gradebook alone
    with Gradebook(ours.db_url) as gb:
        assert [s.id for s in gb.students] == ["ada"]
