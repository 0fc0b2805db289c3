"""Due dates, extensions and the late policy, from ``instructor/course.toml`` (private to the instructor)::

    timezone = "Europe/Berlin"        # for due dates written without an offset, and zip entries' times

    [late_policy]                     # the course's policy; an assignment may set its own
    grace_minutes = 15                # up to this late counts as on time
    penalty_per_day = 0.10            # each started day late costs 10 % of the points earned ...
    zero_after_days = 7               # ... and more than 7 days late scores 0

    [assignments.a1_score_function]
    due = 2026-12-10T23:59:00         # TOML date-time (an offset like +01:00 is allowed)

    [assignments.a1_score_function.extensions]
    anna = 2026-12-12T23:59:00        # a new due date for one student ...
    "müllerdan" = 3                   # ... or extra days

Lateness is judged on each submission's time as ``collect`` recorded it (``timestamp.txt``: the time in
the LMS's metadata or the archive, never the time of unpacking). The penalty applies to the total in the
CSV, the LMS exports and the feedback; the gradebook keeps the per-question scores unchanged. Without a
due date nothing is late.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .course import Course, check_student_id

UTC = dt.timezone.utc


@dataclass(frozen=True)
class LatePolicy:
    grace_minutes: float = 0.0
    penalty_per_day: float = 0.0
    zero_after_days: float | None = None

    def describe(self) -> str:
        parts = [f"{self.grace_minutes:g} min grace"] if self.grace_minutes else []
        if self.penalty_per_day:
            parts.append(f"-{self.penalty_per_day:.0%} of the points per started day late")
        if self.zero_after_days is not None:
            parts.append(f"0 points after {self.zero_after_days:g} days")
        return ", ".join(parts) or "late submissions are flagged, not penalised"


@dataclass(frozen=True)
class Lateness:
    """One submission against its (possibly extended) due date."""

    due: dt.datetime | None
    submitted: dt.datetime | None
    extended: bool = False
    seconds_late: float = 0.0
    late: bool = False
    penalty: float = 0.0  # the fraction of the points earned that is taken off

    def apply(self, total: float) -> float:
        return round(max(0.0, total * (1.0 - self.penalty)), 6)

    def describe(self) -> str:
        if self.due is None:
            return "no due date"
        if self.submitted is None:
            return "submission time unknown"
        due = f"due {self.due:%Y-%m-%d %H:%M %Z}" + (" (extended)" if self.extended else "")
        if not self.late:
            return f"on time ({due})"
        hours = self.seconds_late / 3600
        late = f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"
        return f"LATE by {late} ({due})" + (f", penalty {self.penalty:.0%}" if self.penalty else "")


@dataclass(frozen=True)
class Settings:
    timezone: dt.tzinfo = UTC
    policy: LatePolicy = LatePolicy()
    assignments: dict | None = None

    def due(self, assignment: str) -> dt.datetime | None:
        entry = (self.assignments or {}).get(assignment, {})
        return entry.get("due")

    def policy_for(self, assignment: str) -> LatePolicy:
        return (self.assignments or {}).get(assignment, {}).get("policy") or self.policy

    def lateness(self, assignment: str, student: str, submitted: dt.datetime | None) -> Lateness:
        due = self.due(assignment)
        if due is None:
            return Lateness(None, submitted)
        extension = (self.assignments or {}).get(assignment, {}).get("extensions", {}).get(student)
        extended = extension is not None
        if isinstance(extension, dt.datetime):
            due = max(due, extension)
        elif extension is not None:
            due = due + dt.timedelta(days=float(extension))
        if submitted is None:
            return Lateness(due, None, extended)
        policy = self.policy_for(assignment)
        seconds = (submitted - due).total_seconds()
        late = seconds > policy.grace_minutes * 60
        penalty = 0.0
        if late:
            days = math.ceil(seconds / 86400)
            penalty = min(1.0, policy.penalty_per_day * days)
            if policy.zero_after_days is not None and seconds > policy.zero_after_days * 86400:
                penalty = 1.0
        return Lateness(due, submitted, extended, max(0.0, seconds), late, penalty)


def settings_file(course: Course) -> Path:
    return course.root / "instructor" / "course.toml"


def _when(value, zone: dt.tzinfo, where: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(23, 59, 59), zone).astimezone(UTC)
    raise ValueError(f"{where}: expected a date-time like 2026-12-10T23:59:00, got {value!r}")


def _policy(table, where: str) -> LatePolicy:
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table")
    unknown = set(table) - {"grace_minutes", "penalty_per_day", "zero_after_days"}
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {sorted(unknown)}")
    values = {}
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{where}.{key} must be a number >= 0, got {value!r}")
        values[key] = float(value)
    if values.get("penalty_per_day", 0) > 1:
        raise ValueError(f"{where}.penalty_per_day is a fraction (0.1 = 10 %), got {values['penalty_per_day']}")
    return LatePolicy(**values)


def parse_settings(text: str, source: str = "course.toml") -> Settings:
    """The settings in ``text``, or ValueError naming the setting that is wrong."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package, if it is installed
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ValueError(f"reading {source} needs Python 3.11 or the tomli package (pip install tomli)") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{source} is not valid TOML: {err}") from None
    unknown = set(data) - {"timezone", "late_policy", "assignments"}
    if unknown:
        raise ValueError(f"{source}: unknown setting(s) {sorted(unknown)}")
    try:
        zone = ZoneInfo(data["timezone"]) if "timezone" in data else UTC
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"{source}: unknown timezone {data.get('timezone')!r} (use a name like Europe/Berlin)"
        ) from None
    policy = _policy(data.get("late_policy", {}), f"{source}: late_policy")
    assignments = {}
    tables = data.get("assignments", {})
    if not isinstance(tables, dict):
        raise ValueError(f"{source}: assignments must be tables [assignments.NAME]")
    for name, table in tables.items():
        where = f"{source}: assignments.{name}"
        if not isinstance(table, dict):
            raise ValueError(f"{where} must be a table")
        unknown = set(table) - {"due", "late_policy", "extensions"}
        if unknown:
            raise ValueError(f"{where}: unknown setting(s) {sorted(unknown)}")
        entry = {"due": _when(table["due"], zone, f"{where}.due") if "due" in table else None}
        if "late_policy" in table:
            entry["policy"] = _policy(table["late_policy"], f"{where}.late_policy")
        extensions = {}
        for student, value in table.get("extensions", {}).items():
            try:
                student_id = check_student_id(student)
            except ValueError as err:
                raise ValueError(f"{where}.extensions: {err}") from None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if not math.isfinite(value) or value < 0:
                    raise ValueError(f"{where}.extensions.{student}: extra days must be >= 0, got {value!r}")
                extensions[student_id] = float(value)
            else:
                extensions[student_id] = _when(value, zone, f"{where}.extensions.{student}")
        entry["extensions"] = extensions
        assignments[name] = entry
    return Settings(zone, policy, assignments)


def load_settings(course: Course) -> Settings:
    """The course's settings (defaults if ``instructor/course.toml`` does not exist)."""
    path = settings_file(course)
    if not path.is_file():
        return Settings()
    return parse_settings(path.read_text(encoding="utf-8"), str(path))


def parse_timestamp(text: str) -> dt.datetime | None:
    """A ``timestamp.txt`` as nbgrader and ``collect`` write it ("2026-12-10 22:59:00.000000 UTC"), in UTC;
    None if it is not one."""
    text = text.strip()
    if not text or len(text) > 64:
        return None
    zone = None
    if text.endswith(" UTC") or text.endswith("Z"):
        text, zone = text.removesuffix(" UTC").removesuffix("Z"), UTC
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone or UTC)
    return when.astimezone(UTC)


def submission_time(course: Course, assignment: str, student: str) -> dt.datetime | None:
    stamp = course.submission_dir(student, assignment) / "timestamp.txt"
    try:
        return parse_timestamp(stamp.read_text(encoding="utf-8", errors="replace")[:200])
    except OSError:
        return None
