"""The grading pipeline, end to end, on a corpus of honest, broken and hostile submissions.

Each assignment's corpus (``tests/grading_corpus``) is graded once, when a test
first needs it, exactly as an instructor would -- collect, autograde in the
bubblewrap sandbox, export, feedback -- in a throw-away copy of the course; the
tests below then check what it produced. Attacks on the grader itself run for
one assignment only (``HOSTILE_ASSIGNMENT``).

- the solution gets full marks, the released stub zero on every autograded question;
- partly wrong, raising, looping and broken notebooks get the scores they deserve, with a clear reason;
- no cheat scores more than the same submission's honest answers, no cheat saw or changed anything
  outside its sandbox, no process outlives grading, no grade is lost or altered by another submission;
- exported CSVs hold per-question scores; feedback holds no hidden-test source and no expected value;
- the committed stubs are exactly what nbgrader generates from solutions/.

Without bubblewrap the sandboxed tests are skipped, unless COURSE_REQUIRE_SANDBOX=1 (or CI) is set:
then they fail, so CI cannot pass without the sandbox.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from grading_corpus import HOSTILE_ASSIGNMENT, Context, all_cases, notebook_bytes, read_files_cheat

from course_grader.autograding import GradingRefused, autograde, resolve_sandbox
from course_grader.collection import collect
from course_grader.course import Course
from course_grader.gradebook import scores
from course_grader.grading import question_points
from course_grader.release import release_differences
from course_grader.reports import export, generate_feedback
from course_grader.sandbox import probe_bubblewrap, sandbox_required_by_environment
from course_grader.spec import assignment_names, load_assignment

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENTS = assignment_names(REPO / "solutions")
SEED = 20_240_601
CELL_TIMEOUT = 5.0  # the corpus's own cells take well under a second; this bounds the looping cell


def make_course(root: Path) -> Course:
    """A throw-away copy of the course: config, solutions and released stubs (no instructor data)."""
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    for folder in ("solutions", "assignments"):
        for name in ASSIGNMENTS:
            shutil.copytree(REPO / folder / name, root / folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    return Course.at(root)


def context(course: Course, name: str) -> Context:
    spec = load_assignment(course.solutions, name, course.assignments)
    return Context(
        name,
        spec.notebook,
        course.solutions / name / spec.notebook,
        course.assignments / name / spec.notebook,
        course.root,
        REPO,
        [q.id for q in spec.questions],
    )


def require_sandbox():
    status = probe_bubblewrap()
    if not status.available:
        message = f"the grading sandbox is not available here: {status.reason}"
        if sandbox_required_by_environment():
            pytest.fail(message + " (COURSE_REQUIRE_SANDBOX/CI requires it; `python -m course_grader setup-sandbox`)")
        pytest.skip(message)
    return status


def grade_corpus(course: Course, name: str) -> dict:
    """Collect and autograde every corpus submission of assignment ``name`` once, as an instructor would."""
    ctx = context(course, name)
    cases = {case.student: case for case in all_cases(ctx)}
    downloads = course.root / "downloads" / name
    built = {}
    for student, case in cases.items():
        (downloads / student).mkdir(parents=True)
        built[student] = notebook_bytes(ctx, case)
        (downloads / student / ctx.notebook_name).write_bytes(built[student])
    collected = collect(course, name, downloads, log=lambda *a: None)
    started = time.monotonic()
    results = autograde(
        course,
        name,
        sandbox="require",
        jobs=2,
        seed=SEED,
        cell_timeout=CELL_TIMEOUT,
        question_timeout=getattr(ctx.specifics(), "QUESTION_TIMEOUT", None),
        log=lambda *a: None,
    )
    return {
        "ctx": ctx,
        "cases": cases,
        "built": built,
        "collected": collected,
        "results": results,
        "seconds": time.monotonic() - started,
    }


class Runs(dict):
    """Each assignment's graded corpus, graded the first time a test asks for it (``-k a3`` grades only a3)."""

    def __init__(self, course: Course):
        super().__init__()
        self.course = course

    def __missing__(self, name: str) -> dict:
        self[name] = grade_corpus(self.course, name)
        return self[name]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    require_sandbox()
    course = make_course(tmp_path_factory.mktemp("course"))
    return course, Runs(course)


