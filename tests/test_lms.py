"""A class's paperwork (issue 13, items 2 and 3): LMS downloads in, roster, deadlines, LMS grade files out,
and failures that show.

Each LMS layout is built here as a small fixture from what the LMS writes (Moodle's "Download all
submissions", Canvas's "Download Submissions", GitHub Classroom's repository folders), zipped as the LMS
zips it when that matters (entry times, file-name encodings). Grading results are written the way
``autograde`` stores them (``_store``), so export and feedback run on real records without the sandbox;
one test grades a real submission in the sandbox to check the summary line.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import struct
import unicodedata
import zipfile
from pathlib import Path

import pytest

from course_grader.autograding import _store, autograde
from course_grader.cli import main as cli
from course_grader.collection import collect
from course_grader.course import Course
from course_grader.deadlines import load_settings, parse_settings
from course_grader.gradebook import scores
from course_grader.grading import GradeResult, ManualAnswer, QuestionResult, prepare
from course_grader.release import ensure_in_gradebook
from course_grader.reports import export, export_lms, generate_feedback, validate
from course_grader.roster import install_roster, load_roster, parse_roster, roster_file
from course_grader.spec import load_assignment

REPO = Path(__file__).resolve().parent.parent
A1 = "a1_score_function"
NB = "a1_score_function.ipynb"
UTC = dt.timezone.utc
ROSTER = (
    "id,name,email,lms_id\n"
    'müllerdan,"Müller, Dan",dan@example.org,67890\n'
    "anna,Anna Schmidt,anna@example.org,12345\n"
    "octocat,Mona Octocat,mona@example.org,octocat\n"
)


def quiet(*_):
    pass


@pytest.fixture
def course(tmp_path) -> Course:
    root = tmp_path / "course"
    root.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    for folder in ("solutions", "assignments"):
        shutil.copytree(REPO / folder / A1, root / folder / A1, ignore=shutil.ignore_patterns("__pycache__"))
    return Course.at(root)


def stub() -> bytes:
    return (REPO / "assignments" / A1 / NB).read_bytes()


def with_roster(course: Course, text: str = ROSTER) -> None:
    (course.root / "class.csv").write_text(text, encoding="utf-8")
    install_roster(course, course.root / "class.csv", log=quiet)


def settings(course: Course, text: str) -> None:
    path = course.root / "instructor" / "course.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def stamp(course: Course, student: str) -> dt.datetime:
    text = (course.submission_dir(student, A1) / "timestamp.txt").read_text().strip()
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f UTC").replace(tzinfo=UTC)


def meta(course: Course, student: str) -> dict:
    return json.loads((course.submission_dir(student, A1) / "collected.json").read_text(encoding="utf-8"))


def zip_member(zf: zipfile.ZipFile, name: str, data: bytes, when: tuple, utc_mtime: int | None = None) -> None:
    info = zipfile.ZipInfo(name, date_time=when)
    if utc_mtime is not None:  # Info-ZIP's extended timestamp field: flags (mtime present), mtime (UTC)
        info.extra = struct.pack("<HHBi", 0x5455, 5, 1, utc_mtime)
    zf.writestr(info, data)


def clear_utf8_flags(data: bytes) -> bytes:
    """The same archive as an old Windows tool writes it: UTF-8 names without the UTF-8 flag (bit 11)."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := out.find(signature, start)) >= 0:
            flags = struct.unpack_from("<H", out, start + offset)[0]
            struct.pack_into("<H", out, start + offset, flags & ~0x800)
            start += 4
    return bytes(out)


# ----------------------------------------------------------------------------- LMS downloads in


