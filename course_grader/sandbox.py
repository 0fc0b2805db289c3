"""The sandbox student code runs in: bubblewrap, found, installed and checked.

Only the standard library is used here, so ``python3 course.py`` can call
:func:`ensure_bubblewrap` before anything else is installed, and the grader can
report clearly what is missing.

What a sandboxed run sees (see :func:`bubblewrap_command`)::

    /usr, /bin, /lib*           read-only (the system's programs and libraries)
    <python>, <venv>            read-only (the interpreter and the course's packages)
    <course_utils>              read-only (the only part of the repository it sees;
                                modules an assignment forbids are replaced by a stub
                                that raises ImportError, see ``hide``)
    /grader/runner.py, job.json read-only (the grader's public runner and this run's job)
    /tmp, /submission, /dev/shm private, size-limited tmpfs (cwd is /submission)
    /proc                       private; the host's sysctls, IRQ and bus settings
                                read-only, /proc/keys hidden
    /dev                        private and minimal
    everything else             read-only (the sandbox's own root is remounted read-only)

and nothing else: no solutions, no hidden tests, no gradebook, no other student,
no home directory. It has no network (a private network namespace with only
loopback), its own PID namespace (killing the sandbox kills every process the
student started), runs as an unprivileged user in a user namespace with no
capabilities, dies with the grader (``--die-with-parent``) and cannot inject
keystrokes into the grader's terminal (``--new-session``). A seccomp filter makes
the kernel keyring's system calls fail (``keyctl``, ``add_key``,
``request_key``), so the grader's session keyring is out of reach. Memory and
the number of processes are limited per sandbox with cgroups v2 where the
machine delegates them to the grader, and per process (``RLIMIT_AS``,
``RLIMIT_NPROC``) otherwise; :func:`isolation_report` says which applies.

Paths of the host still show in ``/proc/self/mountinfo`` (the sources of the
read-only binds, e.g. the virtual environment's folder): only their names, not
anything that is not bound.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import platform
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SANDBOX_MODES = ("require", "warn", "off")
"""``require``: refuse to grade without bubblewrap (default); ``warn``: grade in a
plain subprocess with a loud warning; ``off``: plain subprocess on purpose
(trusted submissions only, e.g. the solution)."""

SANDBOX_UID = 65534  # "nobody" inside the user namespace
MOUNT_SUBMISSION = "/submission"
MOUNT_GRADER = "/grader"

SANDBOX_FLAGS = (
    "--unshare-all",
    "--unshare-user",
    "--uid",
    str(SANDBOX_UID),
    "--gid",
    str(SANDBOX_UID),
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
    "--hostname",
    "sandbox",
)
"""The namespaces, identity and capabilities of every sandbox: the probe starts exactly these."""

SECCOMP_FD = 9
"""The file descriptor bubblewrap reads the seccomp filter from; :data:`LAUNCHER` puts it there."""

PROC_READ_ONLY = ("/proc/sys", "/proc/irq", "/proc/bus", "/proc/fs", "/proc/pressure", "/proc/sysrq-trigger")
"""Kernel settings under the sandbox's /proc that are shown read-only. A grader running as root runs the
sandbox as root's user id seen from outside (mapped to "nobody" inside): without this, student code could
write host sysctls such as ``kernel.core_pattern``."""

PROC_HIDDEN = ("/proc/keys", "/proc/key-users")
"""Files under /proc that are covered (reading them fails): the kernel keyrings' names and owners."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one sandboxed run."""

    memory_bytes: int = 4 * 2**30  # address space per process (RLIMIT_AS)
    tmpfs_bytes: int = 512 * 2**20  # size of /tmp, of /submission and of /dev/shm each
    file_bytes: int = 256 * 2**20  # largest file a process may write (RLIMIT_FSIZE)
    processes: int = 256  # processes and threads per sandbox (cgroup pids.max; else RLIMIT_NPROC)
    group_memory_bytes: int = 6 * 2**30  # memory of the whole sandbox, tmpfs included (cgroup memory.max)


