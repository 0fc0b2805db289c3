"""Grading spread over Dask workers (``autograde --scheduler``), on a real scheduler and two real workers.

A scheduler and two worker processes are started on localhost with Dask's own command lines
(``dask scheduler``, ``dask worker``), as an instructor would start them on several machines. The same
submissions are graded once on one machine and once on the cluster, with the same seed: the scores must be
the same, every result must reach the one gradebook (written by the client only), both workers must have
graded, and each worker must report its sandbox. A worker killed while it grades costs nothing: its
submission is graded again on the other worker.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from grading_corpus import Case, dump, notebook_bytes, partly_right, read
from test_grading import context, make_course, require_sandbox

from course_grader.autograding import autograde
from course_grader.collection import collect
from course_grader.gradebook import scores

pytest.importorskip("distributed")

# A real system test of a minute or more (a Dask cluster grading the same submissions twice): `python3 course.py test` runs it
# in a step of its own, after the other tests (marker `system`; elsewhere it skips unless COURSE_SYSTEM_TESTS=1).
pytestmark = pytest.mark.system

ASSIGNMENT = "a3_reparameterization"  # the quickest to grade: its solution's cells and checks take a few seconds
SEED = 20_261_203
DASK = Path(sys.executable).with_name("dask")


def cases(ctx) -> list[Case]:
    return [
        Case("solution", lambda c: dump(read(c.solution)), "the solution"),
        Case("stub", lambda c: dump(read(c.stub)), "the released stub"),
        Case("partly_right", lambda c: dump(partly_right(c)), "some functions solved"),
        Case("invalid_json", lambda c: dump(read(c.solution))[:3000], "a notebook cut off in the middle"),
    ]


def collected_course(root: Path):
    root.mkdir()
    course = make_course(root)
    ctx = context(course, ASSIGNMENT)
    downloads = root / "downloads"
    for case in cases(ctx):
        (downloads / case.student).mkdir(parents=True)
        (downloads / case.student / ctx.notebook_name).write_bytes(notebook_bytes(ctx, case))
    collect(course, ASSIGNMENT, downloads, log=lambda *a: None)
    return course


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker`` processes (one thread each, no nanny) on localhost."""
    require_sandbox()
    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False", OMP_NUM_THREADS="1")
    logs = []

    def start(*args):
        log = open(folder / f"{args[0]}-{len(logs)}.log", "w")  # noqa: SIM115 - closed at teardown
        logs.append(log)
        return subprocess.Popen(
            [str(DASK), *args], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder, start_new_session=True
        )

    procs = [
        start(
            "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        workers = [
            start("worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1")
            for _ in range(2)
        ]
        procs += workers
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield {"address": address, "workers": workers, "folder": folder}
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for log in logs:
            log.close()


def question_scores(results) -> dict[str, dict[str, float]]:
    return {s: {q: v.score for q, v in r.questions.items()} | {"status": r.status} for s, r in results.items()}


def test_distributed_grading_gives_the_local_scores_in_one_gradebook(cluster, tmp_path):
    local_course = collected_course(tmp_path / "local")
    started = time.monotonic()
    local = autograde(local_course, ASSIGNMENT, seed=SEED, jobs=1, log=lambda *a: None)
    local_seconds = time.monotonic() - started

    course = collected_course(tmp_path / "distributed")
    lines: list[str] = []
    started = time.monotonic()
    remote = autograde(course, ASSIGNMENT, seed=SEED, scheduler=cluster["address"], log=lines.append)
    remote_seconds = time.monotonic() - started
    print(
        f"[distributed grading] {len(remote)} submissions: local 1 job {local_seconds:.1f} s, 2 Dask workers {remote_seconds:.1f} s"
    )

    assert question_scores(remote) == question_scores(local)
    assert remote["solution"].score == remote["solution"].max_score > 0
    assert remote["stub"].score == 0 and 0 < remote["partly_right"].score < remote["solution"].score
    assert remote["invalid_json"].status == "invalid"
    # every worker reported its sandbox before grading, and both graded
    reports = [line for line in lines if line.strip().startswith("worker ")]
    assert len(reports) == 2 and all("bubblewrap" in line for line in reports), lines
    graded_on = {re.search(r"graded on (.*)$", line).group(1) for line in lines if "graded on" in line}
    assert len(graded_on) == 2, lines
    # one gradebook, written here: each student's autograded scores, the result files beside it
    notebook = Path(local_course.assignments / ASSIGNMENT).glob("*.ipynb").__next__().stem
    for student, result in remote.items():
        stored = json.loads((course.autograded_dir(student, ASSIGNMENT) / "result.json").read_text())
        assert stored["score"] == result.score
        if result.status == "graded":
            book = scores(course, ASSIGNMENT, notebook, student)
            assert {q: book[q]["score"] for q in result.questions} == {q: v.score for q, v in result.questions.items()}


def test_a_worker_killed_while_grading_costs_no_submission(cluster, tmp_path):
    """SIGKILL one worker as soon as it has started grading: the scheduler re-runs its task on the other one."""
    from distributed import Client

    course = collected_course(tmp_path / "course")
    two = ["solution", "stub"]  # enough for one to be running when the worker dies; fewer to grade again
    with Client(cluster["address"], timeout=30) as client:
        pids = client.run(os.getpid)
    done = {}
    thread = threading.Thread(
        target=lambda: done.update(
            autograde(course, ASSIGNMENT, two, seed=SEED, scheduler=cluster["address"], log=lambda *a: None)
        )
    )
    thread.start()
    killed = None
    with Client(cluster["address"], timeout=30) as watcher:
        deadline = time.monotonic() + 60
        while killed is None and time.monotonic() < deadline:
            busy = [address for address, keys in watcher.processing().items() if keys]
            if busy:
                killed = pids[busy[0]]
                time.sleep(1.0)  # well inside the submission's grading, which takes seconds
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.1)
    thread.join(timeout=300)
    assert killed is not None, "no worker ever started grading"
    assert sorted(done) == two
    assert all(r.status in ("graded", "invalid") for r in done.values()), {s: r.problems for s, r in done.items()}
    assert done["solution"].score == done["solution"].max_score
