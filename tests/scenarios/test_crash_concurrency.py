"""Crashes and concurrent runs never leave a broken lockfile.

Real processes (``python3 -m lockman`` with this tree on PYTHONPATH) against the real registry:
- several `lockman update` at once on one project are serialised by the file lock, and the
  result is the complete new lockfile; readers meanwhile never see a partial file;
- `lockman update` SIGKILLed at random moments leaves exactly the old or the new lockfile.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lockman.model import lockfile
from tests.support.fixtures import unique_repo
from tests.support.paths import ROOT
from tests.support.registry import Registry

pytestmark = pytest.mark.registry


def lockman(*args: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "lockman", *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def finish(p: subprocess.Popen) -> tuple[int, str]:
    _, err = p.communicate(timeout=120)
    return p.returncode, err.decode()


def old_and_new(tmp_path: Path, registry: Registry) -> tuple[Path, bytes, bytes]:
    """A project locked at OLD, whose tags have since moved: a full update writes NEW."""
    base = unique_repo("crash")
    names = ["a", "b", "c"]
    registry.push_index(f"{base}/a", "v1", ["linux/amd64", "linux/arm64"])
    for n in names[1:]:
        registry.push_image(f"{base}/{n}", "v1")
    proj = tmp_path / "proj"
    proj.mkdir()
    cfg = proj / "xcargo.toml"
    cfg.write_text(
        f'[container]\nimage = "{registry.host}/{base}/a:v1"\n'
        f'[targets."aarch64-unknown-linux-gnu".container]\nimage = "{registry.host}/{base}/b:v1"\n'
        f'[targets."x86_64-unknown-linux-musl".container]\nimage = "{registry.host}/{base}/c:v1"\n'
    )
    assert finish(lockman("update", "--config", cfg))[0] == 0
    old = (proj / "xcargo.lock").read_bytes()
    registry.push_index(f"{base}/a", "v1", ["linux/amd64"], salt="new")
    for n in names[1:]:
        registry.push_image(f"{base}/{n}", "v1", salt="new")
    twin = tmp_path / "twin"
    shutil.copytree(proj, twin)
    assert finish(lockman("update", "--config", twin / "xcargo.toml"))[0] == 0
    new = (twin / "xcargo.lock").read_bytes()
    assert new != old and len(lockfile.loads(new.decode()).images) == 3
    return cfg, old, new


def test_concurrent_updates_are_serialised(tmp_path: Path, registry: Registry) -> None:
    cfg, _, new = old_and_new(tmp_path, registry)
    lock = cfg.with_name("xcargo.lock")
    updates = [lockman("update", "--config", cfg) for _ in range(4)]
    readers = 0
    while any(p.poll() is None for p in updates):
        code, err = finish(lockman("verify", "--offline", "--config", cfg))
        assert code in (0, 1), err  # never 2: a reader never meets a partial lockfile
        readers += 1
    results = [finish(p) for p in updates]
    assert all(code == 0 for code, _ in results), results
    assert lock.read_bytes() == new
    assert readers >= 1
    assert not list(cfg.parent.glob(".xcargo.lock.*"))


def test_sigkill_leaves_old_or_new_lockfile(tmp_path: Path, registry: Registry) -> None:
    cfg, old, new = old_and_new(tmp_path, registry)
    lock = cfg.with_name("xcargo.lock")
    lock.write_bytes(old)
    start = time.monotonic()
    assert finish(lockman("update", "--config", cfg))[0] == 0
    full_run = time.monotonic() - start  # to spread the kills over a whole run
    rng = random.Random(8)
    seen = {"old": 0, "new": 0}
    for i in range(16):
        lock.write_bytes(old)
        p = lockman("update", "--config", cfg)
        # Half the kills anywhere in a run, half near its end, where the write happens.
        time.sleep(rng.uniform(0.0, full_run) if i % 2 else rng.uniform(0.6 * full_run, 1.1 * full_run))
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        data = lock.read_bytes()
        assert data in (old, new), data.decode(errors="replace")
        seen["old" if data == old else "new"] += 1
    # A stale temp file from a killed writer is removed by the next run, which completes.
    (cfg.parent / ".xcargo.lock.dead1234.tmp").write_text("partial")
    lock.write_bytes(old)
    code, err = finish(lockman("update", "--config", cfg))
    assert code == 0, err
    assert lock.read_bytes() == new
    assert not list(cfg.parent.glob(".xcargo.lock.*"))
    print(f"kills: {seen}")
