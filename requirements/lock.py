#!/usr/bin/env python3
"""Regenerate requirements/constraints.txt: the exact versions every student installs.

    python3 requirements/lock.py

Installs the course (with its test and bench extras) into a throw-away virtual environment
from pyproject.toml alone, then records ``pip freeze``. Run it after changing
the dependencies in pyproject.toml, commit the result, and run the tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "requirements" / "constraints.txt"
HEADER = """\
# Exact versions for every package the course installs, made by requirements/lock.py
# from pyproject.toml. Both README commands install with --constraint this file.
# torch is pinned without a local build tag (+cpu) so the same line works on every platform.
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        python = venv / "bin" / "python"
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--editable", f"{ROOT}[test,bench]"], check=True)
        frozen = subprocess.run(
            [python, "-m", "pip", "freeze", "--all", "--exclude-editable"], check=True, capture_output=True, text=True
        ).stdout
    pins = sorted(
        (
            re.sub(r"\+[\w.]+$", "", line.strip())
            for line in frozen.splitlines()
            if "==" in line and not line.startswith("pip==")
        ),
        key=str.lower,
    )
    OUT.write_text(HEADER + "\n".join(pins) + "\n")
    print(f"wrote {len(pins)} pins to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
