"""The sandbox's boundaries, tried from inside a real bubblewrap sandbox (issue 9, item 6).

Each test runs "student code" through the grader's own start-up path: the
command of :func:`bubblewrap_command`, the launcher, the supervisor's
``_Sandbox`` (pipes, start-up capture, shutdown). A small stand-in for
``runner.py`` speaks the same first lines of the protocol (``{"ready": true}``,
then one step) so that the code runs exactly when a student's cell would.
"""

from __future__ import annotations

import ctypes
import os
import platform
import py_compile
import resource
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from course_grader import sandbox
from course_grader.sandbox import (
    PROC_HIDDEN,
    SANDBOX_FLAGS,
    SECCOMP_FD,
    CgroupSupport,
    SandboxLimits,
    SandboxStatus,
    bubblewrap_command,
    cgroup_support,
    launch_command,
    probe_bubblewrap,
    sandbox_cgroup,
    sandbox_env,
    seccomp_program,
)
from course_grader.supervisor import _Sandbox

STATUS = probe_bubblewrap()
needs_bwrap = pytest.mark.skipif(not STATUS.available, reason=f"no sandbox here: {STATUS.reason}")

RUNNER_STAND_IN = r"""
import json, os, sys
proto_in = os.fdopen(os.dup(0), "r")
proto_out = os.fdopen(os.dup(1), "w")
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):  # as runner.py: student code never holds the protocol's fds 0-2
    os.dup2(null, fd)
proto_out.write(json.dumps({"ready": True}) + "\n")
proto_out.flush()
proto_in.readline()
namespace = {"__name__": "__main__"}
with open(sys.argv[1], encoding="utf-8") as f:
    exec(compile(f.read(), "<student>", "exec"), namespace)
proto_out.write(json.dumps({"result": namespace.get("result")}) + "\n")
proto_out.flush()
"""


def run_student(
    code: str,
    work: Path,
    limits: SandboxLimits | None = None,
    status: SandboxStatus | None = None,
    extra_read_only: list[Path] | None = None,
    hide=(),
) -> object:
    """Run ``code`` as student code in a real sandbox; return its ``result`` variable."""
    limits = limits or SandboxLimits()
    work.mkdir(parents=True, exist_ok=True)
    runner, job = work / "runner.py", work / "job.json"
    runner.write_text(RUNNER_STAND_IN)
    job.write_text(code)
    cmd = bubblewrap_command(
        status or STATUS, sys.executable, runner, job, sandbox_env(True), limits, extra_read_only, hide=hide
    )
    box = _Sandbox(cmd, None, None, limits, work / "stderr.txt")
    try:
        state, hello = box.read(60)
        box.started()  # as the supervisor does: stderr closed before any student code runs
        assert state == "ok" and hello == {"ready": True}, (state, (work / "stderr.txt").read_text())
        assert box.send({"step": 0})
        while True:
            state, message = box.read(60)
            assert state == "ok", f"the student code did not finish: {state}"
            if "result" in message:  # other lines: what the student wrote into the protocol pipe
                return message["result"]
    finally:
        box.kill()


# ----------------------------------------------------------------------------- one set of flags


def test_the_probe_and_the_grader_share_one_set_of_flags():
    status = SandboxStatus(True, "/usr/bin/bwrap", "0.8.0", "", frozenset({"--size", "--remount-ro"}), seccomp=True)
    limits = SandboxLimits(tmpfs_bytes=123 * 2**20)
    cmd = bubblewrap_command(status, "/venv/bin/python", Path("/x/runner.py"), Path("/x/job.json"), {}, limits)
    start = cmd.index(SANDBOX_FLAGS[0])
    assert tuple(cmd[start : start + len(SANDBOX_FLAGS)]) == SANDBOX_FLAGS
    assert cmd[cmd.index("--seccomp") + 1] == str(SECCOMP_FD)
    shm = cmd.index("/dev/shm")
    assert cmd[shm - 3 : shm] == ["--size", str(limits.tmpfs_bytes), "--tmpfs"]
    assert cmd.index("--dev") < shm, "/dev/shm is mounted on the sandbox's own /dev"
    mounts = [i for i, a in enumerate(cmd) if a in ("--ro-bind", "--ro-bind-try", "--tmpfs", "--proc", "--dev")]
    seal = [i for i, a in enumerate(cmd) if a == "--remount-ro"]
    assert [cmd[i + 1] for i in seal] == ["/dev", "/"] and min(seal) > max(mounts), "sealed after every mount"
    assert "--seccomp" not in bubblewrap_command(
        SandboxStatus(True, "/usr/bin/bwrap", "0.8.0", "", frozenset()),
        "/venv/bin/python",
        Path("/x/runner.py"),
        Path("/x/job.json"),
        {},
        limits,
    )