# The corpus is graded in two files, so that the test command's two workers (``--dist loadfile``) share it:
# this one grades the assignment that also gets the attacks on the grader, test_grading_others.py the rest.
CORPUS_SPLIT = {
    "test_grading": [HOSTILE_ASSIGNMENT],
    "test_grading_others": [name for name in ASSIGNMENTS if name != HOSTILE_ASSIGNMENT],
}


def pytest_generate_tests(metafunc):
    """Each per-assignment test below runs for the assignments of the file it is collected in."""
    if "name" in metafunc.fixturenames and metafunc.definition.get_closest_marker("parametrize") is None:
        metafunc.parametrize("name", CORPUS_SPLIT[Path(metafunc.module.__file__).stem])


def public(run, student) -> dict:
    return run["results"][student].public_json()


def question_scores(run, student) -> dict[str, float]:
    return {q: e["score"] for q, e in public(run, student)["questions"].items()}


def test_every_submission_is_graded_once_without_grader_errors(corpus, name):
    course, runs = corpus
    run = runs[name]
    assert sorted(run["collected"]["collected"]) == sorted(run["cases"]), run["collected"]["skipped"]
    assert sorted(run["results"]) == sorted(run["cases"])
    for student, result in run["results"].items():
        assert result.status in ("graded", "invalid"), f"{student}: {result.status}"
        assert not result.grader_errors, f"{student}: a check crashed: {result.grader_errors}"
    assert public(run, "invalid_json")["status"] == "invalid" and public(run, "not_a_notebook")["status"] == "invalid"


def test_each_case_gets_the_required_scores(corpus, name):
    course, runs = corpus
    run = runs[name]
    points = question_points(load_assignment(course.solutions, name, course.assignments))
    wrong = []
    for student, case in run["cases"].items():
        got = question_scores(run, student)
        for q, want in case.expect.items():
            if want == "full":
                ok = got[q] == points[q]
            elif isinstance(want, tuple):
                ok = want[0] < got[q] < want[1]
            else:
                ok = got[q] == want
            if not ok:
                wrong.append(
                    f"{student} ({case.description}): {q} scored {got[q]}, expected {want} "
                    f"-- {public(run, student)['questions'][q]['messages'][:2]}"
                )
    assert not wrong, "\n".join(wrong)
    assert public(run, "solution")["score"] == public(run, "solution")["max_score"] == sum(points.values())
    assert public(run, "stub")["score"] == 0, "the released stub must score zero on every autograded question"
    if name == HOSTILE_ASSIGNMENT:
        assert public(run, "mangled")["max_score"] == sum(points.values()), (
            "points come from the solution, not the submission"
        )


def test_every_attack_ran_to_its_end(corpus, name):
    """A cheat whose own cell is stopped (a time limit, a crash) tests nothing: each cell that announces an attack
    ("CHEAT" in its source) must have finished, except the forged messages, which end the channel they write to.
    (The zip bomb's cell once ran over the corpus's time limit, and the case passed without the bomb installed.)"""
    course, runs = corpus
    run = runs[name]
    stopped, attacked = [], False
    for student in run["cases"]:
        try:
            cells = json.loads(run["built"][student]).get("cells", [])
        except ValueError:  # invalid_json: never run
            continue
        attacks = {i for i, c in enumerate(cells) if c["cell_type"] == "code" and "CHEAT" in "".join(c["source"])}
        attacked = attacked or bool(attacks)
        for cell in public(run, student)["cells"]:
            if cell["index"] in attacks and cell["status"] != "ok" and student != "cheat_protocol":
                stopped.append(f"{student}: cell {cell['index']} {cell['status']}: {(cell['error'] or '')[:200]}")
    if not attacked:
        pytest.skip(f"no case of {name} announces an attack")
    assert not stopped, "\n".join(stopped)


