"""``collect``: copy a folder (or .zip) of downloaded submissions into ``instructor/submitted``.

Nothing from the download is trusted: only regular files are read, never through a link, each bad entry
or zip member is skipped with its reason, and ids are matched whole.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
from pathlib import Path

from .course import Course, check_student_id
from .gradebook import utc_timestamp
from .notebooks import MAX_NOTEBOOK_BYTES
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


class _NotCollected(Exception):
    """One entry of the download cannot be collected; the message says why (it is skipped, not fatal)."""


def collect(course: Course, assignment: str, source: Path, pattern: str = DEFAULT_PATTERN, log=print) -> dict:
    """Copy a folder (or .zip) of downloaded submissions into ``instructor/submitted``.

    Accepted layouts: notebooks directly in the folder, the student id taken
    from the file name by ``pattern`` (a regex with a ``student_id`` group;
    default: everything before the first ``_``), or one sub-folder per
    student id holding the notebook. Returns ``{"collected": [...], "skipped": [...]}``.

    Only regular files are read: symbolic links (wherever they point), FIFOs, devices and sockets are
    skipped and reported, and nothing is opened through a link, so nothing outside ``source`` is ever
    read. Each bad entry is skipped with its reason; the others are collected. Ids must match whole
    (``check_student_id``), are kept in NFC and never shortened.
    """
    spec = load_assignment(course.solutions, assignment, course.assignments)
    regex = re.compile(pattern)
    if "student_id" not in regex.groupindex:
        raise ValueError(f"the pattern {pattern!r} needs a named group (?P<student_id>...)")
    source = Path(source)
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="course-collect-") as tmp:
        if source.suffix == ".zip" and source.is_file():
            source = _safe_unzip(source, Path(tmp), skipped, assignment)
        if not source.is_dir():
            raise ValueError(f"{source} is neither a folder nor a .zip file of submissions")
        root_fd = os.open(source.resolve(), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            found = _find_submissions(root_fd, regex, pattern, skipped)
            collected = []
            for student, notebooks in sorted(found.items()):
                if len(notebooks) > 1:
                    named = [p for p in notebooks if p[-1] == spec.notebook]
                    if len(named) != 1:
                        shown = ", ".join("/".join(p) for p in notebooks[:4])
                        skipped.append(f"{student}: {len(notebooks)} notebooks ({shown}); keep only {spec.notebook}")
                        continue
                    notebooks = named
                try:
                    data, mtime = _read_regular(root_fd, notebooks[0], MAX_SUBMISSION_BYTES)
                except _NotCollected as err:
                    skipped.append(f"{'/'.join(notebooks[0])}: {err}")
                    continue
                dest = course.submission_dir(student, assignment)
                if dest.exists():
                    shutil.rmtree(dest)
                dest.mkdir(parents=True)
                (dest / spec.notebook).write_bytes(data)
                (dest / "timestamp.txt").write_text(utc_timestamp(mtime) + "\n")
                collected.append(student)
        finally:
            os.close(root_fd)
    log(f"collected {len(collected)} submission(s) of {assignment} into {course.submitted}")
    for line in skipped:
        log(f"  skipped {_printable(line)}")
    return {"collected": collected, "skipped": skipped}


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


def _find_submissions(root_fd: int, regex, pattern: str, skipped: list[str]) -> dict[str, list[tuple[str, ...]]]:
    """Student id -> the notebooks found for them, as paths (tuples of names) below the source folder."""
    found: dict[str, list[tuple[str, ...]]] = {}
    for name, mode in _entries(root_fd):
        shown = _printable(name)
        if stat.S_ISDIR(mode):
            student = unicodedata.normalize("NFC", name)
            notebooks: list[tuple[str, ...]] = []
            if not _notebooks_in(root_fd, (name,), notebooks, skipped, 1):
                continue
        elif name.endswith(".ipynb"):
            problem = _kind(mode)
            if problem:
                skipped.append(f"{shown}: {problem}")
                continue
            match = regex.search(unicodedata.normalize("NFC", name))
            if match is None or match.group("student_id") is None:
                skipped.append(f"{shown}: no student id matches {pattern!r}")
                continue
            student, notebooks = match.group("student_id"), [(name,)]
        else:
            problem = _kind(mode)
            skipped.append(f"{shown}: {problem}" if problem else f"{shown}: not a notebook")
            continue
        try:
            student = check_student_id(student)
        except ValueError as err:
            skipped.append(f"{shown}: {err}")
            continue
        if not notebooks:
            skipped.append(f"{shown}: contains no .ipynb file")
            continue
        found.setdefault(student, []).extend(notebooks)
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


def _safe_unzip(archive: Path, into: Path, skipped: list[str], assignment: str) -> Path:
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
            shown = f"{archive.name}:{_printable(info.filename)}"
            parts = _member_parts(info.filename)
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
            if not parts[-1].endswith(".ipynb") or parts[0] in _IGNORED or any(p.startswith(".") for p in parts):
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
            except (OSError, zipfile.BadZipFile, ValueError, NotImplementedError, EOFError) as err:
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
