#!/usr/bin/env bash
# One server for a class (up to about a hundred): JupyterHub with Unix accounts, the course's environment and
# kernel, nbgrader's exchange. Run as root on Debian or Ubuntu, from a clone of the course repository:
#
#   sudo deploy/setup.sh --instructors teacher --students alice,bob,chen      (or --students-file names.txt)
#
# It installs Python's venv module, bubblewrap, Node.js and npm with apt-get; copies the course to
# $COURSE_PREFIX/src (default /opt/drl-course) and installs it, locked, into $COURSE_PREFIX/venv; installs
# configurable-http-proxy from npm into $COURSE_PREFIX/proxy; makes the exchange (/srv/nbgrader/exchange,
# mode 1777); creates missing Unix accounts (set their passwords with `passwd NAME`); gives each instructor a
# copy of the course in ~/drl-course; writes /etc/drl-course/hub.env and, where systemd runs, starts the
# service drl-course-hub (JupyterHub on port 8000: put TLS in front of it, see deploy/README.md).
# Running it again updates the installation and adds new accounts; it removes nothing.
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX="${COURSE_PREFIX:-/opt/drl-course}"
EXCHANGE="${COURSE_EXCHANGE:-/srv/nbgrader/exchange}"
COURSE_ID="${COURSE_ID:-drl-course}"
INSTRUCTORS="" STUDENTS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --instructors) INSTRUCTORS="$2"; shift 2 ;;
        --students) STUDENTS="$2"; shift 2 ;;
        --students-file) STUDENTS="$(grep -v '^\s*#' "$2" | tr -s ' \n\t' ',' | sed 's/^,//; s/,$//')"; shift 2 ;;
        *) echo "unknown argument $1 (see the comment at the top of $0)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "run as root (sudo $0 ...)" >&2; exit 1; }
[ -n "$INSTRUCTORS" ] || { echo "name at least one instructor: --instructors NAME[,NAME...]" >&2; exit 2; }

echo "== system packages"
apt-get update -q
apt-get install -y -q python3 python3-venv bubblewrap nodejs npm git rsync

echo "== the course in $PREFIX (readable by every user: their servers and kernels run from it)"
mkdir -p "$PREFIX"
rsync -a --delete --exclude .venv --exclude instructor --exclude '.git' "$SRC/" "$PREFIX/src/"
[ -x "$PREFIX/venv/bin/python" ] || python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install -q --constraint "$PREFIX/src/requirements/constraints.txt" --editable "$PREFIX/src[test]"
"$PREFIX/venv/bin/python" -m ipykernel install --prefix "$PREFIX/venv" --name drl-course \
    --display-name "Python 3 (DRL course)"
PROXY="$("$SRC/deploy/install-proxy.sh" "$PREFIX/proxy")"
chmod -R a+rX "$PREFIX"
"$PREFIX/venv/bin/python" -m course_grader setup-sandbox

echo "== nbgrader's exchange in $EXCHANGE"
mkdir -p "$EXCHANGE"
chmod 1777 "$EXCHANGE"

echo "== accounts"
for name in ${INSTRUCTORS//,/ } ${STUDENTS//,/ }; do
    id -u "$name" >/dev/null 2>&1 || { useradd --create-home --shell /bin/bash "$name"; echo "created $name: set a password with passwd $name"; }
done
for name in ${INSTRUCTORS//,/ }; do
    home="$(getent passwd "$name" | cut -d: -f6)"
    if [ ! -d "$home/drl-course" ]; then
        rsync -a --exclude .venv --exclude .git "$SRC/" "$home/drl-course/"
        mkdir -p "$home/drl-course/instructor"
        chown -R "$name:" "$home/drl-course"
        echo "$name's course folder: $home/drl-course (grade there: $PREFIX/venv/bin/python -m course_grader ...)"
    fi
done

echo "== the hub"
mkdir -p /etc/drl-course /var/lib/drl-course-hub
cat > /etc/drl-course/hub.env <<ENV
COURSE_VENV=$PREFIX/venv
COURSE_SRC=$PREFIX/src
COURSE_ID=$COURSE_ID
COURSE_EXCHANGE=$EXCHANGE
COURSE_INSTRUCTORS=$INSTRUCTORS
COURSE_STUDENTS=$STUDENTS
COURSE_PROXY=$PROXY
ENV
cat > /etc/systemd/system/drl-course-hub.service <<UNIT
[Unit]
Description=JupyterHub for the DRL course
After=network.target

[Service]
EnvironmentFile=/etc/drl-course/hub.env
WorkingDirectory=/var/lib/drl-course-hub
ExecStart=$PREFIX/venv/bin/jupyterhub -f $PREFIX/src/deploy/jupyterhub_config.py
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now drl-course-hub
    systemctl restart drl-course-hub
    echo "JupyterHub runs: http://$(hostname -f):8000 (journalctl -u drl-course-hub for its log)"
else
    echo "no systemd here: start the hub with"
    echo "  set -a; . /etc/drl-course/hub.env; set +a; cd /var/lib/drl-course-hub && $PREFIX/venv/bin/jupyterhub -f $PREFIX/src/deploy/jupyterhub_config.py"
fi