def test_no_cheat_scores_more_than_the_same_honest_submission(corpus, name):
    course, runs = corpus
    run = runs[name]
    beaten = []
    for student, case in run["cases"].items():
        if case.base is None:
            continue
        base, cheat = question_scores(run, case.base), question_scores(run, student)
        beaten += [f"{student}: {q} {cheat[q]} > {base[q]} ({case.description})" for q in base if cheat[q] > base[q]]
    assert not beaten, "\n".join(beaten)
    honest = public(run, "partly_right")["score"]
    assert 0 < honest < public(run, "solution")["score"], "the honest base must have right and wrong answers"


def cell_output(run, student: str, marker: str) -> str:
    texts = [c["output"] for c in public(run, student)["cells"] if marker in c["output"]]
    assert texts, f"{student}: the cheat's cell did not run or printed nothing"
    return texts[0]


def test_student_code_sees_and_changes_nothing_outside_its_sandbox(corpus, name):
    course, runs = corpus
    run = runs[name]
    if name == HOSTILE_ASSIGNMENT:
        assert "CHEAT FOUND: []" in cell_output(run, "cheat_escapes", "CHEAT FOUND"), (
            "student code could read solutions, hidden tests, the gradebook or other students' files"
        )
        assert "CHEAT WROTE: []" in cell_output(run, "cheat_escapes", "CHEAT WROTE"), (
            "student code could write grade files or other students' submissions"
        )
    for student, data in run["built"].items():  # every submission is still exactly what was handed in
        stored = course.submission_dir(student, name) / run["ctx"].notebook_name
        assert stored.read_bytes() == data, f"{student}'s collected submission was changed during grading"


def test_no_process_outlives_grading(corpus, name):
    course, runs = corpus
    run = runs[name]
    marker = run["ctx"].marker
    alive = []
    for proc in Path("/proc").iterdir():
        try:
            if marker.encode() in (proc / "cmdline").read_bytes():
                alive.append(proc.name)
        except OSError:
            continue
    assert not alive, f"processes started by a submission survived grading: {alive}"
    if name == HOSTILE_ASSIGNMENT:
        cell_output(run, "cheat_escapes", "CHEAT: daemon started")  # fails if the daemon cheat did not even start


def test_gradebook_holds_exactly_each_students_own_scores(corpus, name):
    course, runs = corpus
    run = runs[name]
    notebook_id = Path(run["ctx"].notebook_name).stem
    for student in run["cases"]:
        book = scores(course, name, notebook_id, student)
        for q, entry in public(run, student)["questions"].items():
            assert book[q]["score"] == entry["score"], (
                f"{student}/{q}: gradebook {book[q]['score']} != {entry['score']}"
            )
        stored = json.loads((course.autograded_dir(student, name) / "result.json").read_text())
        assert stored["score"] == public(run, student)["score"], f"{student}'s result.json was altered"
        # the notebook formgrader shows: valid, and every graded cell present exactly once
        nb = nbformat.read(course.autograded_dir(student, name) / run["ctx"].notebook_name, as_version=4)
        nbformat.validate(nb)
        ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert sorted(ids) == sorted(book), f"{student}: the autograded notebook's graded cells {ids}"