@dataclass(frozen=True)
class SandboxStatus:
    """Whether bubblewrap works on this machine, and if not, why and what to do."""

    available: bool
    executable: str | None = None
    version: str | None = None
    reason: str = ""
    options: frozenset[str] = field(default_factory=frozenset)
    seccomp: bool = False  # the key-syscall filter is in force (see seccomp_program)

    def describe(self) -> str:
        if self.available:
            return f"bubblewrap {self.version} ({self.executable})"
        return f"no sandbox: {self.reason}"


# ----------------------------------------------------------------------------- seccomp: no kernel keyring


# Classic BPF, as the kernel's seccomp filters take it (linux/filter.h, linux/seccomp.h, linux/audit.h).
_BPF_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS: A = the 32-bit word at offset k of struct seccomp_data
_BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K: pc += (A == k) ? jt : jf
_BPF_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K: pc += (A & k) ? jt : jf
_BPF_RET_K = 0x06  # BPF_RET | BPF_K: return k
_SECCOMP_DATA_NR, _SECCOMP_DATA_ARCH = 0, 4  # offsets of seccomp_data.nr and .arch
_SECCOMP_RET_ALLOW = 0x7FFF0000
_SECCOMP_RET_ERRNO = 0x00050000  # | errno in the low 16 bits
_SECCOMP_RET_KILL_PROCESS = 0x80000000
_EPERM = 1
_X32_SYSCALL_BIT = 0x40000000

# Per machine (platform.machine()): each system-call ABI a process may use there, as (AUDIT_ARCH_*
# value, numbers of keyctl, add_key and request_key, whether x32 calls share the arch value), and the
# number of keyctl for the native ABI (used by the launcher's fallback when no filter can be built).
_KEY_SYSCALLS = {
    "x86_64": (
        ((0xC000003E, (250, 248, 249), True), (0x40000003, (288, 286, 287), False)),  # x86_64 (+ x32), i386
        250,
    ),
    "aarch64": (((0xC00000B7, (219, 217, 218), False), (0x40000028, (311, 309, 310), False)), 219),  # arm64, arm
}


def seccomp_program(machine: str | None = None) -> bytes | None:
    """The seccomp filter that makes ``keyctl``, ``add_key`` and ``request_key`` fail with EPERM.

    As Docker's default profile does: the kernel keyring can hold the grader's
    secrets (its session keyring is inherited by everything it starts), and no
    course code needs it. Every other system call is allowed. A call made
    through an ABI this filter does not know (an unexpected architecture value)
    kills the process, so the filter cannot be sidestepped by switching ABI.
    None on machines whose system-call numbers are not in the table: the
    launcher then gives the sandbox a fresh, empty session keyring instead.
    """
    table = _KEY_SYSCALLS.get(machine or platform.machine())
    if table is None:
        return None
    deny: list[int] = []  # indices of jumps to the EPERM return, patched below
    program: list[list[int]] = [[_BPF_LD_W_ABS, 0, 0, _SECCOMP_DATA_ARCH]]
    for arch, numbers, x32 in table[0]:
        block: list[list[int]] = [[_BPF_LD_W_ABS, 0, 0, _SECCOMP_DATA_NR]]
        if x32:  # x32 calls carry the x86_64 arch value and bit 30 in the number: refuse them all
            block.append([_BPF_JSET_K, 0, 0, _X32_SYSCALL_BIT])
        block += [[_BPF_JEQ_K, 0, 0, number] for number in numbers]
        block.append([_BPF_RET_K, 0, 0, _SECCOMP_RET_ALLOW])
        program.append([_BPF_JEQ_K, 0, len(block), arch])  # not this ABI: skip its block
        start = len(program)
        program += block
        deny += [start + i for i, ins in enumerate(block) if ins[0] in (_BPF_JEQ_K, _BPF_JSET_K)]
    program.append([_BPF_RET_K, 0, 0, _SECCOMP_RET_KILL_PROCESS])  # an ABI not listed above
    program.append([_BPF_RET_K, 0, 0, _SECCOMP_RET_ERRNO | _EPERM])
    for index in deny:  # a match jumps forward to the last instruction
        program[index][1] = len(program) - 1 - index - 1
    assert all(0 <= ins[1] <= 255 and 0 <= ins[2] <= 255 for ins in program)
    return b"".join(struct.pack("=HBBI", *ins) for ins in program)  # struct sock_filter, native order


