"""``autograde --scheduler ADDRESS|local``: the submissions spread over Dask distributed workers.

Each submission is one task. A worker grades it exactly as ``autograde`` does on one machine --
:func:`course_grader.grading.grade_submission`, the student's code in the worker's own bubblewrap
sandbox, the hidden checks in the worker's process -- and returns the :class:`GradeResult`. Only the
process that called ``autograde`` (the one that owns the course folder) writes anything: result files,
private records, the gradebook. Workers need the course's Python environment (``course_grader`` and
``course_utils`` installed, bubblewrap on the machine), not the course folder: the assignment's files
(``solutions/<name>/`` with its hidden tests, ``assignments/<name>/``) and each submission's notebook
travel with the work, and a worker keeps them in a private temporary folder.

``local`` starts a cluster on this machine (``--jobs`` worker processes, one thread each); any other
value is a scheduler's address (``tcp://host:8786``), started elsewhere with ``dask scheduler`` and
``dask worker tcp://host:8786 --nthreads 1`` on each grading machine (see deploy/README.md).

Failures cost one submission at most: a task that raises becomes a grader error for that student; a
worker that dies has its task re-run on another worker by the scheduler (a submission that kills
every worker it lands on ends as a grader error, ``KilledWorker``); a task that sends nothing back
within the assignment's time budget plus a margin is given up as a grader error.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import socket
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

from .course import Course
from .grading import GradeResult, Prepared, grade_submission, grader_failure, prepare
from .sandbox import probe_bubblewrap
from .spec import load_assignment

# Seconds a submission may take beyond the assignment's own time budget (sandbox start-up, import of torch in a
# fresh worker, moving the result) before the client gives it up.
RESULT_MARGIN = 120.0
SKIPPED = ("__pycache__", ".ipynb_checkpoints")


def assignment_bundle(course: Course, assignment: str) -> dict[str, bytes]:
    """The files a worker needs to grade ``assignment``: ``solutions/<name>/`` and ``assignments/<name>/``."""
    files = {}
    for top, folder in (("solutions", course.solutions / assignment), ("assignments", course.assignments / assignment)):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not any(part in SKIPPED for part in path.parts) and path.suffix != ".pyc":
                files[f"{top}/{assignment}/{path.relative_to(folder).as_posix()}"] = path.read_bytes()
    return files


def bundle_digest(bundle: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(bundle):
        digest.update(name.encode() + b"\0" + hashlib.sha256(bundle[name]).digest())
    return digest.hexdigest()


# ----------------------------------------------------------------------------- on the worker

_PREPARED: dict[str, Prepared] = {}  # bundle digest -> the assignment, read once per worker process
_SANDBOX: list = []  # this worker's sandbox status, probed once (probing starts a sandbox)


def _sandbox_status():
    if not _SANDBOX:
        _SANDBOX.append(probe_bubblewrap())
    return _SANDBOX[0]


def _prepared_on_worker(bundle: dict[str, bytes], assignment: str) -> Prepared:
    key = bundle_digest(bundle)
    if key not in _PREPARED:
        root = Path(tempfile.mkdtemp(prefix=f"course-grader-{assignment}-"))  # private to this user (0700)
        atexit.register(shutil.rmtree, root, ignore_errors=True)  # the hidden tests leave with the worker
        for name, data in bundle.items():
            path = (root / name).resolve()
            if root.resolve() not in path.parents:
                raise ValueError(f"refusing a file outside the bundle: {name}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        _PREPARED[key] = prepare(load_assignment(root / "solutions", assignment, root / "assignments"))
    return _PREPARED[key]


def worker_sandbox() -> dict:
    """What a worker reports about itself before grading starts: its host, process and sandbox."""
    status = _sandbox_status()
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "sandbox": status.available,
        "describe": status.describe(),
    }


def grade_on_worker(
    bundle: dict[str, bytes], assignment: str, notebook_name: str, data: bytes, sandbox: str, options: dict
) -> tuple[GradeResult, str]:
    """One task: grade the notebook ``data`` in this worker's sandbox. Returns the result and where it ran."""
    import torch

    torch.set_num_threads(1)  # the checks are small; more threads only fight the sandboxes for the cores
    prepared = _prepared_on_worker(bundle, assignment)
    status = None
    if sandbox != "off":
        status = _sandbox_status()
        if not status.available:
            if sandbox == "require":
                raise RuntimeError(f"no sandbox on worker {socket.gethostname()}: {status.reason}")
            status = None
    with tempfile.TemporaryDirectory(prefix="course-grader-submission-") as tmp:
        path = Path(tmp) / Path(notebook_name).name
        path.write_bytes(data)
        result = grade_submission(prepared, path, status, **options)
    return result, f"{socket.gethostname()} pid {os.getpid()}"