def test_every_failure_is_reported_with_a_clear_reason(corpus, name):
    course, runs = corpus
    run = runs[name]
    specifics = run["ctx"].specifics()

    def messages(student, q):
        return " ".join(public(run, student)["questions"][q]["messages"])

    assert "not valid notebook JSON" in public(run, "invalid_json")["problems"][0]
    assert "not a notebook" in public(run, "not_a_notebook")["problems"][0]
    raise_q = specifics.QUESTIONS_USING[specifics.RAISE_FUNCTION][0]
    assert "RuntimeError: boom" in messages("raising", raise_q)
    assert all("NotImplementedError" in messages("stub", q) for q in run["ctx"].question_ids)
    if name == HOSTILE_ASSIGNMENT:
        loop_q = specifics.QUESTIONS_USING[specifics.LOOP_FUNCTION][0]
        assert "ran for more than" in messages("looping", loop_q)
        assert any("ran for more than" in p for p in public(run, "looping")["problems"]), "the looping cell is lost"
        assert any("died" in p for p in public(run, "crash_exit")["problems"])
        assert any(c["error"] and "MemoryError" in c["error"] for c in public(run, "cheat_escapes")["cells"])
        assert all("unpacks to more than" in messages("cheat_npz_bomb", q) for q in specifics.PACKED_QUESTIONS)
        assert all(
            public(run, "cheat_fewer_results")["questions"][q]["status"] in ("malformed", "passed")
            for q in run["ctx"].question_ids
        )
    for student in run["cases"]:  # a reason for every lost point
        for q, entry in public(run, student)["questions"].items():
            if entry["score"] < entry["points"]:
                assert any(m.strip() and not m.startswith("✓") for m in entry["messages"]), (
                    f"{student}/{q}: no reason given"
                )


def test_export_writes_per_question_scores_including_hand_grading(corpus, name):
    from nbgrader.api import Gradebook

    course, runs = corpus
    run = runs[name]
    spec = load_assignment(course.solutions, name, course.assignments)
    notebook_id = Path(spec.notebook).stem
    written = [g for g, m in public(run, "solution")["manual"].items() if m["status"] == "needs manual grading"]
    assert written, "the solution's written answers should wait for hand grading"
    path = export(course, name, course.root / "grades.csv", log=lambda *a: None)
    rows = {r["student_id"]: r for r in csv.DictReader(path.open())}
    assert set(rows) == set(run["cases"])
    for student in run["cases"]:
        for q, entry in public(run, student)["questions"].items():
            assert float(rows[student][q]) == entry["score"]
    assert rows["solution"][written[0]] == "" and written[0] in rows["solution"]["ungraded"]
    assert rows["stub"][written[0]] == "0", "an unanswered written question scores 0 automatically"
    with Gradebook(course.db_url) as gb:  # what formgrader does when the instructor enters a score
        grade = gb.find_grade(written[0], notebook_id, name, "solution")
        grade.manual_score = 2.5
        gb.db.commit()
    rows = {
        r["student_id"]: r
        for r in csv.DictReader(export(course, name, course.root / "grades.csv", log=lambda *a: None).open())
    }
    assert rows["solution"][written[0]] == "2.5"
    assert float(rows["solution"]["total"]) == public(run, "solution")["score"] + 2.5


def _numbers(value, found):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        found.append(float(value))
    elif isinstance(value, dict):
        for v in value.values():
            _numbers(v, found)
    elif isinstance(value, list):
        for v in value:
            _numbers(v, found)


def test_no_input_is_in_the_sandbox_before_its_driver_runs(corpus):
    """The job file holds start-up settings only; inputs arrive with their step, and check-only inputs never."""
    course, runs = corpus
    run = runs[HOSTILE_ASSIGNMENT]
    output = cell_output(run, "cheat_escapes", "CHEAT JOB:")
    job = json.loads(output.split("CHEAT JOB:", 1)[1].splitlines()[0])
    assert set(job) == {"preload", "drivers"}, job
    spec = load_assignment(course.solutions, HOSTILE_ASSIGNMENT, course.assignments)
    inputs = run["results"]["cheat_escapes"].inputs
    for q in spec.questions:
        for key, value in inputs[q.id].items():
            if isinstance(value, (int, float)) and abs(value) > 1000:  # seeds: numbers that cannot appear by chance
                assert str(value) not in output, f"{q.id}'s input {key} was readable before its driver ran"


