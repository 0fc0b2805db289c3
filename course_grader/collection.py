"""``collect``: copy a folder (or .zip) of downloaded submissions into ``instructor/submitted``.

Nothing from the download is trusted: only regular files are read, never through a link, each bad entry
or zip member is skipped with its reason, and ids are matched whole.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import stat
import struct
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .course import Course, check_student_id
from .deadlines import load_settings, parse_timestamp
from .gradebook import utc_timestamp
from .notebooks import MAX_NOTEBOOK_BYTES
from .roster import Roster, clean_name, load_roster
from .spec import load_assignment
from .untrusted import clean_text

# The id is everything before the first "_" (or the whole name), letters and digits of any script; a name
# whose id part holds anything else (a space, a tilde) matches nothing rather than being cut short.
DEFAULT_PATTERN = r"^(?P<student_id>[^\W_](?:[^\W_]|[.@+-])*?)(?:_.*)?\.ipynb$"
MAX_SUBMISSION_BYTES = MAX_NOTEBOOK_BYTES
MAX_ARCHIVE_BYTES = 2 * 2**30
MAX_ARCHIVE_MEMBERS = 20_000
MAX_FOLDER_DEPTH = 8
_IGNORED = ("__MACOSX", ".ipynb_checkpoints")
LAYOUTS = ("auto", "moodle", "canvas", "github", "plain")
# Moodle's "Download all submissions": a folder (or, without folders, a file-name prefix) per participant,
# "<full name>_<participant number>_assignsubmission_file_" (the online-text plugin: ..._onlinetext_).
MOODLE = re.compile(r"^(?P<name>[^_]+)_(?P<lms_id>[0-9]{1,18})_assignsubmission_(?:file|onlinetext)_(?P<rest>.*)$")
# Canvas's "Download Submissions": flat files "<name>_[late_]<user id>_<submission id>_<file name>", the name
# being the student's sortable name in lower case without spaces or punctuation ("müllerdan").
CANVAS = re.compile(
    r"^(?P<login>[^\W_]+)_(?:(?P<late>[Ll][Aa][Tt][Ee])_)?(?P<lms_id>[0-9]{1,18})_(?P<file_id>[0-9]{1,18})_(?P<rest>.+)$"
)
TIMESTAMP_NAME = "timestamp.txt"  # nbgrader's exchange writes the submission time beside the notebook


@dataclass
class _Found:
    """One notebook found for a student, with what the download says about it."""

    path: tuple[str, ...]
    layout: str = "plain"
    lms_id: str = ""
    name: str = ""
    lms_late: bool = False
    entry: str = ""
    extra: dict = field(default_factory=dict)


class _NotCollected(Exception):
    """One entry of the download cannot be collected; the message says why (it is skipped, not fatal)."""


def collect(
    course: Course,
    assignment: str,
    source: Path,
    pattern: str = DEFAULT_PATTERN,
    log=print,
    layout: str = "auto",
    prefix: str | None = None,
) -> dict:
    """Copy a folder (or .zip) of downloaded submissions into ``instructor/submitted``.

    Accepted layouts (``layout="auto"`` recognises each entry by its name):

    - ``moodle``: "Download all submissions" -- a folder ``<Full Name>_<participant>_assignsubmission_file_/``
      per student (or, without folders, files with that prefix);
    - ``canvas``: "Download Submissions" -- flat files ``<name>_[late_]<user id>_<submission id>_<file>``;
    - ``github``: one folder per student repository ``<prefix><login>/`` (``gh classroom clone
      student-repos`` puts them in ``<assignment>-submissions/``; the Classroom Assistant in a folder per
      assignment): the prefix is the assignment's name as a slug (``a1-score-function-``), ``prefix``, or,
      with ``layout="github"``, the prefix all folders share;
    - ``plain``: notebooks directly in the folder, the student id taken from the file name by ``pattern``
      (a regex with a ``student_id`` group; default: everything before the first ``_``), or one
      sub-folder per student id holding the notebook (nbgrader's layout; a ``timestamp.txt`` beside the
      notebook is kept).

    LMS ids are mapped to course ids with the roster (``instructor/roster.csv``); without a roster entry
    the LMS's own login (Canvas), participant number (Moodle) or GitHub login is the id. Students not in
    the roster, and roster students without a submission, are reported. The submission time kept in
    ``timestamp.txt`` is the one the download carries: nbgrader's ``timestamp.txt``, else the zip entry's
    time (its UTC extra field, or its local time in the course's timezone), else the file's modification
    time -- never the time of unpacking. Returns ``{"collected": [...], "skipped": [...], "unknown": [...],
    "missing": [...]}``.

    Only regular files are read: symbolic links (wherever they point), FIFOs, devices and sockets are
    skipped and reported, and nothing is opened through a link, so nothing outside ``source`` is ever
    read. Each bad entry is skipped with its reason; the others are collected. Ids must match whole
    (``check_student_id``), are kept in NFC and never shortened; names are NFC without control characters.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"--lms must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    spec = load_assignment(course.solutions, assignment, course.assignments)
    regex = re.compile(pattern)
    if "student_id" not in regex.groupindex:
        raise ValueError(f"the pattern {pattern!r} needs a named group (?P<student_id>...)")
    roster = load_roster(course)  # a malformed roster stops here, before anything is written
    settings = load_settings(course)
    source = Path(source)
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="course-collect-") as tmp:
        if source.suffix == ".zip" and source.is_file():
            source = _safe_unzip(source, Path(tmp), skipped, assignment, settings.timezone)
        if not source.is_dir():
            raise ValueError(f"{source} is neither a folder nor a .zip file of submissions")
        root_fd = os.open(source.resolve(), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            root_fd = _unwrap(root_fd, layout)
            finder = _Finder(regex, pattern, skipped, layout, prefix, assignment, roster)
            found = finder.find(root_fd)
            collected = []
            for student, candidates in sorted(found.items()):
                if len(candidates) > 1:
                    named = [c for c in candidates if c.path[-1] == spec.notebook]
                    if len(named) != 1:
                        shown = ", ".join(_shown(c.path) for c in candidates[:4])
                        skipped.append(f"{student}: {len(candidates)} notebooks ({shown}); keep only {spec.notebook}")
                        continue
                    candidates = named
                chosen = candidates[0]
                try:
                    data, mtime = _read_regular(root_fd, chosen.path, MAX_SUBMISSION_BYTES)
                except _NotCollected as err:
                    skipped.append(f"{_shown(chosen.path)}: {err}")
                    continue
                submitted, time_source = _submission_time(root_fd, chosen.path, mtime)
                dest = course.submission_dir(student, assignment)
                if dest.exists():
                    shutil.rmtree(dest)
                dest.mkdir(parents=True)
                (dest / spec.notebook).write_bytes(data)
                (dest / TIMESTAMP_NAME).write_text(utc_timestamp(submitted.timestamp()) + "\n")
                record = {
                    "layout": chosen.layout,
                    "entry": clean_text(chosen.entry),
                    "lms_id": chosen.lms_id,
                    "name": chosen.name,
                    "lms_late": chosen.lms_late,
                    "time_source": time_source,
                    "in_roster": roster.by_id(student) is not None if roster else None,
                }
                (dest / "collected.json").write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n")
                collected.append(student)
        finally:
            os.close(root_fd)
    unknown = sorted(s for s in collected if roster and roster.by_id(s) is None)
    missing = sorted(set(roster.ids) - set(collected)) if roster else []
    log(f"collected {len(collected)} submission(s) of {assignment} into {course.submitted}")
    for line in skipped:
        log(f"  skipped {_printable(line)}")
    if unknown:
        log(f"  NOT IN THE ROSTER ({len(unknown)}): {_printable(', '.join(unknown))} -- collected under these ids")
    if missing:
        log(f"  no submission from {len(missing)} roster student(s): {_printable(', '.join(missing))}")
    return {"collected": collected, "skipped": skipped, "unknown": unknown, "missing": missing}


def _unwrap(root_fd: int, layout: str) -> int:
    """A download whose only entry is one folder named ``*-submissions`` (``gh classroom clone``), or any
    single folder for ``layout="github"``: collect from inside it. Returns the folder to read (closing the
    other)."""
    entries = _entries(root_fd)
    if len(entries) == 1 and stat.S_ISDIR(entries[0][1]):
        name = entries[0][0]
        if name.endswith("-submissions") or layout == "github":
            try:
                inner = _open_folder(root_fd, name)
            except OSError:
                return root_fd
            os.close(root_fd)
            return inner
    return root_fd


def _submission_time(root_fd: int, path: tuple[str, ...], mtime: float) -> tuple[dt.datetime, str]:
    """When the notebook was handed in: nbgrader's ``timestamp.txt`` beside it if it holds one, else its
    modification time (the zip entry's time for archives)."""
    if len(path) > 1:
        try:
            text, _ = _read_regular(root_fd, (*path[:-1], TIMESTAMP_NAME), 200)
            when = parse_timestamp(text.decode("utf-8", errors="replace"))
            if when is not None:
                return when, "timestamp.txt"
        except _NotCollected:
            pass
    try:
        return dt.datetime.fromtimestamp(mtime, tz=dt.timezone.utc), "file time"
    except (OverflowError, OSError, ValueError):  # a time no calendar holds: say so rather than guess
        return dt.datetime.now(dt.timezone.utc), "unknown (the file's time is out of range): the time of collecting"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _printable(text: str) -> str:
    return clean_text(text).encode("unicode_escape" if not text.isprintable() else "utf-8").decode("utf-8")


def _shown(path: tuple[str, ...]) -> str:
    """A path below the source folder as printed in the report."""
    return _printable("/".join(path))


def _kind(mode: int) -> str | None:
    """Why a file of this mode is not collected (None: a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "a symbolic link (only regular files are collected)"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file (a FIFO, device or socket)"


def _require_regular(mode: int) -> None:
    problem = _kind(mode)
    if problem:
        raise _NotCollected(problem)


def _entries(dir_fd: int) -> list[tuple[str, int]]:
    """The entries of an open folder, sorted, with their own modes (links not followed), hidden ones left out."""
    out = []
    for name in sorted(os.listdir(dir_fd)):
        if name.startswith(".") or name in _IGNORED:
            continue
        try:
            out.append((name, os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode))
        except OSError:
            continue
    return out


def _open_folder(dir_fd: int, name: str) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


class _Finder:
    """Student id -> the notebooks found for them (:class:`_Found`), entry by entry of the download."""

    def __init__(self, regex, pattern, skipped, layout, prefix, assignment, roster: Roster):
        self.regex, self.pattern, self.skipped = regex, pattern, skipped
        self.layout, self.prefix, self.assignment, self.roster = layout, prefix, assignment, roster

    def _github_prefix(self, folders: list[str]) -> str | None:
        if self.prefix:
            return self.prefix
        if self.layout not in ("auto", "github"):
            return None
        slug = _slug(self.assignment) + "-"
        if any(unicodedata.normalize("NFC", f).lower().startswith(slug) for f in folders):
            return slug
        if self.layout == "github" and len(folders) > 1:
            common = os.path.commonprefix(folders)
            return common[: common.rfind("-") + 1] or None
        return None

    def _student(self, found: _Found, fallback: str) -> str:
        """The course id of an LMS entry: the roster's (by LMS id), else the LMS's own id."""
        if self.roster and found.lms_id:
            known = self.roster.by_lms_id(found.lms_id)
            if known is not None:
                return known.id
        return fallback

    def find(self, root_fd: int) -> dict[str, list[_Found]]:
        found: dict[str, list[_Found]] = {}
        entries = _entries(root_fd)
        prefix = self._github_prefix([n for n, m in entries if stat.S_ISDIR(m)])
        for name, mode in entries:
            shown = _printable(name)
            normal = unicodedata.normalize("NFC", name)
            moodle = MOODLE.match(normal) if self.layout in ("auto", "moodle") else None
            canvas = CANVAS.match(normal) if self.layout in ("auto", "canvas") else None
            try:
                if stat.S_ISDIR(mode):
                    notebooks: list[tuple[str, ...]] = []
                    if not _notebooks_in(root_fd, (name,), notebooks, self.skipped, 1):
                        continue
                    if moodle:
                        meta = _Found((), "moodle", moodle["lms_id"], clean_name(moodle["name"]), entry=name)
                        student = self._student(meta, moodle["lms_id"])
                    elif prefix and normal.lower().startswith(prefix.lower()) and len(normal) > len(prefix):
                        login = normal[len(prefix) :]
                        meta = _Found((), "github", login, entry=name)
                        student = self._student(meta, login)
                    elif self.layout in ("moodle", "github"):
                        raise ValueError(f"not a {self.layout} submission folder")
                    else:
                        meta, student = _Found((), "plain", entry=name), normal
                    items = [_Found(p, meta.layout, meta.lms_id, meta.name, entry=name) for p in notebooks]
                elif name.endswith(".ipynb"):
                    problem = _kind(mode)
                    if problem:
                        self.skipped.append(f"{shown}: {problem}")
                        continue
                    if moodle:
                        meta = _Found((name,), "moodle", moodle["lms_id"], clean_name(moodle["name"]), entry=name)
                        student = self._student(meta, moodle["lms_id"])
                    elif canvas:
                        meta = _Found((name,), "canvas", canvas["lms_id"], lms_late=bool(canvas["late"]), entry=name)
                        student = self._student(meta, canvas["login"])
                    elif self.layout in ("moodle", "canvas", "github"):
                        raise ValueError(f"not a {self.layout} submission file name")
                    else:
                        match = self.regex.search(normal)
                        if match is None or match.group("student_id") is None:
                            self.skipped.append(f"{shown}: no student id matches {self.pattern!r}")
                            continue
                        meta, student = _Found((name,), "plain", entry=name), match.group("student_id")
                    items = [meta]
                else:
                    problem = _kind(mode)
                    self.skipped.append(f"{shown}: {problem}" if problem else f"{shown}: not a notebook")
                    continue
                student = check_student_id(student)
            except ValueError as err:
                self.skipped.append(f"{shown}: {err}")
                continue
            if not items:
                self.skipped.append(f"{shown}: contains no .ipynb file")
                continue
            found.setdefault(student, []).extend(items)
        return found


def _notebooks_in(parent_fd: int, path: tuple[str, ...], found: list, skipped: list[str], depth: int) -> bool:
    """Add the notebooks in the folder ``path[-1]`` of ``parent_fd`` and below it to ``found``, reporting each
    entry that is skipped; False (and reported) if the folder cannot be opened."""
    try:
        fd = _open_folder(parent_fd, path[-1])
    except OSError as err:
        skipped.append(f"{_shown(path)}: cannot be opened ({err.strerror})")
        return False
    try:
        _notebooks_below(fd, path, found, skipped, depth)
    finally:
        os.close(fd)
    return True


def _notebooks_below(dir_fd: int, path: tuple[str, ...], found: list, skipped: list[str], depth: int) -> None:
    if depth > MAX_FOLDER_DEPTH:
        skipped.append(f"{_shown(path)}: folders nested too deeply")
        return
    for name, mode in _entries(dir_fd):
        here = (*path, name)
        if stat.S_ISDIR(mode):
            _notebooks_in(dir_fd, here, found, skipped, depth + 1)
        elif name.endswith(".ipynb") or not stat.S_ISREG(mode):
            problem = _kind(mode)
            if problem:
                skipped.append(f"{_shown(here)}: {problem}")
            else:
                found.append(here)


def _read_regular(root_fd: int, path: tuple[str, ...], limit: int) -> tuple[bytes, float]:
    """The bytes and mtime of the regular file ``path`` below ``root_fd``, never following a link.

    Each folder is opened with O_NOFOLLOW and the file is checked with lstat before it is opened
    (O_NOFOLLOW | O_NONBLOCK, so a FIFO swapped in cannot block), then again with fstat.
    """
    fds = []
    try:
        parent = root_fd
        for name in path[:-1]:
            parent = _open_folder(parent, name)
            fds.append(parent)
        _require_regular(os.stat(path[-1], dir_fd=parent, follow_symlinks=False).st_mode)
        fd = os.open(path[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
        fds.append(fd)
        info = os.fstat(fd)
        _require_regular(info.st_mode)
        if info.st_size > limit:
            raise _NotCollected(f"{info.st_size / 2**20:.0f} MB, more than the {limit // 2**20} MB the grader accepts")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise _NotCollected(f"more than the {limit // 2**20} MB the grader accepts")
        return b"".join(chunks), info.st_mtime
    except OSError as err:
        raise _NotCollected(f"cannot be read ({err.strerror or err})") from None
    finally:
        for fd in reversed(fds):
            os.close(fd)


def _member_parts(name: str) -> tuple[str, ...] | None:
    """The path of a zip member as folder names, or None if it is absolute or climbs out (zip-slip)."""
    name = name.replace("\\", "/")
    if name.startswith("/") or "\x00" in name or re.match(r"[A-Za-z]:", name):
        return None
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    return None if any(p == ".." for p in parts) else parts


def _member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its creator meant it: zips written without the UTF-8 flag (older Windows tools)
    are decoded as code page 437 by Python; when those bytes are valid UTF-8, that is what they were."""
    if info.flag_bits & 0x800 or info.filename.isascii():
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except UnicodeError:
        return info.filename


def _member_time(info: zipfile.ZipInfo, zone: dt.tzinfo) -> float:
    """The member's modification time: the UTC time of its extended-timestamp field (0x5455) if it has one,
    else its DOS date and time, which are local time, taken in the course's timezone."""
    extra, offset = info.extra, 0
    while offset + 4 <= len(extra):
        kind, size = struct.unpack_from("<HH", extra, offset)
        body = extra[offset + 4 : offset + 4 + size]
        if kind == 0x5455 and len(body) >= 5 and body[0] & 1:
            return float(struct.unpack_from("<i", body, 1)[0])
        offset += 4 + size
    try:
        return dt.datetime(*info.date_time, tzinfo=zone).timestamp()
    except (ValueError, OverflowError):
        return 0.0


def _safe_unzip(
    archive: Path, into: Path, skipped: list[str], assignment: str, zone: dt.tzinfo = dt.timezone.utc
) -> Path:
    """Extract the regular files of ``archive`` into ``into``, skipping (and reporting) each unsafe member.

    Refused members: absolute or ``..`` paths (zip-slip), symbolic links and other special files,
    members over the notebook size limit, anything past 2 GB or 20,000 members in all. Only each
    member's declared size is ever read. Returns the folder to collect from: ``into``, or the archive's
    single top folder when that folder holds per-student folders (a "download all" archive).
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(f"{archive.name} is not a readable .zip file ({err})") from None
    with zf:
        total = 0
        infos = zf.infolist()
        if len(infos) > MAX_ARCHIVE_MEMBERS:
            skipped.append(f"{archive.name}: only the first {MAX_ARCHIVE_MEMBERS} of {len(infos)} members are read")
        for info in infos[:MAX_ARCHIVE_MEMBERS]:
            member = _member_name(info)
            shown = f"{archive.name}:{_printable(member)}"
            parts = _member_parts(member)
            if not parts:
                if parts is None:
                    skipped.append(f"{shown}: an unsafe path (absolute or with ..)")
                continue
            mode = info.external_attr >> 16
            if info.is_dir():
                continue  # folders are made for the notebooks they hold
            if mode and stat.S_IFMT(mode) and not stat.S_ISREG(mode):
                skipped.append(f"{shown}: {_kind(mode)}")
                continue
            stamp = parts[-1] == TIMESTAMP_NAME and info.file_size <= 200
            if (
                not (parts[-1].endswith(".ipynb") or stamp)
                or parts[0] in _IGNORED
                or any(p.startswith(".") for p in parts)
            ):
                continue  # not a notebook: never extracted
            if info.file_size > MAX_SUBMISSION_BYTES:
                skipped.append(f"{shown}: more than the {MAX_SUBMISSION_BYTES // 2**20} MB the grader accepts")
                continue
            total += info.file_size
            if total > MAX_ARCHIVE_BYTES:
                skipped.append(f"{shown}: the archive unpacks to more than {MAX_ARCHIVE_BYTES // 2**30} GB")
                continue
            target = into.joinpath(*parts)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "xb") as dst:  # "x": two members, one path
                    shutil.copyfileobj(src, dst)  # the zip reader stops at the declared size
                when = _member_time(info, zone)
                os.utime(target, (when, when))  # the time the archive records, not the time of unpacking
            except (OSError, zipfile.BadZipFile, ValueError, OverflowError, NotImplementedError, EOFError) as err:
                skipped.append(f"{shown}: cannot be extracted ({type(err).__name__})")
                target.unlink(missing_ok=True)
    entries = [p for p in into.iterdir() if not p.name.startswith(".") and p.name not in _IGNORED]
    if len(entries) == 1 and entries[0].is_dir() and _holds_student_folders(entries[0], assignment):
        return entries[0]
    return into


def _holds_student_folders(folder: Path, assignment: str) -> bool:
    """Is ``folder`` a course's "download all" wrapper, holding one sub-folder of notebooks per student?

    A single student's folder holds their notebook directly, or inside a folder named after the
    assignment (nbgrader's ``<student>/<assignment>/`` layout): that is the student, not a course.
    """
    return any(
        p.is_dir() and not p.is_symlink() and p.name != assignment and any(p.rglob("*.ipynb"))
        for p in folder.iterdir()
        if not p.name.startswith(".") and p.name not in _IGNORED
    )