def test_moodle_folders_and_files_with_roster_and_zip_times(course, tmp_path):
    with_roster(course)
    settings(course, 'timezone = "Europe/Berlin"\n')
    archive = tmp_path / "moodle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        # Moodle's "Download all submissions" with folders; the zip entries carry local (Berlin) times
        zip_member(zf, f"Dan Müller_67890_assignsubmission_file_/{NB}", stub(), (2026, 12, 10, 23, 58, 0))
        zip_member(zf, f"Anna Schmidt_12345_assignsubmission_file_/{NB}", stub(), (2026, 12, 9, 12, 0, 0))
        # a participant who is not in the roster, and (without folders) a file-name prefix
        zip_member(zf, f"Zoë Unlisted_55555_assignsubmission_file_{NB}", stub(), (2026, 12, 11, 8, 0, 0))
    result = collect(course, A1, archive, log=quiet)
    assert result["collected"] == ["55555", "anna", "müllerdan"], "LMS ids mapped to course ids by the roster"
    assert result["unknown"] == ["55555"] and result["missing"] == ["octocat"]
    assert meta(course, "55555")["name"] == "Zoë Unlisted" and meta(course, "55555")["layout"] == "moodle"
    assert meta(course, "müllerdan")["lms_id"] == "67890"
    # 23:58 in Berlin (UTC+1 in December) is 22:58 UTC: the archive's time, not the time of unpacking
    assert stamp(course, "müllerdan") == dt.datetime(2026, 12, 10, 22, 58, tzinfo=UTC)
    assert meta(course, "müllerdan")["time_source"] == "file time"


def test_canvas_flat_files_keep_unicode_ids_late_marks_and_zip_utc_times(course, tmp_path):
    archive = tmp_path / "submissions.zip"
    nfd = unicodedata.normalize("NFD", "müllerdan")  # as a Mac's file system spells it
    when = int(dt.datetime(2026, 12, 11, 9, 30, tzinfo=UTC).timestamp())
    with zipfile.ZipFile(archive, "w") as zf:
        zip_member(zf, f"{nfd}_late_67890_991_{NB}", stub(), (2026, 12, 11, 10, 30, 0), utc_mtime=when)
        zip_member(zf, "schmidtanna_12345_992_a1_score_function-1.ipynb", stub(), (2026, 12, 9, 12, 0, 0))
        zip_member(zf, "bad\nname_1_2_x.ipynb", stub(), (2026, 12, 9, 12, 0, 0))
    archive.write_bytes(clear_utf8_flags(archive.read_bytes()))  # names as UTF-8 bytes without the flag
    result = collect(course, A1, archive, log=quiet)
    assert result["collected"] == ["müllerdan", "schmidtanna"], result
    assert any("bad" in line for line in result["skipped"]), "a name with a newline is refused, not shortened"
    assert meta(course, "müllerdan")["lms_late"] is True and meta(course, "schmidtanna")["lms_late"] is False
    assert stamp(course, "müllerdan") == dt.datetime(2026, 12, 11, 9, 30, tzinfo=UTC), "the UTC extra field wins"
    # with the roster, Canvas user ids become course ids
    with_roster(course)
    result = collect(course, A1, archive, log=quiet)
    assert result["collected"] == ["anna", "müllerdan"] and result["unknown"] == []
    assert (course.submission_dir("anna", A1) / NB).read_bytes() == stub()


