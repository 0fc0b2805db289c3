# JupyterHub for this course on one server (classes up to about a hundred): each person logs in with their
# Unix account (PAM), gets a JupyterLab of their own started as that user (LocalProcessSpawner) with the
# course's environment and kernel "Python 3 (DRL course)", and nbgrader's exchange in COURSE_EXCHANGE:
# instructors release and collect from formgrader, students fetch, submit and fetch feedback from the
# Assignments panel. See deploy/README.md; deploy/setup.sh installs everything this file expects.
#
#   jupyterhub -f /opt/drl-course/src/deploy/jupyterhub_config.py      (setup.sh's systemd unit does this)
#
# Settings come from the environment (setup.sh writes them to /etc/drl-course/hub.env):
#   COURSE_VENV          the course's virtual environment, readable by every user   (/opt/drl-course/venv)
#   COURSE_SRC           the course repository the environment was installed from   (/opt/drl-course/src)
#   COURSE_ID            nbgrader's course id                                        (drl-course)
#   COURSE_EXCHANGE      nbgrader's exchange folder (mode 1777)                      (/srv/nbgrader/exchange)
#   COURSE_INSTRUCTORS   comma-separated Unix user names with formgrader             (none)
#   COURSE_STUDENTS      comma-separated Unix user names allowed to log in           (none: every instructor only)
#   COURSE_INSTRUCTOR_FOLDER  each instructor's copy of the course, relative to their home (drl-course)
#   COURSE_HUB_IP, COURSE_HUB_PORT  where the proxy listens                          (0.0.0.0, 8000)
#   COURSE_PROXY         the configurable-http-proxy executable (deploy/install-proxy.sh) (on PATH)
import os
import shlex
import shutil
import sys

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file


def _names(variable: str) -> set[str]:
    return {name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()}


HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.environ.get("COURSE_VENV", "/opt/drl-course/venv")
SRC = os.environ.get("COURSE_SRC", os.path.dirname(HERE))
COURSE_ID = os.environ.get("COURSE_ID", "drl-course")
EXCHANGE = os.environ.get("COURSE_EXCHANGE", "/srv/nbgrader/exchange")
INSTRUCTORS = _names("COURSE_INSTRUCTORS")
STUDENTS = _names("COURSE_STUDENTS")
INSTRUCTOR_FOLDER = os.environ.get("COURSE_INSTRUCTOR_FOLDER", "drl-course")

# --- the hub and its proxy ---------------------------------------------------------------------------------
c.JupyterHub.ip = os.environ.get("COURSE_HUB_IP", "0.0.0.0")
c.JupyterHub.port = int(os.environ.get("COURSE_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
proxy = os.environ.get("COURSE_PROXY") or shutil.which("configurable-http-proxy")
if proxy:
    c.ConfigurableHTTPProxy.command = [proxy]
# Behind TLS in production: put nginx or Caddy in front, or set c.JupyterHub.ssl_cert / ssl_key here.

# --- who may log in: Unix accounts (PAM), instructors as hub admins ------------------------------------------
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = INSTRUCTORS | STUDENTS
c.Authenticator.admin_users = INSTRUCTORS

# --- each user's JupyterLab: the course's environment, as that Unix user -----------------------------------
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [os.path.join(VENV, "bin", "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
# A class of ~100 on one server: about 1 GB of memory and one core per active student while they train.
c.Spawner.mem_limit = os.environ.get("COURSE_MEM_LIMIT", "2G")  # enforced by spawners that can (advisory here)
c.JupyterHub.concurrent_spawn_limit = 20
c.JupyterHub.active_server_limit = 150

# Jupyter configuration, by role (see deploy/README.md): the course's common lab settings, the exchange's
# nbgrader settings, and for students the panels they must not have (formgrader, course list, create assignment).
_COMMON = [os.path.join(SRC, ".jupyter", "common"), os.path.join(HERE, "jupyter", "common")]
_STUDENT = [os.path.join(HERE, "jupyter", "student"), *_COMMON]


def _config_path(spawner) -> str:
    return os.pathsep.join(_COMMON if spawner.user.name in INSTRUCTORS else _STUDENT)


c.Spawner.environment = {
    "JUPYTER_CONFIG_PATH": _config_path,
    "COURSE_ID": COURSE_ID,
    "COURSE_EXCHANGE": EXCHANGE,
    "PATH": os.pathsep.join([os.path.join(VENV, "bin"), "/usr/local/bin", "/usr/bin", "/bin"]),
    "COURSE_FAST": "0",  # students run the notebooks in full mode
}


def _pre_spawn(spawner) -> None:
    """Instructors open their copy of the course, and their server runs in it: formgrader reads the course's
    nbgrader_config.py from the server's working folder (the spawner would start it in the home folder)."""
    if spawner.user.name in INSTRUCTORS:
        spawner.notebook_dir = os.path.join("~", INSTRUCTOR_FOLDER)
        folder = f'"$HOME"/{shlex.quote(INSTRUCTOR_FOLDER)}'
        spawner.cmd = ["/bin/sh", "-c", f'cd {folder} && exec "$0" "$@"', *c.Spawner.cmd]


c.Spawner.pre_spawn_hook = _pre_spawn

if sys.platform != "linux":
    raise SystemExit("this configuration is for a Linux server (Unix accounts, LocalProcessSpawner)")