def test_results_students_see_hold_no_seed_and_no_input(corpus, name):
    course, runs = corpus
    run = runs[name]
    spec = load_assignment(course.solutions, name, course.assignments)
    for student, result in run["results"].items():
        stored = json.loads((course.autograded_dir(student, name) / "result.json").read_text())
        assert not {"seed", "inputs", "details", "grader_errors"} & set(stored), student
        text = json.dumps(stored)
        assert str(result.seed) not in text, f"{student}: the grader's seed is in result.json"
        for q, values in result.inputs.items():
            for key, value in values.items():
                if key in spec.question(q).check_only:
                    assert json.dumps(value)[:40] not in text, f"{student}: {q}'s check-only {key} is visible"


def test_feedback_shows_no_hidden_test_source_and_no_expected_value(corpus, name):
    course, runs = corpus
    run = runs[name]
    pages = generate_feedback(course, name, log=lambda *a: None)
    assert len(pages) == len(run["cases"])
    hidden_lines = [
        line.strip()
        for line in (course.solutions / name / "hidden_tests.py").read_text().splitlines()
        if len(line.strip()) >= 24 and not line.strip().startswith(("#", "import", "from", '"""', "def ", "return"))
    ]
    assert len(hidden_lines) > 50
    for page in pages:
        text = page.read_text()
        student = page.parent.parent.name
        leaked = [line for line in hidden_lines if line in text]
        assert not leaked, f"{student}'s feedback contains hidden-test source: {leaked[:3]}"
        expected = []
        _numbers(run["results"][student].details, expected)
        # whole numbers shown with 3+ decimals: shorter ones (a cell's "0.63 s") match an expected value by chance
        shown = set(re.findall(r"(?<![\d.])-?\d+\.\d{3,}(?![\d.])", text))
        leaked = sorted({f"{x:.4f}" for x in expected if abs(x) > 1e-3 and {f"{x:.4f}", repr(x)} & shown})
        assert not leaked, f"{student}'s feedback contains expected values {leaked[:5]}"
        assert "Score:" in text and ("✗" in text or "✓" in text or student in ("invalid_json", "not_a_notebook"))


def test_read_files_cheat_is_real_without_the_sandbox(corpus, tmp_path):
    """The same cheat, run as plain Python, does find the solution and the hidden tests: the sandbox is what stops it
    (without this, a corpus whose cheat had simply guessed the wrong paths would not notice a broken sandbox)."""
    course, runs = corpus
    ctx = context(course, HOSTILE_ASSIGNMENT)
    result = subprocess.run(
        [sys.executable, "-c", read_files_cheat(ctx)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    found = result.stdout.split("CHEAT FOUND:", 1)[-1]
    for secret in (ctx.solution, course.solutions / HOSTILE_ASSIGNMENT / "hidden_tests.py"):
        assert str(secret) in found, f"unsandboxed, the cheat should have read {secret}: {result.stdout[-1000:]}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_committed_stubs_equal_a_fresh_nbgrader_release(name):
    differences = release_differences(Course.at(REPO), name)
    assert not differences, "assignments/ is out of date: run `python -m course_grader release --all`:\n" + "\n".join(
        differences
    )


def test_grading_refuses_to_run_unsandboxed_unless_told(monkeypatch):
    from course_grader import autograding
    from course_grader.sandbox import SandboxStatus

    monkeypatch.setattr(autograding, "probe_bubblewrap", lambda: SandboxStatus(False, reason="bwrap is not installed"))
    with pytest.raises(GradingRefused, match="refusing to grade: no sandbox"):
        resolve_sandbox("require", log=lambda *a: None)
    lines = []
    assert resolve_sandbox("warn", log=lines.append) is None
    assert any("WITHOUT a sandbox" in line for line in lines)
