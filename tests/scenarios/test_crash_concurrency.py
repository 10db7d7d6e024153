"""Crashes and concurrent runs never leave a broken lockfile.

Real processes (``python3 -m lockman`` with this tree on PYTHONPATH) against the real registry:
- several `lockman update` at once on one project are serialised by the file lock, and the
  result is the complete new lockfile; readers meanwhile never see a partial file;
- `lockman update` SIGKILLed at random moments leaves exactly the old or the new lockfile.
"""

from __future__ import annotations

import json
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


# `python -c` this, then lockman's arguments: lockman, SIGKILLed the moment the first rename of
# a pair write (xcargo.toml, which write_together replaces first) is done.
KILLED_AFTER_CONFIG_RENAME = """
import os, runpy, signal, sys
rename = os.replace
def replace(src, dst, *args, **kwargs):
    rename(src, dst, *args, **kwargs)
    if str(dst).endswith("xcargo.toml"):
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
sys.argv[0] = "lockman"
runpy.run_module("lockman", run_name="__main__", alter_sys=True)
"""


def run_lockman(*args: object, killed: bool = False) -> subprocess.CompletedProcess[str]:
    how = ["-c", KILLED_AFTER_CONFIG_RENAME] if killed else ["-m", "lockman"]
    return subprocess.run(
        [sys.executable, *how, *map(str, args)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def test_repin_killed_between_its_two_renames_is_never_consistent(tmp_path: Path, registry: Registry) -> None:
    """`update --repin` killed after the new xcargo.toml is in place but before xcargo.lock: no
    later run calls the pair consistent. verify and `update --check` fail naming the image, pull
    refuses to fetch what xcargo.toml no longer pins, and `update` finishes the job: the lock
    (and the directory) end up exactly as an uninterrupted run leaves them."""
    repo = unique_repo("repin-kill")
    old = registry.push_image(f"{repo}/pinned", "v1")
    registry.push_image(f"{repo}/loose", "v1")
    body = (
        f'[container]\nimage = "{registry.host}/{repo}/pinned:v1@{old.digest}"\n'
        f'[targets."x86_64-unknown-linux-musl".container]\nimage = "{registry.host}/{repo}/loose:v1"\n'
    )
    proj, twin = tmp_path / "proj", tmp_path / "twin"
    for d in (proj, twin):
        d.mkdir()
        (d / "xcargo.toml").write_text(body)
        assert run_lockman("update", "--config", d / "xcargo.toml").returncode == 0
    cfg, lock = proj / "xcargo.toml", proj / "xcargo.lock"
    old_lock = lock.read_bytes()
    new = registry.push_image(f"{repo}/pinned", "v1", salt="new")
    registry.push_image(f"{repo}/loose", "v1", salt="new")
    r = run_lockman("update", "--repin", "--config", twin / "xcargo.toml")  # uninterrupted
    assert r.returncode == 0, r.stderr

    r = run_lockman("update", "--repin", "--config", cfg, killed=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert cfg.read_bytes() == (twin / "xcargo.toml").read_bytes()  # the new pin ...
    assert lock.read_bytes() == old_lock  # ... beside the old lock
    assert new.digest in cfg.read_text()

    pinned = f"{registry.host}/{repo}/pinned:v1"
    for args in (["verify"], ["verify", "--offline"]):
        r = run_lockman(*args, "--config", cfg, "--format", "json")
        assert r.returncode == 1, (args, r.stderr)
        problems = [(p["kind"], p["image"]) for p in json.loads(r.stdout)["problems"]]
        assert problems == [("pin-mismatch", pinned)], (args, problems)
        assert "run `lockman update` to lock the pinned digest" in r.stderr
    r = run_lockman("update", "--check", "--config", cfg)
    assert r.returncode == 1 and "not up to date" in r.stderr
    r = run_lockman("pull", "--config", cfg, "--oci-layout", tmp_path / "layout")
    assert r.returncode == 1 and f"{pinned}: pinned to {new.digest}" in r.stderr, r.stderr
    assert not (tmp_path / "layout").exists()
    assert lock.read_bytes() == old_lock  # none of these wrote anything

    r = run_lockman("update", "--config", cfg)  # finishes what the killed run started
    assert r.returncode == 0, r.stderr
    assert lock.read_bytes() == (twin / "xcargo.lock").read_bytes()
    assert cfg.read_bytes() == (twin / "xcargo.toml").read_bytes()
    assert sorted(p.name for p in proj.iterdir()) == ["xcargo.lock", "xcargo.toml"]  # no backup left
    assert run_lockman("verify", "--config", cfg).returncode == 0