def keyctl_syscall_number(machine: str | None = None) -> int | None:
    """The native number of ``keyctl`` (for the fresh-session-keyring fallback), or None if unknown."""
    table = _KEY_SYSCALLS.get(machine or platform.machine())
    return None if table is None else table[1]


# ----------------------------------------------------------------------------- the launcher


LAUNCHER = (
    "import os, resource, sys\n"
    "memory, size, cgroup, seccomp, keyctl = sys.argv[1:6]\n"
    "resource.setrlimit(resource.RLIMIT_AS, (int(memory), int(memory)))\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (int(size), int(size)))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "if cgroup != '-':\n"
    "    with open(cgroup + '/cgroup.procs', 'w') as f:\n"
    "        f.write(str(os.getpid()))\n"
    "if seccomp != '-':\n"
    "    r, w = os.pipe()\n"
    "    os.write(w, bytes.fromhex(seccomp))\n"
    "    os.close(w)\n"
    f"    if r == {SECCOMP_FD}:\n"
    f"        os.set_inheritable({SECCOMP_FD}, True)\n"
    "    else:\n"
    f"        os.dup2(r, {SECCOMP_FD})\n"
    "        os.close(r)\n"
    "if keyctl != '-':\n"
    "    import ctypes\n"
    "    ctypes.CDLL(None, use_errno=True).syscall(int(keyctl), 1, None)\n"
    "os.execvp(sys.argv[6], sys.argv[6:])\n"
)
"""The exec shim every sandbox (and every plain-subprocess run) starts through.

Rather than a ``preexec_fn``, which is unsafe in a grader that starts sandboxes
from several threads, a tiny interpreter sets the per-process limits, moves
itself into the sandbox's cgroup, puts the seccomp filter on
:data:`SECCOMP_FD` for bubblewrap, or (where no filter can be built) joins a
fresh anonymous session keyring (``KEYCTL_JOIN_SESSION_KEYRING`` with no name),
and then becomes the command. Arguments: memory, file size, cgroup or ``-``,
filter as hex or ``-``, keyctl's number or ``-``, the command."""


def launch_command(cmd: Sequence[str], limits: SandboxLimits, cgroup: Path | None = None) -> list[str]:
    """``cmd`` started through :data:`LAUNCHER` with ``limits`` (and ``cgroup``, from :func:`sandbox_cgroup`).

    A bubblewrap command that asks for the seccomp filter (``--seccomp`` :data:`SECCOMP_FD`,
    as :func:`bubblewrap_command` writes it) gets it; one that does not (no filter on this machine)
    starts in a fresh session keyring.
    """
    program = seccomp_program()
    wants_filter = any(a == "--seccomp" and b == str(SECCOMP_FD) for a, b in itertools.pairwise(cmd))
    sandboxed = "--unshare-user" in cmd  # a plain subprocess (trusted code) needs no keyring of its own
    keyctl = keyctl_syscall_number() if sandboxed and not wants_filter else None
    return [
        sys.executable,
        "-I",
        "-S",
        "-c",
        LAUNCHER,
        str(limits.memory_bytes),
        str(limits.file_bytes),
        str(cgroup) if cgroup is not None else "-",
        program.hex() if wants_filter and program is not None else "-",
        str(keyctl) if keyctl is not None else "-",
        *cmd,
    ]


# ----------------------------------------------------------------------------- bubblewrap


