"""deploy/: the files that cannot run on the test machines (Kubernetes, a container build) hold together.

The one-server configuration runs for real in tests/test_hub.py. Here: the Zero to JupyterHub values parse, use
only configuration keys of the chart (the list below was checked against the chart's values schema, see
deploy/README.md), and name folders the image really has; the Dockerfile installs the locked environment with
torch's CPU wheel; the Python snippets compile.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
VALUES = yaml.safe_load((DEPLOY / "z2jh" / "values.yaml").read_text())
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
IMAGE_SRC = "/opt/drl-course/src/"  # where the Dockerfile copies the repository

# Configuration keys of the jupyterhub Helm chart (z2jh.jupyter.org, "Configuration reference") that the values
# use; a key outside this list is either a typo or needs checking against the chart's schema first.
Z2JH_KEYS = {
    "hub",
    "hub.config",
    "hub.extraConfig",
    "singleuser",
    "singleuser.image",
    "singleuser.image.name",
    "singleuser.image.tag",
    "singleuser.defaultUrl",
    "singleuser.cmd",
    "singleuser.fsGid",
    "singleuser.cpu",
    "singleuser.cpu.guarantee",
    "singleuser.cpu.limit",
    "singleuser.memory",
    "singleuser.memory.guarantee",
    "singleuser.memory.limit",
    "singleuser.storage",
    "singleuser.storage.type",
    "singleuser.storage.capacity",
    "singleuser.storage.homeMountPath",
    "singleuser.storage.extraVolumes",
    "singleuser.storage.extraVolumeMounts",
    "singleuser.extraEnv",
    "cull",
    "cull.enabled",
    "cull.timeout",
    "cull.every",
    "scheduling",
    "scheduling.userScheduler",
    "scheduling.userScheduler.enabled",
    "scheduling.podPriority",
    "scheduling.podPriority.enabled",
    "scheduling.userPlaceholder",
    "scheduling.userPlaceholder.enabled",
    "scheduling.userPlaceholder.replicas",
    "prePuller",
    "prePuller.hook",
    "prePuller.hook.enabled",
    "prePuller.continuous",
    "prePuller.continuous.enabled",
}
# Below these the chart passes values through (traitlets config, named snippets, environment variables).
FREE_FORM = ("hub.config.", "hub.extraConfig.", "singleuser.extraEnv.")


def key_paths(tree: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in tree.items():
        path = prefix + key
        out.append(path)
        if isinstance(value, dict) and not (path + ".").startswith(FREE_FORM):
            out += key_paths(value, path + ".")
    return out


def test_values_use_only_keys_of_the_chart():
    unknown = [p for p in key_paths(VALUES) if p not in Z2JH_KEYS and not p.startswith(FREE_FORM)]
    assert not unknown, f"not configuration keys of the jupyterhub chart: {unknown}"


def test_values_extra_config_compiles_and_sets_roles_as_the_one_server_hub_does():
    for name, source in VALUES["hub"]["extraConfig"].items():
        compile(source, name, "exec")
    snippet = "".join(VALUES["hub"]["extraConfig"].values())
    assert "pre_spawn_hook" in snippet and "JUPYTER_CONFIG_PATH" in snippet
    admins = set(VALUES["hub"]["config"]["Authenticator"]["admin_users"])
    assert admins <= set(VALUES["hub"]["config"]["Authenticator"]["allowed_users"])


def test_every_folder_the_image_settings_name_exists_in_the_repository():
    snippet = "".join(VALUES["hub"]["extraConfig"].values())
    image_env = re.search(r"JUPYTER_CONFIG_PATH=(\S+)", DOCKERFILE).group(1)
    paths = re.findall(re.escape(IMAGE_SRC) + r"[\w./-]+", snippet + " " + image_env.replace(":", " "))
    assert len(paths) >= 3
    for path in paths:
        assert (REPO / path[len(IMAGE_SRC) :]).is_dir(), f"{path} is not a folder of the repository"
    assert VALUES["singleuser"]["extraEnv"]["COURSE_EXCHANGE"] in {
        m["mountPath"] for m in VALUES["singleuser"]["storage"]["extraVolumeMounts"]
    }


def test_dockerfile_installs_the_lock_with_torchs_cpu_wheel_and_the_course_kernel():
    assert "--constraint /opt/drl-course/src/requirements/constraints.txt" in DOCKERFILE
    assert "download.pytorch.org/whl/cpu" in DOCKERFILE
    pinned = re.search(r"^torch==(\S+)$", (REPO / "requirements" / "constraints.txt").read_text(), re.M).group(1)
    assert f"startswith('{pinned}')" in DOCKERFILE, "the image checks the torch version the lock pins"
    assert "--name drl-course" in DOCKERFILE and "bubblewrap" in DOCKERFILE
    assert re.search(r"^FROM python:3\.1[0-9]", DOCKERFILE, re.M)


def test_hub_configuration_files_compile():
    for path in (DEPLOY / "jupyterhub_config.py", DEPLOY / "jupyter" / "common" / "nbgrader_config.py"):
        compile(path.read_text(), str(path), "exec")
