"""A project on disk for the CLI to work on: its xcargo.toml, and git for the tests that commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

GIT_IDENTITY = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]


def project(tmp_path: Path, body: str) -> Path:
    """``tmp_path/xcargo.toml`` holding ``body``."""
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(body)
    return cfg


def image_project(tmp_path: Path, ref: str) -> Path:
    """An xcargo.toml whose ``[container].image`` is ``ref``."""
    return project(tmp_path, f'[container]\nimage = "{ref}"\n')


def git(cwd: Path, *args: str) -> str:
    """``git args`` in ``cwd`` with a throw-away identity; its stdout; a failure raises."""
    return subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def git_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``git args`` in ``cwd``, for tests that look at a failing git's exit code and stderr."""
    return subprocess.run(["git", *GIT_IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=False)