def _supported_options(executable: str) -> frozenset[str]:
    """The optional bubblewrap flags this version understands (``--size`` is 0.7+, ``--disable-userns`` 0.8+)."""
    try:
        text = subprocess.run([executable, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(
        flag
        for flag in ("--size", "--disable-userns", "--die-with-parent", "--new-session", "--seccomp", "--remount-ro")
        if flag in text
    )


def _isolation_args(status: SandboxStatus, limits: SandboxLimits) -> list[str]:
    """Everything of a sandbox but what it runs and the course's files: the probe starts exactly this."""
    args = [*SANDBOX_FLAGS]
    if "--disable-userns" in status.options:
        args.append("--disable-userns")
    if status.seccomp:
        args += ["--seccomp", str(SECCOMP_FD)]
    args += _system_binds()
    args += ["--proc", "/proc"]
    for path in PROC_READ_ONLY:
        args += ["--ro-bind-try", path, path]  # the host's view (a missing one is skipped)
    for path in PROC_HIDDEN:
        if Path(path).exists():
            args += ["--ro-bind", "/dev/null", path]  # bound without device access: every open fails
    args += ["--dev", "/dev"]
    for mount in ("/dev/shm", "/tmp", MOUNT_SUBMISSION):
        if "--size" in status.options:
            args += ["--size", str(limits.tmpfs_bytes)]
        args += ["--tmpfs", mount]
    return args


def _seal_args(status: SandboxStatus) -> list[str]:
    """After every mount: the sandbox's own root and /dev read-only (the tmpfs mounts above stay writable)."""
    if "--remount-ro" not in status.options:
        return []
    return ["--remount-ro", "/dev", "--remount-ro", "/"]


def probe_bubblewrap() -> SandboxStatus:
    """Find ``bwrap`` and check that it can really create the sandbox we use.

    Creating a user namespace can be forbidden even when bwrap is installed
    (some kernels and Ubuntu's AppArmor restrict unprivileged user namespaces),
    so a tiny sandbox with the grader's own isolation (:func:`_isolation_args`:
    namespaces, seccomp filter, /proc and /dev as the grader sets them up) is
    started through the same launcher and must exit cleanly. If only the
    seccomp filter is refused, the sandbox is used without it (and with a
    fresh session keyring), which :func:`isolation_report` states.
    """
    if platform.system() != "Linux":
        return SandboxStatus(False, reason=f"bubblewrap needs Linux, this is {platform.system()}")
    executable = shutil.which("bwrap")
    if executable is None:
        return SandboxStatus(False, reason="bwrap is not installed (Debian/Ubuntu: sudo apt-get install bubblewrap)")
    try:
        version = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=10).stdout.split()[
            -1
        ]
    except (OSError, subprocess.SubprocessError, IndexError):
        version = "unknown"
    options = _supported_options(executable)
    message = ""
    for seccomp in (True, False) if "--seccomp" in options and seccomp_program() is not None else (False,):
        status = SandboxStatus(True, executable, version, "", options, seccomp)
        probe = [executable, *_isolation_args(status, SandboxLimits()), *_seal_args(status), "true"]
        try:
            result = subprocess.run(launch_command(probe, SandboxLimits()), capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as err:
            return SandboxStatus(False, executable, version, f"bwrap could not start: {err}", options)
        if result.returncode == 0:
            return status
        message = message or ((result.stderr or result.stdout).strip().splitlines()[-1:] or ["(no message)"])[0]
    hint = ""
    if "namespace" in message.lower() or "permission" in message.lower() or "uid map" in message.lower():
        hint = (
            " — this kernel forbids unprivileged user namespaces; on Ubuntu 23.10+ allow them with "
            "'sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0' or run the grader as root"
        )
    return SandboxStatus(False, executable, version, f"bwrap failed its self-test: {message}{hint}", options)


def _can_use_apt() -> list[str] | None:
    """The prefix that runs apt-get with root rights without asking for a password, or None."""
    if shutil.which("apt-get") is None:
        return None
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


def ensure_bubblewrap(install: bool = True, log=print) -> SandboxStatus:
    """Make sure the grading sandbox works; install Debian's ``bubblewrap`` package if it can.

    Installs only when ``install`` is true, on a Debian/Ubuntu system, and when
    root rights are available without a password (root, or passwordless sudo as
    on CI machines). Never fails: the returned status says what is missing.
    ``python3 course.py test`` calls this before the tests so that the grading
    tests run sandboxed on a fresh CI machine.
    """
    status = probe_bubblewrap()
    if status.available or not install or platform.system() != "Linux" or status.executable is not None:
        return status
    prefix = _can_use_apt()
    if prefix is None:
        return SandboxStatus(False, reason=status.reason + "; not installing it: no apt-get with root rights here")
    log("[course] installing bubblewrap (the sandbox the grader runs student code in) with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install_cmd = [*prefix, "apt-get", "install", "-y", "-q", "bubblewrap"]
    result = subprocess.run(install_cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:  # a fresh machine may have no package lists yet
        subprocess.run([*prefix, "apt-get", "update", "-q"], capture_output=True, text=True, env=env)
        result = subprocess.run(install_cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
        return SandboxStatus(False, reason=f"apt-get install bubblewrap failed: {tail[0]}")
    return probe_bubblewrap()


def sandbox_required_by_environment() -> bool:
    """True when the environment says grading tests must not skip for want of a sandbox.

    ``COURSE_REQUIRE_SANDBOX=1`` forces it, ``=0`` turns it off; otherwise it is
    on where the conventional ``CI`` variable is set (CI services set it).
    """
    explicit = os.environ.get("COURSE_REQUIRE_SANDBOX", "").strip().lower()
    if explicit in {"1", "true", "yes", "on"}:
        return True
    if explicit in {"0", "false", "no", "off"}:
        return False
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _system_binds() -> list[str]:
    """Read-only views of the system's program and library folders (merged-/usr aware)."""
    args: list[str] = []
    for name in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    for name in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/fonts"):
        if Path(name).exists():
            args += ["--ro-bind", name, name]
    return args


def python_read_only_paths() -> list[Path]:
    """What the sandbox needs to run this interpreter with the course's packages, and nothing more.

    The virtual environment, the interpreter it was made from, and the
    ``course_utils`` package (an editable install points into the repository:
    only that package folder is shown, never the repository itself).
    """
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent}
    spec = importlib.util.find_spec("course_utils")
    if spec is not None and spec.submodule_search_locations:
        paths.update(Path(p) for p in spec.submodule_search_locations)
    system = ("/usr", "/bin", "/lib", "/lib64", "/sbin")
    keep = []
    for path in sorted(p.resolve() for p in paths if p.exists()):
        if str(path) in {"/", *system} or any(str(path).startswith(s + "/") for s in system):
            continue  # already visible through the system binds
        keep.append(path)
    return keep


def _module_name(path: Path) -> str:
    """The dotted name ``path`` (a module file or a package folder) is imported as."""
    parts = [path.stem if path.suffix == ".py" else path.name]
    folder = path.parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


def hidden_module_stub(directory: Path, module_name: str) -> Path:
    """Write a module that raises ImportError for ``module_name`` into ``directory``; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    stub = directory / f"{module_name}.py"
    message = f"{module_name} is not available while this assignment is graded: write your own"
    stub.write_text(f"raise ImportError({message!r}, name={module_name!r})\n", encoding="utf-8")
    stub.chmod(0o444)
    return stub


def _hide_args(hide: Sequence[Path], trees: Sequence[Path], stubs: Path) -> list[str]:
    """bwrap arguments that replace each of ``hide`` (inside one of the read-only ``trees``) by a stub.

    A module file is covered by a stub module raising ImportError, and its
    compiled copies in ``__pycache__`` by an empty file. A package folder is
    covered by an empty tmpfs holding only such a stub as ``__init__.py`` (an
    empty folder would still import, as a namespace package), then made
    read-only. The original text cannot be read inside the sandbox.
    """
    args: list[str] = []
    empty = stubs / "empty"
    for given in hide:
        path = Path(given).resolve()
        if not any(path == t or t in path.parents for t in trees):
            raise ValueError(f"cannot hide {path}: it is not inside a folder the sandbox shows read-only")
        if not path.exists():
            raise ValueError(f"cannot hide {path}: it does not exist")
        stub = hidden_module_stub(stubs, _module_name(path))
        if path.is_dir():
            args += ["--tmpfs", str(path), "--ro-bind", str(stub), str(path / "__init__.py"), "--remount-ro", str(path)]
            continue
        args += ["--ro-bind", str(stub), str(path)]
        cached = sorted((path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"))
        if cached and not empty.exists():
            empty.write_bytes(b"")
        for pyc in cached:
            args += ["--ro-bind", str(empty), str(pyc)]
    return args


def bubblewrap_command(
    status: SandboxStatus,
    python: str,
    runner: Path,
    job: Path,
    env: dict[str, str],
    limits: SandboxLimits,
    extra_read_only: list[Path] | None = None,
    hide: Sequence[Path] = (),
) -> list[str]:
    """The ``bwrap`` command line that runs ``python runner job`` in the sandbox described above.

    ``hide`` lists files and folders inside the read-only trees (e.g.
    ``<repo>/course_utils/dqn.py``) that student code must not import or read:
    each is replaced by a module raising ``ImportError("<module> is not available
    while this assignment is graded: write your own")``, written next to ``job``
    (the run's work folder). Start the command with :func:`launch_command`: it
    supplies the seccomp filter the command asks for.
    """
    if not status.available or status.executable is None:
        raise RuntimeError(f"bubblewrap is not available: {status.reason}")
    trees = [*python_read_only_paths(), *(Path(p) for p in extra_read_only or [])]
    cmd = [status.executable, *_isolation_args(status, limits)]
    for path in trees:
        cmd += ["--ro-bind", str(path), str(path)]
    cmd += _hide_args(hide, [Path(t).resolve() for t in trees], job.parent / "hidden-modules")
    cmd += ["--ro-bind", str(runner), f"{MOUNT_GRADER}/runner.py", "--ro-bind", str(job), f"{MOUNT_GRADER}/job.json"]
    cmd += _seal_args(status)
    cmd += ["--chdir", MOUNT_SUBMISSION, "--clearenv"]
    for key, value in sorted(env.items()):
        cmd += ["--setenv", key, value]
    cmd += _process_limit(limits)
    cmd += [python, "-I", "-X", "utf8", f"{MOUNT_GRADER}/runner.py", f"{MOUNT_GRADER}/job.json"]
    return cmd


def _process_limit(limits: SandboxLimits) -> list[str]:
    """The prefix that sets RLIMIT_NPROC inside the sandbox, just before the runner starts.

    Set inside, not by the launcher: the kernel counts processes per user *and
    user namespace*, so inside the sandbox's namespace the limit counts only
    the sandbox's own processes; set outside, it would also count every other
    process of the grader's user. (The kernel does not apply it to processes
    of root, so it has no effect when the grader runs as root.)
    """
    prlimit = shutil.which("prlimit")  # util-linux: starts in a few ms, where Python takes tens
    if prlimit is not None and prlimit.startswith(("/usr/", "/bin/", "/sbin/")):
        return [prlimit, f"--nproc={limits.processes}", "--"]
    shim = "import os, resource, sys\nn = int(sys.argv[1])\nresource.setrlimit(resource.RLIMIT_NPROC, (n, n))\n"
    shim += "os.execv(sys.argv[2], sys.argv[2:])\n"
    return [sys.executable, "-I", "-S", "-c", shim, str(limits.processes)]


def sandbox_env(fast: bool, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables student code sees (the grader's own environment is never passed on)."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp/home",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "SDL_VIDEODRIVER": "dummy",
        "PYGAME_HIDE_SUPPORT_PROMPT": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TQDM_DISABLE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "COURSE_FAST": "1" if fast else "0",
    }
    env.update(extra or {})
    return env


# ----------------------------------------------------------------------------- cgroups v2

CGROUP_ENV = "COURSE_GRADER_CGROUP"
"""Names a cgroup v2 folder prepared for the grader (delegated to its user, ``memory`` and ``pids`` in its
``cgroup.subtree_control``): each sandbox gets a child of it. Without it, the grader's own cgroup is used
when it is delegated and holds only the grader."""


@dataclass(frozen=True)
class CgroupSupport:
    """Where sandboxes get their own cgroup (``parent``), or why they cannot (``reason``)."""

    parent: Path | None
    reason: str = ""


_cgroup_lock = threading.Lock()
_cgroup_cache: dict[str, CgroupSupport] = {}
_cgroup_names = itertools.count()


def _cgroup2_mount(mountinfo: str) -> Path | None:
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " in line and line.split(" - ", 1)[1].split()[:1] == ["cgroup2"]:
            return Path(fields[4])
    return None


def _words(path: Path) -> set[str]:
    try:
        return set(path.read_text().split())
    except OSError:
        return set()


def cgroup_support(
    prepare: bool = True,
    mountinfo: Path = Path("/proc/self/mountinfo"),
    self_cgroup: Path = Path("/proc/self/cgroup"),
    environ: dict[str, str] | None = None,
) -> CgroupSupport:
    """Whether each sandbox can have its own cgroup v2 with ``memory.max`` and ``pids.max``.

    Needs a cgroup v2 hierarchy whose ``memory`` and ``pids`` controllers are
    delegated to the grader: either the folder named by :data:`CGROUP_ENV`,
    or the grader's own cgroup when it is writable, offers both controllers
    and holds no other process (e.g. started with ``systemd-run --user
    --scope -p Delegate=yes``). In the second case, with ``prepare``, the grader
    moves itself into a leaf ``grader`` below it and enables the controllers
    for the sandboxes (the kernel allows controllers only in cgroups without
    processes of their own). The answer is computed once per process.
    """
    environ = os.environ if environ is None else environ
    key = f"{prepare}:{mountinfo}:{self_cgroup}:{environ.get(CGROUP_ENV, '')}"
    with _cgroup_lock:
        if key not in _cgroup_cache:
            _cgroup_cache[key] = _find_cgroup(prepare, mountinfo, self_cgroup, environ)
        return _cgroup_cache[key]


def _find_cgroup(prepare: bool, mountinfo: Path, self_cgroup: Path, environ) -> CgroupSupport:
    if platform.system() != "Linux":
        return CgroupSupport(None, "cgroups are Linux only")
    try:
        mount = _cgroup2_mount(mountinfo.read_text())
        own = next((line[3:] for line in self_cgroup.read_text().splitlines() if line.startswith("0::")), None)
    except OSError as err:
        return CgroupSupport(None, f"cannot read the cgroup set-up: {err}")
    if mount is None or own is None:
        return CgroupSupport(None, "no cgroup v2 hierarchy is mounted (cgroups v1 only)")
    wanted = {"memory", "pids"}
    if environ.get(CGROUP_ENV):
        parent = Path(environ[CGROUP_ENV])
        missing = wanted - _words(parent / "cgroup.subtree_control")
        if missing or not os.access(parent, os.W_OK):
            return CgroupSupport(
                None,
                f"{CGROUP_ENV}={parent} is not a writable cgroup with memory and pids in cgroup.subtree_control",
            )
        return CgroupSupport(parent)
    parent = mount / own.lstrip("/")
    available = _words(parent / "cgroup.controllers")
    if not wanted <= available:
        return CgroupSupport(
            None,
            f"the cgroup v2 hierarchy ({mount}) offers no {' and '.join(sorted(wanted - available))} "
            f"controller here (available: {' '.join(sorted(available)) or 'none'})",
        )
    writable = all(os.access(parent / name, os.W_OK) for name in ("", "cgroup.procs", "cgroup.subtree_control"))
    if not writable:
        return CgroupSupport(None, f"the grader's cgroup {parent} is not delegated to this user")
    if wanted <= _words(parent / "cgroup.subtree_control") and parent == mount:
        return CgroupSupport(parent)  # the real root cgroup may hold processes and enable controllers
    others = _words(parent / "cgroup.procs") - {str(os.getpid())}
    if others:
        return CgroupSupport(
            None,
            f"the grader's cgroup {parent} holds other processes too (start the grader in a cgroup of its own, "
            f"e.g. systemd-run --user --scope -p Delegate=yes, or set {CGROUP_ENV})",
        )
    if prepare:
        try:
            (parent / "grader").mkdir(exist_ok=True)
            (parent / "grader" / "cgroup.procs").write_text(str(os.getpid()))
            (parent / "cgroup.subtree_control").write_text("+memory +pids")
        except OSError as err:
            return CgroupSupport(None, f"could not enable memory and pids for sandboxes in {parent}: {err}")
    return CgroupSupport(parent)


def sandbox_cgroup(limits: SandboxLimits, support: CgroupSupport | None = None) -> Path | None:
    """A new cgroup for one sandbox with ``memory.max`` and ``pids.max`` set, or None where there are none.

    The launcher moves the sandbox into it before bubblewrap starts, so every
    process inside is counted; :func:`remove_sandbox_cgroup` removes it.
    """
    support = cgroup_support() if support is None else support
    if support.parent is None:
        return None
    path = support.parent / f"sandbox-{os.getpid()}-{next(_cgroup_names)}"
    try:
        path.mkdir()
        (path / "memory.max").write_text(str(limits.group_memory_bytes))
        (path / "pids.max").write_text(str(limits.processes))
        if (path / "memory.swap.max").exists():
            (path / "memory.swap.max").write_text("0")
    except OSError:
        remove_sandbox_cgroup(path, wait=0.0)
        return None
    return path


def remove_sandbox_cgroup(path: Path, wait: float = 2.0) -> bool:
    """Kill whatever is left in the sandbox's cgroup and remove it; True if it is gone."""
    try:
        (path / "cgroup.kill").write_text("1")  # Linux 5.14+; the PID namespace's end kills them anyway
    except OSError:
        pass
    deadline = time.monotonic() + wait
    while True:
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


# ----------------------------------------------------------------------------- what is in force


def isolation_report(status: SandboxStatus, limits: SandboxLimits | None = None) -> list[str]:
    """What the sandbox guarantees on this machine, one line per point (``setup-sandbox`` prints it)."""
    limits = limits or SandboxLimits()
    if not status.available:
        return [f"no sandbox: {status.reason}"]
    mib = 2**20
    lines = [f"bubblewrap {status.version} ({status.executable})"]
    if status.seccomp:
        lines.append("kernel keyring: keyctl, add_key and request_key fail with EPERM (seccomp filter)")
    else:
        lines.append("kernel keyring: no seccomp filter here; each sandbox gets a fresh, empty session keyring")
    size = f"{limits.tmpfs_bytes // mib} MiB each" if "--size" in status.options else "NOT size-limited (bwrap < 0.7)"
    lines.append(f"writable: /tmp, /submission and /dev/shm only, private tmpfs, {size}")
    if "--remount-ro" not in status.options:
        lines.append("WARNING: this bwrap cannot remount the sandbox's root read-only (no --remount-ro)")
    lines.append(
        "/proc: sysctls, IRQ and bus settings read-only, /proc/keys hidden; bubblewrap's stderr is a pipe the "
        "grader closes once the runner has started"
    )
    support = cgroup_support(prepare=False)
    if support.parent is not None:
        lines.append(
            f"memory and processes per sandbox: cgroup v2 below {support.parent} "
            f"(memory.max {limits.group_memory_bytes // mib} MiB, pids.max {limits.processes})"
        )
    else:
        nproc = (
            "NOT limited: the grader runs as root and the kernel does not apply RLIMIT_NPROC to root's "
            "processes (run the grader as a normal user, or give it a delegated cgroup v2)"
            if os.geteuid() == 0
            else f"at most {limits.processes} processes and threads per sandbox (RLIMIT_NPROC, counted per sandbox)"
        )
        lines.append(f"cgroups v2: not used ({support.reason})")
        lines.append(
            f"memory: per process ({limits.memory_bytes // mib} MiB of address space, files up to "
            f"{limits.file_bytes // mib} MiB); process count: {nproc}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m course_grader setup-sandbox [--no-install]``: report (and install) the sandbox."""
    args = list(sys.argv[1:] if argv is None else argv)
    status = ensure_bubblewrap(install="--no-install" not in args)
    lines = isolation_report(status)
    print(f"[course] grading sandbox: {lines[0]}", flush=True)
    for line in lines[1:]:
        print(f"[course]   {line}", flush=True)
    return 0 if status.available else 1


if __name__ == "__main__":
    sys.exit(main())
