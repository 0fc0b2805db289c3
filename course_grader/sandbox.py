"""The sandbox student code runs in: bubblewrap, found, installed and checked.

Only the standard library is used here, so ``python3 course.py`` can call
:func:`ensure_bubblewrap` before anything else is installed, and the grader can
report clearly what is missing.

What a sandboxed run sees (see :func:`bubblewrap_command`)::

    /usr, /bin, /lib*           read-only (the system's programs and libraries)
    <python>, <venv>            read-only (the interpreter and the course's packages)
    <course_utils>              read-only (the only part of the repository it sees)
    /grader/runner.py, job.json read-only (the grader's public runner and this run's job)
    /tmp, /submission           private, size-limited tmpfs (cwd is /submission)
    /proc, /dev                 private and minimal

and nothing else: no solutions, no hidden tests, no gradebook, no other student,
no home directory. It has no network (a private network namespace with only
loopback), its own PID namespace (killing the sandbox kills every process the
student started), runs as an unprivileged user in a user namespace with no
capabilities, dies with the grader (``--die-with-parent``) and cannot inject
keystrokes into the grader's terminal (``--new-session``).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

SANDBOX_MODES = ("require", "warn", "off")
"""``require``: refuse to grade without bubblewrap (default); ``warn``: grade in a
plain subprocess with a loud warning; ``off``: plain subprocess on purpose
(trusted submissions only, e.g. the solution)."""

SANDBOX_UID = 65534  # "nobody" inside the user namespace
MOUNT_SUBMISSION = "/submission"
MOUNT_GRADER = "/grader"


@dataclass(frozen=True)
class SandboxStatus:
    """Whether bubblewrap works on this machine, and if not, why and what to do."""

    available: bool
    executable: str | None = None
    version: str | None = None
    reason: str = ""
    options: frozenset[str] = field(default_factory=frozenset)

    def describe(self) -> str:
        if self.available:
            return f"bubblewrap {self.version} ({self.executable})"
        return f"no sandbox: {self.reason}"


def _supported_options(executable: str) -> frozenset[str]:
    """The optional bubblewrap flags this version understands (``--size`` is 0.7+, ``--disable-userns`` 0.8+)."""
    try:
        text = subprocess.run([executable, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(
        flag for flag in ("--size", "--disable-userns", "--die-with-parent", "--new-session") if flag in text
    )


def probe_bubblewrap() -> SandboxStatus:
    """Find ``bwrap`` and check that it can really create the namespaces we use.

    Creating a user namespace can be forbidden even when bwrap is installed
    (some kernels and Ubuntu's AppArmor restrict unprivileged user namespaces),
    so a tiny sandbox is started and must exit cleanly.
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
    probe = [
        executable,
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
        *_system_binds(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "true",
    ]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return SandboxStatus(False, executable, version, f"bwrap could not start: {err}", options)
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["(no message)"]
        hint = ""
        if "namespace" in message[0].lower() or "permission" in message[0].lower() or "uid map" in message[0].lower():
            hint = (
                " — this kernel forbids unprivileged user namespaces; on Ubuntu 23.10+ allow them with "
                "'sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0' or run the grader as root"
            )
        return SandboxStatus(False, executable, version, f"bwrap failed its self-test: {message[0]}{hint}", options)
    return SandboxStatus(True, executable, version, "", options)


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


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one sandboxed run (applied to the whole process tree)."""

    memory_bytes: int = 4 * 2**30  # address space per process (RLIMIT_AS)
    tmpfs_bytes: int = 512 * 2**20  # size of /tmp and of /submission each
    file_bytes: int = 256 * 2**20  # largest file a process may write (RLIMIT_FSIZE)


def bubblewrap_command(
    status: SandboxStatus,
    python: str,
    runner: Path,
    job: Path,
    env: dict[str, str],
    limits: SandboxLimits,
    extra_read_only: list[Path] | None = None,
) -> list[str]:
    """The ``bwrap`` command line that runs ``python runner job`` in the sandbox described above."""
    if not status.available or status.executable is None:
        raise RuntimeError(f"bubblewrap is not available: {status.reason}")
    cmd = [
        status.executable,
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
    ]
    if "--disable-userns" in status.options:
        cmd.append("--disable-userns")
    cmd += _system_binds()
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    for mount in ("/tmp", MOUNT_SUBMISSION):
        if "--size" in status.options:
            cmd += ["--size", str(limits.tmpfs_bytes)]
        cmd += ["--tmpfs", mount]
    for path in [*python_read_only_paths(), *(extra_read_only or [])]:
        cmd += ["--ro-bind", str(path), str(path)]
    cmd += ["--ro-bind", str(runner), f"{MOUNT_GRADER}/runner.py", "--ro-bind", str(job), f"{MOUNT_GRADER}/job.json"]
    cmd += ["--chdir", MOUNT_SUBMISSION, "--clearenv"]
    for key, value in sorted(env.items()):
        cmd += ["--setenv", key, value]
    cmd += [python, "-I", "-X", "utf8", f"{MOUNT_GRADER}/runner.py", f"{MOUNT_GRADER}/job.json"]
    return cmd


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


def main(argv: list[str] | None = None) -> int:
    """``python -m course_grader setup-sandbox [--no-install]``: report (and install) the sandbox."""
    args = list(sys.argv[1:] if argv is None else argv)
    status = ensure_bubblewrap(install="--no-install" not in args)
    print(f"[course] grading sandbox: {status.describe()}", flush=True)
    return 0 if status.available else 1


if __name__ == "__main__":
    sys.exit(main())
