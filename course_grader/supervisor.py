"""Run one submission's steps in the sandbox, with a time limit per step, and survive anything it does.

The supervisor is trusted code in the grader's process. It starts
``runner.py`` inside bubblewrap (see :mod:`course_grader.sandbox`), sends it one
step at a time and waits for the answer with that step's time limit. When a
step runs over (an infinite loop, even one that ignores SIGINT), crashes the
interpreter (``os._exit``, a segfault, running out of memory) or garbles the
protocol, the whole sandbox is killed -- every process the student started dies
with its PID namespace -- and a fresh sandbox re-runs the steps that succeeded
so far, skipping the bad one. So a loop costs only the question it is in. The
number of restarts and the total time are bounded, so grading always ends.

A step's limit is on the CPU time the sandbox's processes use, not on the clock: on a machine
loaded by other gradings an honest step runs slower, and is not stopped for that. A step that waits
instead of computing (``time.sleep``, a blocked read) is stopped on the clock, after
``RunLimits.wall_slack`` times its limit; the cells' shared budget and the total time stay on the clock.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .sandbox import (
    SandboxLimits,
    SandboxStatus,
    bubblewrap_command,
    launch_command,
    remove_sandbox_cgroup,
    sandbox_cgroup,
    sandbox_env,
)
from .untrusted import ReplyError, loads_limited

RUNNER = Path(__file__).with_name("runner.py")
MAX_REPLY_BYTES = 80 * 2**20
MAX_STARTUP_ERRORS = 64 * 2**10  # bytes of start-up errors kept for SandboxStartError


class SandboxStartError(RuntimeError):
    """The sandbox failed before any student code ran: a problem of the grading machine, reported as such."""


@dataclass
class Step:
    """One unit of work with its own time limit: a student cell or a grader driver."""

    kind: str  # "cell" or "driver"
    timeout: float
    source: str = ""  # cell source
    question: str = ""  # driver: the question id
    driver: str = ""  # driver: the name of its function in the assignment's drivers.py
    inputs: object = None  # driver: the inputs it receives (plain JSON data, no check-only keys)
    label: str = ""  # for messages: "cell 7", "question returns_to_go"

    def message(self, index: int) -> dict:
        """What the runner receives when this step is to run (and not before)."""
        if self.kind == "cell":
            return {"step": index, "kind": "cell", "source": self.source}
        return {
            "step": index,
            "kind": "driver",
            "question": self.question,
            "driver": self.driver,
            "inputs": self.inputs,
        }


@dataclass
class StepRecord:
    """What happened to one step. ``status``: ok, error, timeout, crashed, protocol, not-run."""

    status: str
    output: str = ""
    error: str | None = None
    result: object = None
    seconds: float = 0.0
    missing: bool = False


@dataclass
class RunLimits:
    """``cell_budget``: seconds for all student cells together (each also has its own limit);
    ``total_timeout``: seconds for the whole run, cells and drivers (the assignment's time budget);
    ``wall_slack``: how much longer than its limit a step may take on the clock while it has not used
    its limit in CPU time (the machine is busy, or the step waits)."""

    startup_timeout: float = 60.0
    wall_slack: float = 4.0  # a step is stopped at its limit in CPU time, or at wall_slack × its limit on the clock
    max_restarts: int = 3
    total_timeout: float = 1800.0
    cell_budget: float = 600.0
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)


@dataclass
class RunReport:
    records: list[StepRecord]
    sandbox: str  # description of the isolation used
    restarts: int
    seconds: float
    problems: list[str]


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_tree_cpu_seconds(root: int) -> float | None:
    """CPU time (user + system) of process ``root`` and its live descendants, including the children they have
    reaped, from /proc; None where there is no /proc. A sandbox's processes all descend from its launcher."""
    parents: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    try:
        entries = os.scandir("/proc")
    except OSError:
        return None
    with entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    data = f.read()
                fields = data[data.rindex(b")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
                pid = int(entry.name)
                parents.setdefault(int(fields[1]), []).append(pid)
                ticks[pid] = sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
            except (OSError, ValueError, IndexError):
                continue  # the process ended meanwhile
    if root not in ticks:
        return None
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo.extend(parents.get(pid, ()))
    return total / _CLOCK_TICKS


class _Sandbox:
    """One running sandbox process and its line-based protocol."""

    def __init__(
        self, cmd: list[str], cwd: str | None, env: dict[str, str] | None, limits: SandboxLimits, stderr_path: Path
    ):
        # Started through the sandbox's launcher (sandbox.LAUNCHER), an exec shim rather than a preexec_fn,
        # which is unsafe in a grader that starts sandboxes from several threads: per-process limits, the
        # sandbox's own cgroup where cgroups v2 are delegated, the seccomp filter for bubblewrap.
        self.cgroup = sandbox_cgroup(limits)
        # stderr is a pipe, never a file of the host: bubblewrap, PID 1 inside the sandbox, holds it for
        # the sandbox's whole life, and student code can open it as /proc/1/fd/2. A thread keeps what
        # arrives before the runner's first message (bubblewrap's and the interpreter's start-up errors,
        # written to stderr_path for SandboxStartError) and then closes the pipe: later writes fail (EPIPE).
        stderr_path.write_bytes(b"")
        self._stderr_path = stderr_path
        err_read, err_write = os.pipe()
        try:
            self.proc = subprocess.Popen(
                launch_command(cmd, limits, self.cgroup),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err_write,
                cwd=cwd,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            os.close(err_read)
            if self.cgroup is not None:
                remove_sandbox_cgroup(self.cgroup)
            raise
        finally:
            os.close(err_write)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.buffer = b""
        self.closed = False
        self._stop_read, self._stop_write = os.pipe()  # written by started(): stop keeping stderr
        self._startup = threading.Thread(
            target=self._keep_startup_errors, args=(err_read,), name="sandbox-stderr", daemon=True
        )
        self._startup.start()

    def started(self) -> None:
        """The runner has answered (or the sandbox failed to start): close stderr before any student code runs.

        Returns once the pipe is closed and what came before is in ``stderr_path``, so that a step sent
        afterwards finds /proc/1/fd/2 leading nowhere.
        """
        if self._stop_write is None:  # already done
            return
        try:
            os.write(self._stop_write, b"x")
        finally:
            os.close(self._stop_write)
            self._stop_write = None
        self._startup.join()
        os.close(self._stop_read)

    def _keep_startup_errors(self, err: int) -> None:
        """Keep stderr until :meth:`started` or the sandbox's end (at most 64 KiB), then close it."""
        kept = bytearray()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(err, selectors.EVENT_READ)
                selector.register(self._stop_read, selectors.EVENT_READ)
                while True:
                    ready = {key.fd for key, _ in selector.select()}
                    if self._stop_read in ready:  # the runner spoke: take what is there, stop
                        os.set_blocking(err, False)
                        while len(kept) < MAX_STARTUP_ERRORS and (chunk := os.read(err, 65536)):
                            kept += chunk
                        break
                    chunk = os.read(err, 65536)
                    if not chunk:
                        break
                    kept += chunk[: max(0, MAX_STARTUP_ERRORS - len(kept))]
        except (OSError, ValueError):  # nothing more to read (BlockingIOError included)
            pass
        finally:
            os.close(err)
        try:
            self._stderr_path.write_bytes(bytes(kept[:MAX_STARTUP_ERRORS]))
        except OSError:
            pass

    def send(self, message: dict) -> bool:
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def read(self, timeout: float) -> tuple[str, dict | None]:
        """Wait up to ``timeout`` s for one JSON line: ("ok", msg), ("timeout"|"eof"|"garbage", None)."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout", None
            if not self.selector.select(remaining):
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return "eof", None
            self.buffer += chunk
            if len(self.buffer) > MAX_REPLY_BYTES:
                return "garbage", None
        line, _, self.buffer = self.buffer.partition(b"\n")
        try:
            return "ok", loads_limited(line)  # depth-limited, floats decoded, lone surrogates replaced
        except ReplyError:
            return "garbage", None

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by every process of the sandbox (None if it cannot be measured here)."""
        return process_tree_cpu_seconds(self.proc.pid)

    def read_step(self, limit: float, wall_cap: float) -> tuple[str, dict | None]:
        """Wait for a step's reply, like :meth:`read`. The step is stopped ("timeout") once it has used ``limit``
        seconds of CPU time (and run at least ``limit`` on the clock), or after ``wall_cap`` seconds whatever it
        used; where CPU time cannot be measured, after ``limit`` seconds on the clock."""
        started, cpu_at_start = time.monotonic(), self.cpu_seconds()
        state, message = self.read(limit)
        while state == "timeout" and cpu_at_start is not None:
            used = self.cpu_seconds()
            left_on_clock = wall_cap - (time.monotonic() - started)
            if used is None or used - cpu_at_start >= limit or left_on_clock <= 0:
                break
            # A process cannot use CPU time faster than the clock runs (per thread): wait for what it has left.
            state, message = self.read(min(left_on_clock, max(0.1, limit - (used - cpu_at_start))))
        return state, message

    def kill(self) -> None:
        """Kill the sandbox: with --unshare-pid this takes every process inside with it. Safe to call twice."""
        if self.closed:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.close()

    def close(self, grace: float = 0.0) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass
        if grace:
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.kill()
        self.proc.wait()
        self.started()  # stops and joins the stderr thread if no reply ever came
        self.selector.close()
        self.proc.stdout.close()
        if self.cgroup is not None:
            remove_sandbox_cgroup(self.cgroup)


def run_steps(
    steps: list[Step],
    status: SandboxStatus | None,
    fast: bool = True,
    limits: RunLimits | None = None,
    preload: tuple[str, ...] = (),
    drivers: Path | None = None,
    hide: tuple[Path, ...] = (),
) -> RunReport:
    """Run ``steps`` in order in a sandbox (``status`` from :func:`probe_bubblewrap`) or, with
    ``status=None``, in a plain subprocess (no file-system isolation: trusted code only).

    ``preload`` names modules imported before the first step, within the
    start-up time limit, so that slow imports do not count against a cell.
    ``drivers`` is the assignment's public drivers.py (read-only in the sandbox);
    ``hide`` lists files and folders of the read-only trees the sandbox must not show.
    """
    limits = limits or RunLimits()
    started = time.monotonic()
    records: dict[int, StepRecord] = {}
    skipped: set[int] = set()
    problems: list[str] = []
    restarts = -1
    spent = {"cells": 0.0}  # seconds the student's cells have used, restarts included
    workdir = Path(tempfile.mkdtemp(prefix="course-grader-"))
    try:
        job = workdir / "job.json"
        job.write_text(json.dumps({"preload": list(preload), "drivers": str(drivers) if drivers else None}))
        env = sandbox_env(fast)
        if status is not None:
            cmd = bubblewrap_command(
                status,
                sys.executable,
                RUNNER,
                job,
                env,
                limits.sandbox,
                [drivers] if drivers else None,
                hide=hide,
            )
            cwd, proc_env, described = None, None, status.describe()
        else:
            submission_dir = workdir / "submission"
            submission_dir.mkdir()
            env.update(HOME=str(workdir / "home"), TMPDIR=str(workdir), MPLCONFIGDIR=str(workdir / "matplotlib"))
            cmd = [sys.executable, "-I", "-X", "utf8", str(RUNNER), str(job)]
            cwd, proc_env, described = (
                str(submission_dir),
                env,
                "NONE (plain subprocess: student code could read any file)",
            )

        while True:
            plan = [i for i in range(len(steps)) if i not in skipped and (steps[i].kind == "cell" or i not in records)]
            if not any(i not in records for i in plan):
                break
            restarts += 1
            if restarts > limits.max_restarts:
                problems.append(f"gave up after {limits.max_restarts} restarts of the sandbox")
                break
            elapsed = time.monotonic() - started
            if elapsed > limits.total_timeout:
                problems.append(f"stopped: the submission used up its total time of {limits.total_timeout:.0f} s")
                break
            box = _Sandbox(cmd, cwd, proc_env, limits.sandbox, workdir / "stderr.txt")
            try:  # whatever happens below -- a reply that cannot be handled, a bug here -- the sandbox dies
                finished = _run_plan(box, plan, steps, records, skipped, problems, limits, started, workdir, spent)
                if finished:
                    box.close(grace=5.0)
                    break
            finally:
                box.kill()
        for i, step in enumerate(steps):
            if i not in records:
                records[i] = StepRecord(status="not-run", error="not run: the grader ran out of restarts or time")
        return RunReport(
            [records[i] for i in range(len(steps))], described, max(restarts, 0), time.monotonic() - started, problems
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run_plan(box, plan, steps, records, skipped, problems, limits, started, workdir, spent) -> bool:
    """Run the steps ``plan`` in the started sandbox ``box``; False when a step failed and the box must go."""
    state, hello = box.read(limits.startup_timeout)
    box.started()  # stderr closed before any step is sent
    if state != "ok" or hello.get("ready") is not True:
        # No student code has run yet: this is the grading machine's problem, not the submission's.
        box.kill()
        detail = (workdir / "stderr.txt").read_text(errors="replace").strip()[-2000:]
        raise SandboxStartError(
            f"the sandbox did not start ({state} after {limits.startup_timeout:.0f} s): {detail or 'no error message'}"
        )
    for i in plan:
        step = steps[i]
        total_left = max(1.0, limits.total_timeout - (time.monotonic() - started))
        budget = min(step.timeout, total_left)
        wall_cap = min(budget * max(1.0, limits.wall_slack), total_left)
        if step.kind == "cell":
            left = limits.cell_budget - spent["cells"]
            if left < 1.0:
                skipped.add(i)
                records[i] = StepRecord(
                    "not-run",
                    error=f"not run: the notebook's cells used up their total time of {limits.cell_budget:.0f} s",
                )
                if not any("cells used up" in p for p in problems):
                    problems.append(f"{step.label} and later cells: {records[i].error}")
                continue
            budget, wall_cap = min(budget, left), min(wall_cap, left)
        t0 = time.monotonic()
        if not box.send(step.message(i)):
            state, message = "eof", None
        else:
            state, message = box.read_step(budget, wall_cap)
        seconds = time.monotonic() - t0
        if step.kind == "cell":
            spent["cells"] += seconds
        record = None
        if state == "ok":
            try:  # anything odd in one reply is this submission's protocol error, never the grader's
                record = _record(message, i, seconds)
            except Exception:  # noqa: BLE001
                record = None
            if record is None:
                state = "garbage"
        if state != "ok":
            box.kill()
            skipped.add(i)
            records[i] = _failure_record(step, state, budget, seconds, wall_cap)
            problems.append(f"{step.label}: {records[i].error}")
            return False
        if i not in records:  # a restart re-runs earlier cells: keep what the first run saw
            records[i] = record
    return True


def _record(message: dict, index: int, seconds: float) -> StepRecord | None:
    """The record of step ``index`` from the runner's reply, or None if the reply does not fit the protocol."""
    if message.get("step") != index or message.get("status") not in ("ok", "error"):
        return None
    output, error = message.get("output", ""), message.get("error")
    if not isinstance(output, str) or not (error is None or isinstance(error, str)):
        return None
    return StepRecord(
        status=message["status"],
        output=output[:50_000],
        error=None if error is None else error[:20_000],
        result=message.get("result"),
        seconds=seconds,
        missing=message.get("missing") is True,
    )


def _failure_record(step: Step, state: str, budget: float, seconds: float, wall_cap: float) -> StepRecord:
    if state == "timeout":
        error = (
            f"ran for more than {budget:.0f} s (of CPU time, or {wall_cap:.0f} s on the clock) and was stopped "
            "(an infinite loop, or far too slow); everything it started was killed"
        )
        return StepRecord("timeout", error=error, seconds=seconds)
    if state == "eof":
        error = (
            "the Python process running your notebook died here (os._exit, a crash, or running out of "
            "memory); the grader restarted it without this step"
        )
        return StepRecord("crashed", error=error, seconds=seconds)
    return StepRecord(
        "protocol", error="the notebook interfered with the grader's communication channel here", seconds=seconds
    )