@needs_bwrap
def test_the_probe_starts_the_graders_isolation_with_the_filter():
    if seccomp_program() is not None:
        assert STATUS.seccomp, "this machine's bubblewrap should accept the key-syscall filter"
    lines = sandbox.isolation_report(STATUS)
    assert lines[0] == STATUS.describe()
    assert any("cgroup" in line for line in lines) and any("keyring" in line for line in lines)


# ----------------------------------------------------------------------------- keyring


def _run_bpf(program: bytes, nr: int, arch: int) -> int:
    """Evaluate a classic-BPF seccomp program on (nr, arch), as the kernel would."""
    code = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    data = struct.pack("=iI", nr, arch) + bytes(56)
    pc, acc = 0, 0
    while True:
        op, jt, jf, k = code[pc]
        if op == 0x20:
            acc = struct.unpack_from("=I", data, k)[0]
        elif op == 0x15:
            pc += jt if acc == k else jf
        elif op == 0x45:
            pc += jt if acc & k else jf
        elif op == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected instruction {op:#x}")
        pc += 1


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_filter_refuses_exactly_the_key_syscalls(machine):
    program = seccomp_program(machine)
    assert program is not None and len(program) % 8 == 0
    allow, eperm, kill = 0x7FFF0000, 0x00050001, 0x80000000
    (native, native_numbers, x32), (compat, compat_numbers, _) = sandbox._KEY_SYSCALLS[machine][0]
    for number in native_numbers:
        assert _run_bpf(program, number, native) == eperm
    for number in compat_numbers:
        assert _run_bpf(program, number, compat) == eperm
    for number in (0, 1, 39, 57, 59, 60, 231, 247, 251, 435):  # read, write, getpid, fork, execve, exit, ...
        if number not in native_numbers:
            assert _run_bpf(program, number, native) == allow
    assert _run_bpf(program, 20, compat) == allow
    if x32:
        assert _run_bpf(program, 0x40000000 | native_numbers[0], native) == eperm
    assert _run_bpf(program, 39, 0x12345678) == kill, "an unknown ABI cannot be used to step around the filter"
    assert seccomp_program("riscv64") is None, "no filter is guessed for an architecture not in the table"


KEYRING_PROBE = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def call(*args):
    ctypes.set_errno(0)
    value = libc.syscall(*[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    return value, ctypes.get_errno()
buffer = ctypes.create_string_buffer(256)
session = call(KEYCTL, 0, -3, 0)  # KEYCTL_GET_KEYRING_ID of @s
read = call(KEYCTL, 11, GRADER_KEY, buffer, 256)  # KEYCTL_READ of the grader's key
added = call(ADD_KEY, b"user", b"student", b"x", 1, -3)
try:
    proc_keys = open("/proc/keys").read()
except OSError as err:
    proc_keys = f"unreadable: {err.strerror}"
result = {"session": session, "read": read, "added": added, "payload": buffer.value.decode(errors="replace"),
          "proc_keys": proc_keys}
"""


def _with_grader_session_keyring(work: Path, status: SandboxStatus) -> tuple[dict, int]:
    """In a thread with a session keyring of its own holding a secret key, run the keyring probe sandboxed."""
    keyctl = sandbox.keyctl_syscall_number()
    add_key = sandbox._KEY_SYSCALLS[platform.machine()][0][0][1][1]
    libc = ctypes.CDLL(None, use_errno=True)
    out: dict = {}

    def grader() -> None:  # the keyring belongs to this thread's credentials only, not to pytest's
        try:
            ring = libc.syscall(ctypes.c_long(keyctl), ctypes.c_long(1), b"course-grader-test-session")
            key = libc.syscall(ctypes.c_long(add_key), b"user", b"grader-secret", b"s3cret", 6, ctypes.c_long(-3))
            assert ring > 0 and key > 0, f"could not set up the grader's keyring (errno {ctypes.get_errno()})"
            buffer = ctypes.create_string_buffer(64)
            assert libc.syscall(ctypes.c_long(keyctl), ctypes.c_long(11), ctypes.c_long(key), buffer, 64) == 6
            code = KEYRING_PROBE.replace("GRADER_KEY", str(key)).replace("ADD_KEY", str(add_key))
            out["result"] = run_student(code.replace("KEYCTL", str(keyctl)), work, status=status)
            out["ring"] = ring
        except BaseException as err:  # noqa: BLE001 - reported in the test's thread
            out["error"] = err

    thread = threading.Thread(target=grader)
    thread.start()
    thread.join(120)
    if "error" in out:
        raise out["error"]
    return out["result"], out["ring"]


@needs_bwrap
def test_student_code_cannot_reach_the_graders_session_keyring(tmp_path):
    if not STATUS.seccomp:
        pytest.skip("no seccomp filter on this machine (the fallback is tested below)")
    result, _ = _with_grader_session_keyring(tmp_path, STATUS)
    eperm = 1
    assert result["session"] == [-1, eperm] and result["read"] == [-1, eperm] and result["added"] == [-1, eperm]
    assert "s3cret" not in result["payload"]
    assert result["proc_keys"].startswith("unreadable"), "/proc/keys lists the keyrings' names: hidden"


@needs_bwrap
def test_without_the_filter_the_sandbox_gets_a_fresh_session_keyring(tmp_path):
    if sandbox.keyctl_syscall_number() is None:
        pytest.skip("keyctl's number is not known on this architecture")
    no_filter = SandboxStatus(True, STATUS.executable, STATUS.version, "", STATUS.options, seccomp=False)
    result, ring = _with_grader_session_keyring(tmp_path, no_filter)
    assert result["session"][0] > 0 and result["session"][0] != ring, "a keyring of its own, not the grader's"
    assert result["read"][0] == -1 and "s3cret" not in result["payload"]
    assert "course-grader-test-session" not in result["proc_keys"] and "grader-secret" not in result["proc_keys"]


# ----------------------------------------------------------------------------- writable places


WRITES = r"""
import errno, os
def fill(path, size):
    try:
        with open(path, "wb") as f:
            for _ in range(size // 2**20):
                f.write(b"x" * 2**20)
        return "ok"
    except OSError as err:
        return errno.errorcode[err.errno]
result = {"shm_small": fill("/dev/shm/small", 2**20)}
os.remove("/dev/shm/small")
for name, path in [("shm", "/dev/shm/big"), ("tmp", "/tmp/big"), ("submission", "/submission/big")]:
    result[name] = fill(path, SIZE)
for path in ("/x", "/dev/x", "/grader/x", "/etc/x", "/proc/x"):
    result[path] = fill(path, 2**20)
"""


@needs_bwrap
def test_dev_shm_and_the_other_writable_places_are_size_limited_and_the_rest_is_read_only(tmp_path):
    if "--size" not in STATUS.options:
        pytest.skip("bwrap < 0.7 cannot limit a tmpfs")
    limits = SandboxLimits(tmpfs_bytes=8 * 2**20)
    result = run_student(WRITES.replace("SIZE", str(12 * 2**20)), tmp_path, limits=limits)
    assert result["shm"] == result["tmp"] == result["submission"] == "ENOSPC", result
    assert result["shm_small"] == "ok", "/dev/shm works for what it is for"
    assert all(result[path] in ("EROFS", "EACCES", "ENOENT") for path in ("/x", "/dev/x", "/grader/x", "/etc/x"))


PROC_WRITES = r"""
import os, stat
marker = b"MARKER" + b"-6c1f course-grader sandbox test\n"
tmp_dev = os.stat("/tmp").st_dev
fds = {}
for pid in ["1", "self"] + [p for p in os.listdir("/proc") if p.isdigit() and p != "1"]:
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        continue
    for name in names:
        path = f"/proc/{pid}/fd/{name}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            info = os.fstat(fd)
            kind = ("fifo" if stat.S_ISFIFO(info.st_mode) else "chr" if stat.S_ISCHR(info.st_mode)
                    else "sandbox-file" if stat.S_ISREG(info.st_mode) and info.st_dev == tmp_dev else "OTHER")
            try:
                os.write(fd, b'{"marker": "' + marker.strip() + b'"}\n' if kind == "fifo" else marker)
                written = "written"
            except OSError as err:
                written = err.strerror
            fds[path] = [kind, written]
        finally:
            os.close(fd)
writable = []
for root, dirs, files in os.walk("/proc"):
    if root == "/proc":
        dirs[:] = [d for d in dirs if not d.isdigit() and d not in ("self", "thread-self")]
    for name in files:
        path = os.path.join(root, name)
        try:
            if stat.S_ISREG(os.lstat(path).st_mode):
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
                writable.append(path)
        except OSError:
            pass
result = {"fds": fds, "writable": writable}
"""


@needs_bwrap
def test_nothing_under_proc_leads_to_a_file_of_the_host(tmp_path):
    work = tmp_path / "work"
    result = run_student(PROC_WRITES, work)
    fds = result["fds"]
    assert all(kind in ("fifo", "chr", "sandbox-file") for kind, _ in fds.values()), fds
    assert fds["/proc/1/fd/2"][0] == "fifo", "bubblewrap's stderr is a pipe, not the grader's file"
    assert fds["/proc/1/fd/2"][1] != "written", "and the grader closed it once the runner had started"
    # The grader's start-up capture stopped when the runner said ready: nothing of the above reached it.
    assert (work / "stderr.txt").read_bytes() == b""
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"MARKER-6c1f" not in path.read_bytes(), f"student bytes reached {path}"
    assert result["writable"] == [] or set(result["writable"]) <= {
        "/proc/pressure/io",
        "/proc/pressure/cpu",
        "/proc/pressure/memory",
    }, f"writable under /proc: {result['writable'][:20]}"


@needs_bwrap
def test_start_up_errors_still_reach_the_grader(tmp_path):
    cmd = [STATUS.executable, *SANDBOX_FLAGS, "--no-such-option", "true"]
    box = _Sandbox(cmd, None, None, SandboxLimits(), tmp_path / "stderr.txt")
    state, _ = box.read(30)
    box.kill()
    assert state == "eof"
    assert "no-such-option" in (tmp_path / "stderr.txt").read_text()


# ----------------------------------------------------------------------------- processes and memory


@needs_bwrap
def test_the_process_limit_is_set_inside_the_sandbox_only(tmp_path):
    limits = SandboxLimits(processes=77)
    result = run_student("import resource\nresult = resource.getrlimit(resource.RLIMIT_NPROC)", tmp_path, limits)
    assert result == [77, 77]
    assert resource.getrlimit(resource.RLIMIT_NPROC) != (77, 77), "the grader's own limit is untouched"


FORK_BOMB = r"""
import os, time
children, refused = [], None
for _ in range(400):
    try:
        pid = os.fork()
    except OSError as err:
        refused = err.strerror
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    children.append(pid)
result = {"forked": len(children), "refused": refused}
"""


@needs_bwrap
@pytest.mark.skipif(
    os.geteuid() == 0 and cgroup_support(prepare=False).parent is None,
    reason="the grader runs as root without delegated cgroups v2: the process count is not limited (documented)",
)
def test_a_fork_bomb_is_stopped_at_the_process_limit(tmp_path):
    result = run_student(FORK_BOMB, tmp_path, SandboxLimits(processes=64))
    assert result["refused"] is not None and result["forked"] < 64, result


def _fake_cgroup_tree(tmp_path: Path, controllers: str, procs: str) -> tuple[Path, Path, Path]:
    mount = tmp_path / "cgroup"
    own = mount / "user.slice" / "grader.scope"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text(controllers)
    (own / "cgroup.subtree_control").write_text("")
    (own / "cgroup.procs").write_text(procs)
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(f"30 25 0:26 / {mount} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw\n")
    self_cgroup = tmp_path / "self-cgroup"
    self_cgroup.write_text("0::/user.slice/grader.scope\n")
    return own, mountinfo, self_cgroup


def test_a_delegated_cgroup_gets_a_leaf_for_the_grader_and_one_cgroup_per_sandbox(tmp_path):
    own, mountinfo, self_cgroup = _fake_cgroup_tree(tmp_path, "cpu memory pids", f"{os.getpid()}\n")
    support = cgroup_support(True, mountinfo, self_cgroup, environ={})
    assert support == CgroupSupport(own)
    assert (own / "grader" / "cgroup.procs").read_text() == str(os.getpid()), "the grader moved to a leaf"
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids"
    limits = SandboxLimits(processes=99, group_memory_bytes=5 * 2**30)
    group = sandbox_cgroup(limits, support)
    assert group is not None and group.parent == own
    assert (group / "memory.max").read_text() == str(5 * 2**30) and (group / "pids.max").read_text() == "99"
    (group / "cgroup.procs").write_text("")
    launched = subprocess.run(launch_command(["true"], limits, group), check=True)
    assert launched.returncode == 0
    moved = (group / "cgroup.procs").read_text()
    assert moved.isdigit() and int(moved) > 0, "the launcher moved itself in before starting the sandbox"


@pytest.mark.parametrize(
    ("controllers", "procs", "reason"),
    [
        ("cpu memory", "{pid}\n", "no pids controller"),
        ("memory pids", "{pid}\n1\n", "holds other processes"),
    ],
)
def test_no_cgroup_is_used_unless_it_is_delegated_to_the_grader_alone(tmp_path, controllers, procs, reason):
    own, mountinfo, self_cgroup = _fake_cgroup_tree(tmp_path, controllers, procs.format(pid=os.getpid()))
    support = cgroup_support(True, mountinfo, self_cgroup, environ={})
    assert support.parent is None and reason in support.reason
    assert not (own / "grader").exists() and (own / "cgroup.subtree_control").read_text() == ""
    cgroup_v1_only = tmp_path / "mountinfo-v1"
    cgroup_v1_only.write_text("30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
    assert "cgroups v1 only" in cgroup_support(False, cgroup_v1_only, self_cgroup, environ={}).reason


# ----------------------------------------------------------------------------- hidden modules


HIDDEN_IMPORTS = r"""
import importlib, sys
sys.path.insert(0, ROOT)
result = {}
for name in ("fakepkg.secret", "fakepkg.algos", "fakepkg.algos.impl", "fakepkg.sibling"):
    try:
        module = importlib.import_module(name)
        result[name] = "imported " + str(getattr(module, "VALUE", ""))
    except ImportError as err:
        result[name] = f"ImportError: {err}"
for path in (ROOT + "/fakepkg/secret.py", ROOT + "/fakepkg/algos/impl.py", PYC):
    try:
        result[path] = open(path, "rb").read().decode(errors="replace")
    except OSError as err:
        result[path] = f"{type(err).__name__}"
try:
    open(ROOT + "/fakepkg/algos/new.py", "w").write("x = 1")
    result["write"] = "written"
except OSError as err:
    result["write"] = type(err).__name__
"""


@needs_bwrap
def test_a_hidden_module_cannot_be_imported_or_read_and_its_siblings_still_import(tmp_path):
    root = tmp_path / "tree"
    package = root / "fakepkg"
    (package / "algos").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "secret.py").write_text("VALUE = 'the reference solution'\n")
    (package / "sibling.py").write_text("VALUE = 'sibling'\n")
    (package / "algos" / "__init__.py").write_text("VALUE = 'the algorithms'\n")
    (package / "algos" / "impl.py").write_text("VALUE = 'the algorithm'\n")
    pyc = Path(py_compile.compile(str(package / "secret.py"), doraise=True))
    code = HIDDEN_IMPORTS.replace("ROOT", repr(str(root))).replace("PYC", repr(str(pyc)))
    result = run_student(
        code, tmp_path / "work", extra_read_only=[root], hide=[package / "secret.py", package / "algos"]
    )
    for name in ("fakepkg.secret", "fakepkg.algos", "fakepkg.algos.impl"):
        module = name if name != "fakepkg.algos.impl" else "fakepkg.algos"
        assert result[name] == f"ImportError: {module} is not available while this assignment is graded: write your own"
    assert result["fakepkg.sibling"] == "imported sibling"
    assert "reference solution" not in result[str(package / "secret.py")]
    assert result[str(package / "algos" / "impl.py")] == "FileNotFoundError"
    assert "reference solution" not in result[str(pyc)] and result[str(pyc)] == ""
    assert result["write"] in ("OSError", "PermissionError"), "the stub folder is read-only"


def test_only_paths_inside_the_read_only_trees_can_be_hidden(tmp_path):
    status = SandboxStatus(True, "/usr/bin/bwrap", "0.8.0", "", frozenset())
    (tmp_path / "elsewhere.py").write_text("")
    with pytest.raises(ValueError, match="not inside a folder the sandbox shows"):
        bubblewrap_command(
            status,
            "/p",
            Path("/x/runner.py"),
            tmp_path / "job.json",
            {},
            SandboxLimits(),
            hide=[tmp_path / "elsewhere.py"],
        )


def test_proc_files_that_name_keyrings_are_covered():
    status = SandboxStatus(True, "/usr/bin/bwrap", "0.8.0", "", frozenset())
    cmd = bubblewrap_command(status, "/p", Path("/x/runner.py"), Path("/x/job.json"), {}, SandboxLimits())
    for path in PROC_HIDDEN:
        if Path(path).exists():
            assert cmd[cmd.index(path) - 2 : cmd.index(path)] == ["--ro-bind", "/dev/null"]
