"""A class on JupyterHub, for real: deploy/jupyterhub_config.py with an instructor and three students.

The test starts JupyterHub on localhost with the course's hub configuration (LocalProcessSpawner, nbgrader's
exchange, per-role Jupyter settings) and configurable-http-proxy from npm (deploy/install-proxy.sh), creates
four real Unix accounts (useradd) and spawns each one's JupyterLab through the hub's REST API. Everything a
person would click is then done over HTTP with that person's own API token, through the proxy:

- the instructor releases the assignment (formgrader's Release button);
- each student fetches it (Assignments panel), saves their work (one honest solution, one untouched stub,
  one broken file) and submits it;
- the instructor collects (formgrader), runs ``course_grader autograde`` and ``feedback`` in a notebook
  with the course's kernel, and releases feedback (formgrader);
- each student fetches feedback: their own page, with their own score, and nobody else's.

It needs root (useradd, a private mount namespace) and is skipped without it (failed under CI). The machine's
Python may live where other users cannot reach it (pyenv under /root): the hub then runs in a private mount
namespace in which that folder, and only it, is made reachable; nothing changes outside the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat
import pytest

requests = pytest.importorskip("requests")

# A real system test of a minute or more (four JupyterLab servers on two cores): `python3 course.py test` runs it
# in a step of its own, after the other tests (marker `system`; elsewhere it skips unless COURSE_SYSTEM_TESTS=1).
pytestmark = pytest.mark.system
pytest.importorskip("jupyterhub")

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
ASSIGNMENT = "a3_reparameterization"  # the quickest assignment to grade
COURSE_ID = "drl-course"
PREFIX = "drlhub"  # every account this test creates starts with it (and is removed at the end)
INSTRUCTOR = f"{PREFIX}-teach"
STUDENTS = {f"{PREFIX}-ana": "honest", f"{PREFIX}-ben": "stub", f"{PREFIX}-cem": "broken"}
USERS = [INSTRUCTOR, *STUDENTS]
SEED = 7


def _unavailable() -> str | None:
    if sys.platform != "linux":
        return "needs Linux"
    if os.geteuid() != 0:
        return "needs root (useradd, a private mount namespace for the hub)"
    for tool in ("useradd", "userdel", "unshare", "runuser"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


@pytest.fixture(scope="module")
def reason_to_skip():
    why = _unavailable()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"the hub test cannot run: {why}")
        pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy_executable() -> str:
    result = subprocess.run([str(DEPLOY / "install-proxy.sh")], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"could not install configurable-http-proxy:\n{result.stderr[-2000:]}")
    return result.stdout.strip().splitlines()[-1]


def remove_user(name: str) -> None:
    assert name.startswith(PREFIX + "-")
    if subprocess.run(["id", "-u", name], capture_output=True).returncode != 0:
        return
    pids = subprocess.run(["ps", "-u", name, "-o", "pid="], capture_output=True, text=True).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    subprocess.run(["userdel", "-r", "-f", name], capture_output=True)


def blocked_folders(paths: list[Path]) -> dict[Path, set[str]]:
    """For each folder on the way to ``paths`` that other users cannot enter: the entries below it needed."""
    blocked: dict[Path, set[str]] = {}
    for path in paths:
        path = path.resolve()
        for parent in [*reversed(path.parents)][1:]:
            if not parent.stat().st_mode & stat.S_IXOTH:
                blocked.setdefault(parent, set()).add(path.relative_to(parent).parts[0])
                break
    return blocked


def namespace_script(stage: Path, blocked: dict[Path, set[str]]) -> str:
    """Shell lines (run in a new mount namespace) that put an enterable tmpfs over each blocked folder and bind
    back only the entries needed, so that the course's Python can be run by the test's users."""
    lines = ["set -e"]
    for k, (folder, entries) in enumerate(sorted(blocked.items())):
        for name in sorted(entries):
            keep = stage / f"{k}-{name}"
            keep.mkdir(parents=True, exist_ok=True)
            lines.append(f"mount --bind '{folder / name}' '{keep}'")
        lines.append(f"mount -t tmpfs -o mode=755 tmpfs '{folder}'")
        for name in sorted(entries):
            keep = stage / f"{k}-{name}"
            target = folder / name
            lines.append(f"if [ -d '{keep}' ]; then mkdir -p '{target}'; else touch '{target}'; fi")
            lines.append(f"mount --bind '{keep}' '{target}'")
    return "\n".join(lines)


class Hub:
    def __init__(self, url: str, token: str, folder: Path):
        self.url, self.token, self.folder = url, token, folder
        self.tokens: dict[str, str] = {}

    def api(self, method: str, path: str, token: str | None = None, **kwargs):
        headers = {"Authorization": f"token {token or self.token}"}
        response = requests.request(method, self.url + path, headers=headers, timeout=120, **kwargs)
        return response

    def user(self, name: str, method: str, path: str, **kwargs):
        """A request to ``name``'s own server, with ``name``'s own token."""
        return self.api(method, f"/user/{name}{path}", token=self.tokens[name], **kwargs)

    def action(self, name: str, path: str, **data):
        response = self.user(name, "POST", path, data=data)
        assert response.status_code == 200, f"{name} {path}: HTTP {response.status_code} {response.text[:2000]}"
        reply = response.json()
        assert reply.get("success"), f"{name} {path}: {json.dumps(reply)[:3000]}"
        return reply

    def run(self, name: str, code: str, timeout: float = 300) -> str:
        """Run ``code`` in a new kernel of the course ("drl-course") on ``name``'s server; return its output."""
        response = self.user(name, "POST", "/api/kernels", json={"name": "drl-course"})
        assert response.status_code == 201, response.text
        kernel = response.json()["id"]
        try:
            url = self.url.replace("http://", "ws://") + f"/user/{name}/api/kernels/{kernel}/channels"
            return asyncio.run(_execute(url, self.tokens[name], code, timeout))
        finally:
            self.user(name, "DELETE", f"/api/kernels/{kernel}")


