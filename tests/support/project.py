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


def images_project(tmp_path: Path, *images: str) -> Path:
    """An xcargo.toml with ``images[0]`` as ``[container].image`` and the rest, in order, as the
    images of the targets aarch64- and x86_64-unknown-linux-musl."""
    body = f'[container]\nimage = "{images[0]}"\n'
    triples = ["aarch64-unknown-linux-musl", "x86_64-unknown-linux-musl"]
    for triple, image in zip(triples, images[1:], strict=False):
        body += f'\n[targets."{triple}".container]\nimage = "{image}"\n'
    return project(tmp_path, body)


def git(cwd: Path, *args: str) -> str:
    """``git args`` in ``cwd`` with a throw-away identity; its stdout; a failure raises."""
    return subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def git_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``git args`` in ``cwd``, for tests that look at a failing git's exit code and stderr."""
    return subprocess.run(["git", *GIT_IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=False)
