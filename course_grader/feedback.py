"""Feedback for one student, as a self-contained HTML page.

Built only from the ``public`` part of a grading result (scores, the reasons
the checks gave, the student's own cells with their output and errors) and
from the gradebook's scores and comments. It never contains the hidden tests'
source, the grader's inputs or any expected value: those exist only in the
``private`` part, which this module does not read. (nbgrader's own
``generate_feedback`` shows the test cells' source; do not use it here.)
"""

from __future__ import annotations

import html
import re

_IMPORT_ERROR = re.compile(r"^(?:\w+\.)*(ModuleNotFoundError|ImportError): (.*)$", re.M)


def _e(text) -> str:
    return html.escape(str(text), quote=True)


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: .4rem .6rem; text-align: left; vertical-align: top; }
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; white-space: pre-wrap; font-size: .85rem; }
.passed { color: #176b2c; } .partial { color: #8a5a00; } .failed, .error, .timeout, .crashed { color: #a01818; }
.note { background: #fff6e0; padding: .6rem; border-left: 4px solid #e0a000; }
"""


def import_failures(cells: list[dict]) -> list[str]:
    """``"cell N: ModuleNotFoundError: No module named 'x'"`` for each of the student's cells whose import failed."""
    found = []
    for cell in cells:
        match = _IMPORT_ERROR.search(str(cell.get("error") or ""))
        if match:
            found.append(f"cell {cell.get('index', 0) + 1}: {match.group(1)}: {match.group(2)[:200]}")
    return found


def failure_flags(public: dict) -> list[str]:
    """What went wrong in a way the score alone hides, for the summary line, the CSV and the feedback page:
    ``"IMPORT ERROR (cell 2: ModuleNotFoundError: ...)"``, ``"GRADER ERROR (q_id, ...)"``, ``"NOT GRADED"``."""
    flags = []
    imports = import_failures(public.get("cells", []))
    if imports:
        flags.append(f"IMPORT ERROR ({'; '.join(imports)})")
    crashed = [gid for gid, q in public.get("questions", {}).items() if q.get("status") == "grader-error"]
    if crashed or public.get("status") == "grader-error":
        flags.append(f"GRADER ERROR ({', '.join(crashed) or 'whole submission'})")
    if public.get("status") == "invalid":
        flags.append("NOT GRADED (not a readable notebook)")
    return flags


def render(student: str, assignment: str, public: dict, gradebook_scores: dict[str, dict], lateness=None) -> str:
    """The feedback page: total, one row per question with its reasons, written answers, then the run."""
    rows, manual_rows = [], []
    total, maximum, pending = 0.0, 0.0, False
    for grade_id, q in public.get("questions", {}).items():
        score = gradebook_scores.get(grade_id, {}).get("score", q["score"])
        comment = gradebook_scores.get(grade_id, {}).get("comment")
        total += score or 0.0
        maximum += q["points"]
        messages = "\n".join(q.get("messages", []))
        rows.append(
            f"<tr><td>{_e(q.get('title', grade_id))}</td><td class='{_e(q['status'])}'>{score:g} / {q['points']:g}</td>"
            f"<td><pre>{_e(messages)}</pre>{_comment(comment)}</td></tr>"
        )
    for grade_id, m in public.get("manual", {}).items():
        entry = gradebook_scores.get(grade_id, {})
        maximum += m["points"]
        if entry.get("graded"):
            total += entry["score"] or 0.0
            shown = f"{entry['score']:g} / {m['points']:g}"
        else:
            pending = True
            shown = f"– / {m['points']:g} (not graded yet)"
        status = {
            "unanswered": "no answer was given",
            "missing": "the answer cell is missing from the notebook",
            "needs manual grading": "graded by hand",
        }.get(m["status"], m["status"])
        manual_rows.append(
            f"<tr><td>{_e(grade_id)}</td><td>{_e(shown)}</td><td>{_e(status)}{_comment(entry.get('comment'))}</td></tr>"
        )

    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(assignment)} feedback for {_e(student)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{_e(assignment)}: feedback for {_e(student)}</h1>",
        f"<p><b>Score: {total:g} / {maximum:g}</b>{' (written answers not graded yet)' if pending else ''}</p>",
    ]
    if lateness is not None and lateness.due is not None:
        if lateness.late and lateness.penalty:
            parts.append(
                f"<p class='note flag'><b>Late:</b> {_e(lateness.describe())}. "
                f"<b>Score after the late penalty: {lateness.apply(total):g} / {maximum:g}</b></p>"
            )
        else:
            parts.append(f"<p class='{'note flag' if lateness.late else 'passed'}'>{_e(lateness.describe())}</p>")
    flags = failure_flags(public)
    if any(flag.startswith("IMPORT ERROR") for flag in flags):
        parts.append(
            "<p class='note flag'><b>An import failed</b> -- "
            + _e("; ".join(import_failures(public.get("cells", []))))
            + ". Every name that cell should have defined is missing, so later errors (NameError) may come "
            "from it: fix the import first.</p>"
        )
    if any(flag.startswith("GRADER ERROR") for flag in flags):
        parts.append(
            "<p class='note flag'><b>Grader error</b>: the grader itself failed on part of this submission; "
            "the questions concerned score 0 for now and your instructor will grade them by hand.</p>"
        )
    for problem in public.get("problems", []):
        parts.append(f"<p class='note'>{_e(problem)}</p>")
    if rows:
        parts.append(
            "<h2>Autograded questions</h2><p>Each question was checked on new inputs drawn for this run; "
            "✓ marks a property your code has, ✗ one it does not.</p>"
        )
        parts.append("<table><tr><th>question</th><th>score</th><th>checks</th></tr>" + "".join(rows) + "</table>")
    if manual_rows:
        parts.append(
            "<h2>Written answers</h2><table><tr><th>answer</th><th>score</th><th>notes</th></tr>"
            + "".join(manual_rows)
            + "</table>"
        )
    cells = public.get("cells", [])
    if cells:
        parts.append(
            "<h2>Your notebook as the grader ran it</h2><p>Your code cells in your order (cells counted "
            "from 1, visible test cells skipped), in fast mode. Output is shortened.</p>"
        )
        for cell in cells:
            parts.append(
                f"<h3>cell {cell['index'] + 1}: <span class='{_e(cell['status'])}'>{_e(cell['status'])}</span>"
                f" ({cell['seconds']:g} s)</h3>"
            )
            if cell.get("output"):
                parts.append(f"<pre>{_e(cell['output'][:5000])}</pre>")
            if cell.get("error"):
                parts.append(f"<pre class='error'>{_e(cell['error'][:5000])}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _comment(comment) -> str:
    return f"<p><i>Instructor: {_e(comment)}</i></p>" if comment else ""
