"""Credential stores as docker and its credential helpers lay them out, for auth tests."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path


def docker_config(home: Path, data: dict) -> Path:
    """``data`` as ``<home>/.docker/config.json``."""
    d = home / ".docker"
    d.mkdir(exist_ok=True)
    path = d / "config.json"
    path.write_text(json.dumps(data))
    return path


def b64(user: str, password: str) -> str:
    """An ``auths`` entry's ``auth`` value."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def helper_script(bin_dir: Path, name: str, body: str) -> Path:
    """A ``docker-credential-<name>`` on PATH: a Python script with ``server`` = stdin."""
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        "assert sys.argv[1:] == ['get'], sys.argv\n"
        "server = sys.stdin.read().strip()\n"
        f"{body}\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path
