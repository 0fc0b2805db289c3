"""The class list: who the students are, by course id, name, e-mail and LMS id.

``instructor/roster.csv`` (private, like everything in ``instructor/``) has a header row and one row per
student::

    id,name,email,lms_id
    anna,Anna Schmidt,anna@example.org,12345
    müllerdan,"Müller, Dan",dan@example.org,67890

``id`` is the course's student id (the folder names in ``instructor/submitted``), ``name`` is shown in
formgrader ("Müller, Dan" or "Dan Müller"), ``lms_id`` is what the LMS calls the student: Canvas's user id
(the number in its download's file names), Moodle's participant number (the number in its folder names and
"Participant N" in its grading worksheet) or a GitHub login. ``collect`` maps LMS ids to course ids,
``export --format canvas|moodle`` maps them back. The file is read as untrusted text: every problem is
reported with its line, and a roster with any problem is refused as a whole (nothing is changed).
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .course import Course, check_student_id

MAX_ROSTER_BYTES = 5 * 2**20
MAX_NAME = 200
_LMS_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")
_EMAIL = re.compile(r"[^@\s,;<>\"']{1,64}@[^@\s,;<>\"']{1,190}")
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
ID_COLUMNS = ("id", "student_id")
LMS_COLUMNS = ("lms_id", "lms id", "lms_user_id")


@dataclass(frozen=True)
class Student:
    id: str
    name: str
    email: str = ""
    lms_id: str = ""

    @property
    def first_and_last(self) -> tuple[str, str]:
        """nbgrader's (first_name, last_name): "Last, First" or "First ... Last"."""
        if "," in self.name:
            last, first = (part.strip() for part in self.name.split(",", 1))
            return first, last
        first, _, last = self.name.rpartition(" ")
        return (first, last) if first else ("", last)


@dataclass(frozen=True)
class Roster:
    students: tuple[Student, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.students)

    def by_id(self, student: str) -> Student | None:
        return next((s for s in self.students if s.id == student), None)

    def by_lms_id(self, lms_id: str) -> Student | None:
        return next((s for s in self.students if s.lms_id and s.lms_id == lms_id), None)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.students]


def clean_name(value: str, what: str = "name") -> str:
    """A person's name in NFC, or ValueError for control characters, line breaks or bidi overrides."""
    name = unicodedata.normalize("NFC", value.strip())
    bad = [c for c in name if unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs", "Co") or c in _BIDI_CONTROLS]
    if bad:
        raise ValueError(f"the {what} {name!r} holds control characters ({', '.join(f'U+{ord(c):04X}' for c in bad)})")
    if len(name) > MAX_NAME:
        raise ValueError(f"the {what} is longer than {MAX_NAME} characters")
    return name


def parse_roster(data: bytes, source: str = "roster.csv") -> Roster:
    """The roster in ``data`` (CSV, UTF-8 with or without a BOM), or ValueError listing every bad line."""
    if len(data) > MAX_ROSTER_BYTES:
        raise ValueError(f"{source} is larger than {MAX_ROSTER_BYTES // 2**20} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{source} is not UTF-8 text (byte {err.start}); save it as 'CSV UTF-8'") from None
    if "\x00" in text:
        raise ValueError(f"{source} holds NUL bytes: not a CSV file")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows, lines, last = [], [], 0
    try:
        for row in reader:  # each row with the line it starts on (a quoted field may span lines)
            rows.append(row)
            lines.append(last + 1)
            last = reader.line_num
    except csv.Error as err:
        raise ValueError(f"{source} line {reader.line_num}: not valid CSV ({err})") from None
    if not rows:
        raise ValueError(f"{source} is empty: it needs a header row id,name,email,lms_id")
    header = [h.strip().lower() for h in rows[0]]
    column = {}
    for key, names in (("id", ID_COLUMNS), ("name", ("name",)), ("email", ("email",)), ("lms_id", LMS_COLUMNS)):
        found = [i for i, h in enumerate(header) if h in names]
        if len(found) > 1:
            raise ValueError(f"{source}: the column {key} appears twice in the header")
        if found:
            column[key] = found[0]
    if "id" not in column or "name" not in column:
        raise ValueError(f"{source}: the header must name the columns id and name (and email, lms_id): got {rows[0]}")
    students, problems, seen_ids, seen_lms = [], [], {}, {}
    for line, row in zip(lines[1:], rows[1:], strict=True):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(f"line {line}: {len(row)} fields where the header has {len(header)}")
            continue
        try:
            student = check_student_id(row[column["id"]].strip())
            name = clean_name(row[column["name"]])
            email = row[column["email"]].strip() if "email" in column else ""
            if email and not _EMAIL.fullmatch(email):
                raise ValueError(f"{email!r} is not an e-mail address")
            lms_id = row[column["lms_id"]].strip() if "lms_id" in column else ""
            if lms_id and not _LMS_ID.fullmatch(lms_id):
                raise ValueError(f"the LMS id {lms_id!r} is not usable (letters, digits and . _ @ + -)")
        except ValueError as err:
            problems.append(f"line {line}: {err}")
            continue
        if student in seen_ids:
            problems.append(f"line {line}: the id {student!r} is already on line {seen_ids[student]}")
            continue
        if lms_id and lms_id in seen_lms:
            problems.append(f"line {line}: the LMS id {lms_id!r} is already on line {seen_lms[lms_id]}")
            continue
        seen_ids[student], seen_lms[lms_id] = line, line
        students.append(Student(student, name, email, lms_id))
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise ValueError(f"{source} was not used ({len(problems)} problem(s)):\n  {shown}")
    return Roster(tuple(students))


def roster_file(course: Course) -> Path:
    """Where the course's roster is kept."""
    return course.root / "instructor" / "roster.csv"


def load_roster(course: Course) -> Roster:
    """The course's roster (empty if there is none yet); ValueError if the file is malformed."""
    path = roster_file(course)
    if not path.is_file():
        return Roster()
    return parse_roster(path.read_bytes(), str(path))


def install_roster(course: Course, source: Path, log=print) -> Roster:
    """Check ``source``, then make it the course's roster and write the names into the gradebook.

    Nothing is changed unless the whole file is valid; the copy replaces the old roster atomically.
    """
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"{source} is not a file")
    data = source.read_bytes()
    roster = parse_roster(data, str(source))
    if not roster:
        raise ValueError(f"{source} lists no student")
    target = roster_file(course)
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.resolve() != target.resolve():
        with tempfile.NamedTemporaryFile("wb", dir=target.parent, delete=False, prefix=".roster-") as tmp:
            tmp.write(data)
        os.replace(tmp.name, target)
    names_into_gradebook(course, roster)
    log(f"roster: {len(roster.students)} student(s) from {source}, names written into the gradebook")
    return roster


def names_into_gradebook(course: Course, roster: Roster) -> None:
    """Every roster student in nbgrader's gradebook with their name, e-mail and LMS id (formgrader shows them)."""
    from .course import open_gradebook

    with open_gradebook(course) as gb:
        for s in roster.students:
            first, last = s.first_and_last
            gb.update_or_create_student(
                s.id, first_name=first, last_name=last, email=s.email or None, lms_user_id=s.lms_id or None
            )