def test_github_classroom_repository_folders_both_layouts(course, tmp_path):
    # `gh classroom clone student-repos`: <slug>-submissions/<slug>-<login>/ (logins may hold hyphens)
    clone = tmp_path / "clone" / "a1-score-function-submissions"
    for login in ("octocat", "mona-lisa"):
        repo = clone / f"a1-score-function-{login}"
        (repo / ".git").mkdir(parents=True)
        (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
        (repo / NB).write_bytes(stub())
        (repo / "README.md").write_text("# a1\n")
    result = collect(course, A1, tmp_path / "clone", log=quiet)
    assert result["collected"] == ["mona-lisa", "octocat"], result
    assert meta(course, "octocat")["layout"] == "github"
    # the Classroom Assistant's folder of repositories, named after the classroom's assignment ("rl-hw1")
    assistant = tmp_path / "assistant"
    for login in ("octocat", "hubot"):
        (assistant / f"rl-hw1-{login}" / "notebooks").mkdir(parents=True)
        (assistant / f"rl-hw1-{login}" / "notebooks" / NB).write_bytes(stub())
    assert cli(["--root", str(course.root), "collect", A1, str(assistant), "--lms", "github"]) == 0
    assert meta(course, "hubot")["entry"] == "rl-hw1-hubot"
    with_roster(course)  # the roster's lms_id for GitHub is the login
    result = collect(course, A1, assistant, layout="github", prefix="rl-hw1-", log=quiet)
    assert result["collected"] == ["hubot", "octocat"] and result["unknown"] == ["hubot"]


def test_folder_times_and_nbgrader_timestamps_are_kept(course, tmp_path):
    import os

    download = tmp_path / "download"
    (download / "anna").mkdir(parents=True)
    (download / "anna" / NB).write_bytes(stub())
    os.utime(download / "anna" / NB, (1_765_000_000, 1_765_000_000))
    (download / "ben" / A1).mkdir(parents=True)  # nbgrader's exchange layout with its timestamp.txt
    (download / "ben" / A1 / NB).write_bytes(stub())
    (download / "ben" / A1 / "timestamp.txt").write_text("2026-12-01 10:11:12.000000 UTC")
    collect(course, A1, download, log=quiet)
    assert stamp(course, "anna").timestamp() == 1_765_000_000
    assert stamp(course, "ben") == dt.datetime(2026, 12, 1, 10, 11, 12, tzinfo=UTC)
    assert meta(course, "ben")["time_source"] == "timestamp.txt"


# ----------------------------------------------------------------------------- roster


def test_roster_is_checked_whole_and_feeds_the_gradebook(course):
    from nbgrader.api import Gradebook

    with_roster(course)
    roster = load_roster(course)
    assert roster.by_lms_id("67890").id == "müllerdan" and roster.by_id("müllerdan").first_and_last == ("Dan", "Müller")
    with Gradebook(course.db_url) as gb:
        student = gb.find_student("müllerdan")
        assert (student.first_name, student.last_name, student.lms_user_id) == ("Dan", "Müller", "67890")
    before = roster_file(course).read_bytes()
    bad = (
        "id,name,email,lms_id\n"
        "../evil,Eve,eve@example.org,1\n"
        'anna,"Anna\nSchmidt",anna@example.org,2\n'
        "ben,Ben\u202eNg,ben@example.org,3\n"
        "carl,Carl,not-an-email,4\n"
        "dora,Dora,,4\n"
        "dora,Dora,,5\n"
        "emil,Emil,,6,extra\n"
    )
    (course.root / "bad.csv").write_text(bad, encoding="utf-8")
    with pytest.raises(ValueError) as err:
        install_roster(course, course.root / "bad.csv", log=quiet)
    message = str(err.value)
    for line in (2, 3, 5, 6, 8, 9):
        assert f"line {line}:" in message, message
    assert "U+202E" in message
    assert roster_file(course).read_bytes() == before, "a malformed roster changes nothing"
    with pytest.raises(ValueError, match="UTF-8"):
        parse_roster("id,name\nanna,Ann\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="header"):
        parse_roster(b"student,who\nanna,Anna\n")
    assert cli(["--root", str(course.root), "roster", str(course.root / "bad.csv")]) == 1


# ----------------------------------------------------------------------------- deadlines


def test_late_policy_grace_penalty_zero_and_extensions():
    s = parse_settings(
        """
        timezone = "Europe/Berlin"
        [late_policy]
        grace_minutes = 15
        penalty_per_day = 0.1
        zero_after_days = 3
        [assignments.a1_score_function]
        due = 2026-12-10T23:59:00
        [assignments.a1_score_function.extensions]
        anna = 2
        "müllerdan" = 2026-12-20T12:00:00+00:00
        """
    )
    due = dt.datetime(2026, 12, 10, 22, 59, tzinfo=UTC)
    at = lambda student, minutes: s.lateness(A1, student, due + dt.timedelta(minutes=minutes))  # noqa: E731
    assert not at("ben", 10).late, "within the grace period"
    assert at("ben", 20).late and at("ben", 20).penalty == pytest.approx(0.1)
    assert at("ben", 60 * 24 + 1).penalty == pytest.approx(0.2), "each started day"
    assert at("ben", 60 * 24 * 3 + 1).penalty == 1.0 and at("ben", 60 * 24 * 3 + 1).apply(17.5) == 0.0
    assert not at("anna", 60 * 24 * 2 - 1).late and at("anna", 60 * 24 * 2 - 1).extended
    assert not at("müllerdan", 60 * 24 * 9).late
    assert s.lateness("other", "ben", due).due is None, "no due date: nothing is late"
    for bad in ('[late_policy]\npenalty_per_day = 5\n', 'timezone = "Mars/Olympus"\n', "[assignments.x]\ndue = 3\n",
                "[assignments.x.extensions]\n\"a/b\" = 1\n", "nonsense = 1\n", "[[[\n"):  # fmt: skip
        with pytest.raises(ValueError):
            parse_settings(bad)


def graded(course: Course, student: str, fraction: float, cells=(), status="graded") -> None:
    """Store a result for ``student`` the way autograde does (every question at ``fraction`` of its points)."""
    spec = load_assignment(course.solutions, A1, course.assignments)
    prepared = prepare(spec)
    ensure_in_gradebook(course, A1)
    questions = {
        q.id: QuestionResult(q.id, prepared.points[q.id], round(prepared.points[q.id] * fraction, 4), "partial", [])
        for q in spec.questions
    }
    if status == "grader-error":
        first = spec.questions[0].id
        questions[first] = QuestionResult(first, prepared.points[first], 0.0, "grader-error", ["grader failed"])
    manual = {m.grade_id: ManualAnswer(m.points, "unanswered", None) for m in prepared.manual}
    result = GradeResult(A1, status, questions, manual, cells=list(cells), sandbox="test")
    _store(course, spec, student, result, course.assignments / A1 / NB, "a1_score_function")


def test_deadlines_and_flags_reach_the_csv_the_lms_files_and_the_feedback(course, tmp_path):
    from course_grader.grading import CellResult

    with_roster(course)
    settings(
        course,
        "[late_policy]\npenalty_per_day = 0.25\n[assignments.a1_score_function]\ndue = 2026-12-10T12:00:00Z\n"
        "[assignments.a1_score_function.extensions]\nanna = 1\n",
    )
    download = tmp_path / "download"
    download.mkdir()
    for student, hours in (("anna", 20), ("müllerdan", 20), ("octocat", -1)):
        path = download / f"{student}_{NB}"
        path.write_bytes(stub())
        when = dt.datetime(2026, 12, 10, 12, tzinfo=UTC) + dt.timedelta(hours=hours)
        import os

        os.utime(path, (when.timestamp(), when.timestamp()))
    collect(course, A1, download, layout="plain", log=quiet)
    import_error = CellResult(1, "error", "", "Traceback ...\nModuleNotFoundError: No module named 'gymnasium2'\n", 0.1)
    graded(course, "anna", 0.5)
    graded(course, "müllerdan", 0.5, cells=[import_error])
    graded(course, "octocat", 1.0, status="grader-error")
    rows = {r["student_id"]: r for r in csv.DictReader(export(course, A1, log=quiet).open(encoding="utf-8"))}
    assert rows["anna"]["late"] == "" and rows["anna"]["name"] == "Anna Schmidt", "the extension covers 20 h"
    assert rows["müllerdan"]["late"] == "yes" and rows["müllerdan"]["penalty"] == "0.25"
    assert float(rows["müllerdan"]["final"]) == pytest.approx(float(rows["müllerdan"]["total"]) * 0.75)
    assert rows["müllerdan"]["flags"].startswith("IMPORT ERROR (cell 2: ModuleNotFoundError")
    assert rows["octocat"]["flags"].startswith("GRADER ERROR") and rows["octocat"]["late"] == ""
    # feedback: the flags and the lateness are on the student's page
    pages = {p.parent.parent.name: p.read_text(encoding="utf-8") for p in generate_feedback(course, A1, log=quiet)}
    assert "An import failed" in pages["müllerdan"] and "gymnasium2" in pages["müllerdan"]
    assert "LATE by 20.0 h" in pages["müllerdan"] and "after the late penalty" in pages["müllerdan"]
    assert "Grader error" in pages["octocat"] and "on time" in pages["octocat"]
    assert "(extended)" in pages["anna"]
    # LMS grade files: ids from the roster, rounded as asked, the late policy applied
    canvas = list(csv.reader(export_lms(course, A1, "canvas", decimals=1, column="A1 (4321)", log=quiet).open()))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "A1 (4321)"]
    by_id = {row[1]: row for row in canvas[1:]}
    assert set(by_id) == {"12345", "67890", "octocat"}
    assert by_id["67890"][5] == f"{round(float(rows['müllerdan']['final']), 1):.1f}"
    moodle = list(csv.DictReader(export_lms(course, A1, "moodle", decimals=0, log=quiet).open(encoding="utf-8")))
    assert {r["Identifier"] for r in moodle} == {"Participant 12345", "Participant 67890", "Participant octocat"}
    entry = next(r for r in moodle if r["Identifier"] == "Participant 67890")
    assert (
        entry["Grade"] == f"{round(float(rows['müllerdan']['final'])):.0f}"
        and "IMPORT ERROR" in entry["Feedback comments"]
    )
    assert cli(["--root", str(course.root), "export", A1, "--format", "canvas", "--round", "3"]) == 0
    assert (course.root / "instructor" / f"{A1}_canvas.csv").is_file()


def test_lms_export_needs_a_roster(course):
    graded(course, "anna", 1.0) if (course.submission_dir("anna", A1)).exists() else None
    with pytest.raises(ValueError, match="roster"):
        export_lms(course, A1, "moodle", log=quiet)


# ----------------------------------------------------------------------------- failures visible


IMPORT_FAILS = "import gymnasium_that_is_not_installed\n"


def notebook_with_failed_import(tmp_path) -> Path:
    import nbformat

    nb = nbformat.read(REPO / "solutions" / A1 / NB, as_version=4)
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells[first_code].source = IMPORT_FAILS + nb.cells[first_code].source
    path = tmp_path / NB
    nbformat.write(nb, path)
    return path


def test_autograde_summary_line_flags_the_failed_import(course, tmp_path):
    from course_grader.sandbox import probe_bubblewrap

    if not probe_bubblewrap().available:
        pytest.skip("needs the grading sandbox")
    download = tmp_path / "download" / "anna"
    download.mkdir(parents=True)
    shutil.copy(notebook_with_failed_import(tmp_path), download / NB)
    collect(course, A1, tmp_path / "download", log=quiet)
    settings(course, "[assignments.a1_score_function]\ndue = 2026-01-01T00:00:00Z\n")  # long past: late
    lines = []
    autograde(course, A1, seed=1, cell_timeout=20, log=lines.append)
    (summary,) = [line for line in lines if line.lstrip().startswith("anna")]
    assert "[IMPORT ERROR (cell" in summary and "gymnasium_that_is_not_installed" in summary, summary
    assert "[LATE by" in summary, summary
    assert scores(course, A1, "a1_score_function", "anna"), "the result is still recorded"


def test_validate_names_the_failed_import_before_the_name_errors(tmp_path, monkeypatch):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell(IMPORT_FAILS + "\ndef helper(v):\n    return v + 1"),
        nbformat.v4.new_code_cell("assert helper(1) == 2"),
    ]
    path = tmp_path / "check.ipynb"
    nbformat.write(nb, path)
    monkeypatch.chdir(REPO)  # where students run it: the course's nbgrader_config.py applies
    lines = []
    assert validate(path, log=lines.append) == 1
    text = "\n".join(lines)
    assert text.startswith("IMPORT FAILED in 1 cell(s)"), text
    assert text.index("gymnasium_that_is_not_installed") < text.index("NameError"), text
    assert "VALIDATION FAILED ON 2 CELL(S)" in text


def test_settings_file_errors_are_clear(course):
    settings(course, "[assignments.a1_score_function]\ndue = 'tomorrow'\n")
    with pytest.raises(ValueError, match="due"):
        load_settings(course)
    assert cli(["--root", str(course.root), "export", A1]) == 1


def test_a_file_time_out_of_any_calendar_is_reported_not_fatal(tmp_path):
    import os

    from course_grader.collection import _submission_time

    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        when, source = _submission_time(fd, (NB,), 1e20)  # some file systems keep such times
    finally:
        os.close(fd)
    assert source.startswith("unknown") and when.tzinfo is not None