async def _execute(url: str, token: str, code: str, timeout: float) -> str:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request"}
    content = {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False}
    message = {"header": header | {"version": "5.3", "date": ""}, "parent_header": {}, "metadata": {}}
    await ws.write_message(json.dumps(message | {"content": content, "channel": "shell", "buffers": []}))
    output, error, replied, idle = [], None, False, False
    deadline = time.monotonic() + timeout
    while not (replied and idle):
        raw = await asyncio.wait_for(ws.read_message(), max(1.0, deadline - time.monotonic()))
        assert raw is not None, "the kernel's connection closed"
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "stream":
            output.append(msg["content"]["text"])
        elif kind == "error":
            error = "\n".join(msg["content"]["traceback"])
        elif kind == "execute_reply":
            replied = True
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            idle = True
    ws.close()
    assert error is None, f"the cell failed:\n{''.join(output)}\n{error}"
    return "".join(output)


@pytest.fixture(scope="module")
def hub(reason_to_skip, tmp_path_factory):
    started = time.monotonic()
    proxy = proxy_executable()
    for name in USERS:
        remove_user(name)  # left over from an interrupted run
    folder = Path(tempfile.mkdtemp(prefix="drl-hub-"))  # the hub's own files (root only)
    exchange = Path(tempfile.mkdtemp(prefix="drl-exchange-"))
    exchange.chmod(0o1777)
    process = None
    try:
        for name in USERS:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
        home = Path(f"/home/{INSTRUCTOR}")
        course = home / "drl-course"  # the instructor's copy of the course (COURSE_INSTRUCTOR_FOLDER)
        course.mkdir()
        shutil.copy(REPO / "nbgrader_config.py", course)
        (course / "instructor").mkdir()  # git-ignored in the repository, so a fresh clone has none
        for top in ("solutions", "assignments"):
            shutil.copytree(
                REPO / top / ASSIGNMENT, course / top / ASSIGNMENT, ignore=shutil.ignore_patterns("__pycache__")
            )
        subprocess.run(["chown", "-R", f"{INSTRUCTOR}:{INSTRUCTOR}", str(course)], check=True)

        port, token = free_port(), uuid.uuid4().hex
        config = folder / "jupyterhub_config.py"
        config.write_text(
            f"""load_subconfig({str(DEPLOY / "jupyterhub_config.py")!r})
# The test logs nobody in with a password: it acts through API tokens, so any authenticator does.
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.db_url = "sqlite:///{folder / "hub.sqlite"}"
c.JupyterHub.cookie_secret_file = {str(folder / "cookie_secret")!r}
c.JupyterHub.hub_port = {free_port()}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.pid_file = {str(folder / "proxy.pid")!r}
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}  # the spawn request answers at once; the test polls
c.JupyterHub.services = [{{"name": "course-test", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [
    {{"name": "course-test", "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"], "services": ["course-test"]}}
]
"""
        )
        env = dict(
            os.environ,
            COURSE_VENV=sys.prefix,
            COURSE_SRC=str(REPO),
            COURSE_ID=COURSE_ID,
            COURSE_EXCHANGE=str(exchange),
            COURSE_INSTRUCTORS=INSTRUCTOR,
            COURSE_STUDENTS=",".join(STUDENTS),
            COURSE_HUB_IP="127.0.0.1",
            COURSE_HUB_PORT=str(port),
            COURSE_PROXY=proxy,
        )
        needed = [Path(sys.executable), Path(sys.prefix), REPO, Path(proxy)]
        script = namespace_script(folder / "stage", blocked_folders(needed))
        check = f"runuser -u {INSTRUCTOR} -- '{sys.executable}' -c 'import jupyterhub, course_grader, torch'"
        hub_cmd = f"exec '{sys.executable}' -m jupyterhub -f '{config}' --no-ssl"
        log = open(folder / "hub.log", "w")  # noqa: SIM115 - closed at teardown
        process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", f"{script}\n{check}\n{hub_cmd}"],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        the_hub = Hub(f"http://127.0.0.1:{port}", token, folder)
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, "the hub exited:\n" + (folder / "hub.log").read_text()[-5000:]
            try:
                if the_hub.api("GET", "/hub/api/").status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, (folder / "hub.log").read_text()[-5000:]
            time.sleep(0.5)
        the_hub.exchange, the_hub.course = exchange, course
        the_hub.started, the_hub.up = started, time.monotonic()
        yield the_hub
    finally:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the hub stops every user's server, then itself
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if process is not None:
            log.close()
        for name in USERS:
            remove_user(name)
        shutil.rmtree(exchange, ignore_errors=True)
        if os.environ.get("COURSE_KEEP_HUB_LOG"):
            print(f"hub files kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def spawn_all(hub: Hub) -> None:
    for name in USERS:
        response = hub.api("POST", f"/hub/api/users/{name}/tokens", json={"note": "hub test", "expires_in": 3600})
        assert response.status_code == 201, response.text
        hub.tokens[name] = response.json()["token"]
        response = hub.api("POST", f"/hub/api/users/{name}/server")
        assert response.status_code in (201, 202), response.text
    deadline = time.monotonic() + 180
    waiting = set(USERS)
    while waiting:
        for name in sorted(waiting):
            server = hub.api("GET", f"/hub/api/users/{name}").json().get("servers", {}).get("", {})
            if server.get("ready"):
                waiting.discard(name)
        assert time.monotonic() < deadline, (
            f"servers not ready: {waiting}\n" + (hub.folder / "hub.log").read_text()[-5000:]
        )
        time.sleep(0.5)


def submission(kind: str, fetched: dict) -> dict:
    """What each student saves: the solution (honest), the fetched stub untouched, or a file cut in half."""
    if kind == "honest":
        nb = nbformat.read(REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
        return {"type": "notebook", "format": "json", "content": json.loads(nbformat.writes(nb))}
    if kind == "stub":
        return {"type": "notebook", "format": "json", "content": fetched}
    return {"type": "file", "format": "text", "content": json.dumps(fetched)[:3000]}


def test_a_class_on_jupyterhub_release_fetch_submit_collect_grade_feedback(hub):
    spawn_all(hub)
    spawned = time.monotonic()
    notebook = f"{ASSIGNMENT}.ipynb"

    # every server runs as its own Unix user, with the course's kernel
    for name in USERS:
        specs = hub.user(name, "GET", "/api/kernelspecs").json()["kernelspecs"]
        assert "drl-course" in specs, sorted(specs)
    assert hub.run(f"{PREFIX}-ana", "import getpass, course_utils; print(getpass.getuser())").strip() == f"{PREFIX}-ana"
    # students have the Assignments panel but no formgrader; the instructor has formgrader
    assert hub.user(f"{PREFIX}-ana", "GET", "/formgrader/api/assignments").status_code == 404
    assert hub.user(INSTRUCTOR, "GET", "/formgrader/api/assignments").status_code == 200

    hub.action(INSTRUCTOR, f"/formgrader/api/assignment/{ASSIGNMENT}/release")
    assert (hub.exchange / COURSE_ID / "outbound" / ASSIGNMENT / notebook).is_file()

    for name, kind in STUDENTS.items():
        listed = hub.user(name, "GET", "/assignments", params={"course_id": COURSE_ID}).json()
        assert [a["assignment_id"] for a in listed["value"] if a["status"] == "released"] == [ASSIGNMENT], listed
        hub.action(name, "/assignments/fetch", course_id=COURSE_ID, assignment_id=ASSIGNMENT)
        fetched = hub.user(name, "GET", f"/api/contents/{ASSIGNMENT}/{notebook}").json()
        assert fetched["type"] == "notebook"
        saved = hub.user(
            name, "PUT", f"/api/contents/{ASSIGNMENT}/{notebook}", json=submission(kind, fetched["content"])
        )
        assert saved.status_code == 200, saved.text
        hub.action(name, "/assignments/submit", course_id=COURSE_ID, assignment_id=ASSIGNMENT)

    hub.action(INSTRUCTOR, f"/formgrader/api/assignment/{ASSIGNMENT}/collect")
    for name in STUDENTS:
        assert (hub.course / "instructor" / "submitted" / name / ASSIGNMENT / notebook).is_file()

    graded = time.monotonic()
    output = hub.run(
        INSTRUCTOR,
        f"""import subprocess, sys
for command in (["autograde", {ASSIGNMENT!r}, "--seed", "{SEED}", "--jobs", "2"], ["feedback", {ASSIGNMENT!r}]):
    done = subprocess.run([sys.executable, "-m", "course_grader", *command], capture_output=True, text=True)
    print(done.stdout, done.stderr, "exit", done.returncode)""",
    )
    graded = time.monotonic() - graded
    assert output.count("exit 0") == 2, output
    results = {
        name: json.loads((hub.course / "instructor" / "autograded" / name / ASSIGNMENT / "result.json").read_text())
        for name in STUDENTS
    }
    honest, stub, broken = (results[f"{PREFIX}-{n}"] for n in ("ana", "ben", "cem"))
    assert honest["score"] == honest["max_score"] > 0 and honest["sandbox"] != "not run", honest["problems"]
    assert stub["score"] == 0 and stub["status"] == "graded"
    assert broken["status"] == "invalid" and broken["score"] == 0

    hub.action(INSTRUCTOR, f"/formgrader/api/assignment/{ASSIGNMENT}/release_feedback")
    pages = {}
    for name in STUDENTS:
        hub.action(name, "/assignments/fetch_feedback", course_id=COURSE_ID, assignment_id=ASSIGNMENT)
        listing = hub.user(name, "GET", f"/api/contents/{ASSIGNMENT}/feedback").json()["content"]
        assert len(listing) == 1, listing  # one submission, one feedback folder (named by its timestamp)
        page = hub.user(name, "GET", f"/api/contents/{listing[0]['path']}/{ASSIGNMENT}.html").json()
        pages[name] = page["content"]
    for name, page in pages.items():
        assert name in page, f"{name}'s feedback does not name them"
        assert not [other for other in STUDENTS if other != name and other in page], f"{name} got another's feedback"
        # the autograded score (written answers wait for hand grading, so the maximum may be higher)
        assert f"<b>Score: {results[name]['score']:g} / " in page, page[:3000]
    # the exchange itself: a student can neither list the submissions nor the feedback of others
    probe = hub.run(
        f"{PREFIX}-ben",
        f"""import os
for folder in ("inbound", "feedback"):
    try:
        os.listdir({str(hub.exchange / COURSE_ID)!r} + "/" + folder)
        print(folder, "listed")
    except PermissionError:
        print(folder, "refused")""",
    )
    assert probe.split() == ["inbound", "refused", "feedback", "refused"], probe
    total = time.monotonic() - hub.started
    print(
        f"[hub test] proxy installed, 4 accounts made and the hub up in {hub.up - hub.started:.1f} s; 4 servers "
        f"spawned in {spawned - hub.up:.1f} s; autograde + feedback of 3 submissions {graded:.1f} s; "
        f"whole test {total:.1f} s"
    )