# ----------------------------------------------------------------------------- on the client


def connect(scheduler: str, workers: int = 2):
    """A Dask client: a new cluster of ``workers`` processes on this machine for ``local``, else the scheduler
    at ``scheduler``. The caller closes it (``client.close()``; a local cluster closes with it)."""
    from distributed import Client, LocalCluster

    if scheduler == "local":
        cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        client._course_cluster = cluster  # closed with the client below
        return client
    return Client(scheduler, timeout=30)


def close(client) -> None:
    cluster = getattr(client, "_course_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def check_workers(client, sandbox: str, log=print) -> dict:
    """Each worker's sandbox, logged; refuses (RuntimeError) under ``require`` if a worker has none."""
    from .autograding import GradingRefused

    reports = client.run(worker_sandbox)
    if not reports:
        raise GradingRefused("the Dask scheduler has no workers: start some with `dask worker ADDRESS --nthreads 1`")
    for address, report in sorted(reports.items()):
        log(f"  worker {address} ({report['host']}, pid {report['pid']}): {report['describe']}")
    missing = sorted(a for a, r in reports.items() if not r["sandbox"])
    if missing and sandbox == "require":
        raise GradingRefused(
            f"refusing to grade: no sandbox on worker(s) {', '.join(missing)}. Install bubblewrap there "
            "(`python -m course_grader setup-sandbox`), or pass --sandbox warn to grade without isolation."
        )
    if missing and sandbox == "warn":
        log(f"WARNING: worker(s) {', '.join(missing)} grade WITHOUT a sandbox")
    return reports


def grade_on_cluster(
    scheduler: str,
    course: Course,
    prepared: Prepared,
    notebooks: dict[str, Path],
    sandbox: str = "require",
    workers: int = 2,
    options: dict | None = None,
    log=print,
) -> Iterator[tuple[str, GradeResult]]:
    """Grade ``{student: notebook path}`` on Dask workers; yields ``(student, result)`` as each finishes.

    ``options`` are :func:`grade_submission`'s keyword arguments (seed, fast, limits, cell_timeout,
    question_timeout). A submission whose task fails, whose workers die or that sends nothing back in time
    yields a grader-error result; the others are unaffected.
    """
    from distributed import wait

    options = dict(options or {})
    spec = prepared.assignment
    # a task waiting on its worker behind another one is counted as started: allow for one budget of waiting
    deadline_each = 2 * spec.time_budget + RESULT_MARGIN
    client = connect(scheduler, workers)
    try:
        check_workers(client, sandbox, log)
        # The assignment's files go inside every task (a few hundred kB; a worker reads them once): scattered data
        # would be lost with the worker that held it, and the tasks needing it forgotten instead of re-run.
        bundle = assignment_bundle(course, spec.name)
        futures = {}
        for student, path in notebooks.items():
            future = client.submit(
                grade_on_worker,
                bundle,
                spec.name,
                spec.notebook,
                Path(path).read_bytes(),
                sandbox,
                options,
                key=f"grade-{spec.name}-{student}-{time.time_ns()}",
                pure=False,
                retries=0,
            )
            futures[future] = student
        started = {f: time.monotonic() for f in futures}
        pending = set(futures)
        while pending:
            try:
                done, pending = wait(pending, timeout=5, return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished in these 5 s
                done = set()
            for future in done:
                student = futures[future]
                try:
                    result, where = future.result()
                    log(f"  {student}: graded on {where}")
                except Exception as err:  # noqa: BLE001 - one submission's failure (or its worker's) is its own
                    trace = "".join(traceback.format_exception(err))
                    result = grader_failure(prepared, f"distributed grading failed: {type(err).__name__}: {err}", trace)
                yield student, result
            # a task is only timed from when a worker starts it: until then it waits in the queue
            processing = {key for keys in client.processing().values() for key in keys}
            now = time.monotonic()
            for future in list(pending):
                if future.key not in processing:
                    started[future] = now
                elif now - started[future] > deadline_each:
                    pending.discard(future)
                    future.cancel()
                    message = f"no result from its worker within {deadline_each:g} s"
                    yield futures[future], grader_failure(prepared, f"distributed grading failed: {message}", "")
    finally:
        close(client)
