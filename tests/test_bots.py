"""What bots do to an xcargo project, against a real docker-registry.

A Renovate branch leaves one image pinned for one target and bare for another, runs
``lockman update NAME`` for the one image it bumped, and (if someone points a regex manager at
it) edits digests in ``xcargo.lock`` without the details lockman recorded with them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lockman.model import lockfile
from tests.conftest import unique_repo
from tests.registry import Registry

AARCH64 = 'targets."aarch64-unknown-linux-gnu".container.image'


def write(tmp_path: Path, body: str) -> Path:
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(body)
    return cfg


def entries(tmp_path: Path) -> dict[tuple[str, str], lockfile.LockedImage]:
    return lockfile.loads((tmp_path / "xcargo.lock").read_text()).by_key()


@pytest.mark.registry
def test_one_image_pinned_for_one_target_and_bare_for_another(tmp_path: Path, registry: Registry, run) -> None:
    name = f"{registry.host}/{unique_repo('split')}/rust"
    x = registry.push_index(name.split("/", 1)[1], "1.71", ["linux/amd64", "linux/arm64"], salt="x")
    cfg = write(
        tmp_path,
        f'[container]\nimage = "{name}:1.71@{x.digest}"\n\n'
        f'[targets."aarch64-unknown-linux-gnu".container]\nimage = "{name}:1.71"\n',
    )
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    lock = entries(tmp_path)
    assert list(lock) == [(name, "1.71")]
    assert lock[(name, "1.71")].digest == x.digest and lock[(name, "1.71")].pinned
    assert run("verify", "--config", cfg).code == 0
    assert run("verify", "--offline", "--config", cfg).code == 0

    # The tag moves: the bare use would now pull another image than the pinned one.
    y = registry.push_index(name.split("/", 1)[1], "1.71", ["linux/amd64", "linux/arm64"], salt="y")
    before = (tmp_path / "xcargo.lock").read_bytes()
    for args in (("update",), ("update", "--check")):
        r = run(*args, "--config", cfg)
        assert r.code == 2, r.err
        assert r.err.count("\n") == 1
        assert f"pinned to {x.digest} at container.image" in r.err
        assert f"but {AARCH64} use the tag, which now points at {y.digest}" in r.err
        assert "lockman update --repin" in r.err
    assert (tmp_path / "xcargo.lock").read_bytes() == before

    r = run("update", "--repin", "--config", cfg)
    assert r.code == 0, r.err
    assert f'image = "{name}:1.71@{y.digest}"' in cfg.read_text()
    assert f'image = "{name}:1.71"\n' in cfg.read_text()  # the bare use stays bare
    assert entries(tmp_path)[(name, "1.71")].digest == y.digest
    assert run("verify", "--config", cfg).code == 0


@pytest.mark.registry
def test_two_different_pins_name_each_key(tmp_path: Path, registry: Registry, run) -> None:
    repo = unique_repo("twopins")
    a = registry.push_image(repo, "v1", salt="a")
    b = registry.push_image(repo, None, salt="b")
    cfg = write(
        tmp_path,
        f'[container]\nimage = "{registry.host}/{repo}:v1@{a.digest}"\n\n'
        f'[targets."aarch64-unknown-linux-gnu".container]\nimage = "{registry.host}/{repo}:v1@{b.digest}"\n',
    )
    r = run("update", "--config", cfg)
    assert r.code == 2 and r.err.count("\n") == 1
    assert f"container.image = {a.digest}" in r.err and f"{AARCH64} = {b.digest}" in r.err
    assert not (tmp_path / "xcargo.lock").exists()


@pytest.mark.registry
def test_update_of_one_image_after_a_tag_bump_touches_only_that_image(
    tmp_path: Path, registry: Registry, run
) -> None:
    base = unique_repo("branch")
    registry.push_image(f"{base}/rust", "1.70", salt="70")
    new = registry.push_image(f"{base}/rust", "1.71", salt="71")
    cross = registry.push_image(f"{base}/cross", "0.2", salt="c1")
    rust, tool = f"{registry.host}/{base}/rust", f"{registry.host}/{base}/cross"
    body = f'[container]\nimage = "{rust}:1.70"\n\n[targets."aarch64-unknown-linux-gnu".container]\nimage = "{tool}:0.2"\n'
    cfg = write(tmp_path, body)
    assert run("update", "--config", cfg).code == 0
    registry.push_image(f"{base}/cross", "0.2", salt="c2")  # another branch's business

    cfg.write_text(body.replace(":1.70", ":1.71"))  # what the bot's branch changed
    r = run("update", "--config", cfg, rust)
    assert r.code == 0, r.err
    lock = entries(tmp_path)
    assert sorted(lock) == [(tool, "0.2"), (rust, "1.71")]  # the old tag's entry is gone
    assert lock[(rust, "1.71")].digest == new.digest
    assert lock[(tool, "0.2")].digest == cross.digest  # not moved by this branch
    assert run("verify", "--offline", "--config", cfg).code == 0
