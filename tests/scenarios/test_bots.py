"""What bots do to an xcargo project, against a real docker-registry.

A Renovate branch leaves one image pinned for one target and bare for another, runs
``lockman update NAME`` for the one image it bumped, and (if someone points a regex manager at
it) edits digests in ``xcargo.lock`` without the details lockman recorded with them; the
``details-from`` key tells such an entry apart without a request, even on a cold cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockman.model import lockfile
from tests.support.docs_schema import conforms, documented_json
from tests.support.fixtures import unique_repo
from tests.support.registry import Registry

AARCH64 = 'targets."aarch64-unknown-linux-gnu".container.image'


def write(tmp_path: Path, body: str) -> Path:
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(body)
    return cfg


def entries(tmp_path: Path) -> dict[tuple[str, str], lockfile.LockedImage]:
    return lockfile.loads((tmp_path / "xcargo.lock").read_text()).by_key()


@pytest.mark.registry
def test_one_image_pinned_for_one_target_and_bare_for_another(
    tmp_path: Path, registry: Registry, run
) -> None:
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

    # The tag moves (a Renovate branch pinned one use and left the other bare), and so does
    # another image in the file: the scheduled update refreshes that one, leaves the split pin
    # where the branch put it and says so, in its notice and in the JSON report.
    other = f"{registry.host}/{unique_repo('split')}/tool"
    registry.push_image(other.split("/", 1)[1], "1", salt="t1")
    cfg.write_text(cfg.read_text() + f'\n[targets."armv7-unknown-linux-gnueabihf".container]\nimage = "{other}:1"\n')
    assert run("update", "--config", cfg).code == 0
    before = (tmp_path / "xcargo.lock").read_bytes()
    y = registry.push_index(name.split("/", 1)[1], "1.71", ["linux/amd64", "linux/arm64"], salt="y")
    for args in (("update", "--check"), ("update", "--dry-run")):
        r = run(*args, "--config", cfg)
        assert r.code == 0, r.err  # pre-commit on a Renovate branch: not drift, not bad input
        assert f"is pinned to {x.digest[:19]}" in r.err and AARCH64 in r.err and "--repin" in r.err
    t2 = registry.push_image(other.split("/", 1)[1], "1", salt="t2")
    r = run("update", "--check", "--config", cfg)
    assert r.code == 1, r.err  # the other image's drift still counts
    r = run("update", "--format", "json", "--config", cfg)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    conforms(doc, documented_json("update"))
    assert [(u["name"], u["new_digest"]) for u in doc["updates"]] == [(other, t2.digest)]
    assert doc["kept_pins"] == [
        {
            "name": name,
            "tag": "1.71",
            "key": "container.image",
            "pinned_digest": x.digest,
            "tag_digest": y.digest,
            "unpinned_keys": [AARCH64],
        }
    ]
    assert r.err.count("notice:") == 1 and f"and used bare at {AARCH64}" in r.err
    lock = entries(tmp_path)
    assert lock[(name, "1.71")].digest == x.digest and lock[(other, "1")].digest == t2.digest
    assert (tmp_path / "xcargo.lock").read_bytes() != before
    assert run("verify", "--config", cfg).code == 0

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
    r = run("update", "--format", "json", "--config", cfg, f"{rust}:1.71")
    assert r.code == 0, r.err
    (bump,) = json.loads(r.out)["updates"]  # one bump, inspected, not a removal and an addition
    assert (bump["old_tag"], bump["tag"], bump["new_digest"]) == ("1.70", "1.71", new.digest)
    assert bump["insight"] is not None
    lock = entries(tmp_path)
    assert sorted(lock) == [(tool, "0.2"), (rust, "1.71")]  # the old tag's entry is gone
    assert lock[(rust, "1.71")].digest == new.digest
    assert lock[(tool, "0.2")].digest == cross.digest  # not moved by this branch
    assert run("verify", "--offline", "--config", cfg).code == 0


def renovate_edit(tmp_path: Path, old: str, new: str) -> None:
    """What a regex manager on xcargo.lock does: replace the ``digest = "…"`` line, nothing else."""
    path = tmp_path / "xcargo.lock"
    text = path.read_text()
    assert f'\ndigest = "{old}"\n' in text
    path.write_text(text.replace(f'\ndigest = "{old}"\n', f'\ndigest = "{new}"\n'))


def _platform_pinned(tmp_path: Path, registry: Registry, run, prefix: str) -> tuple:
    """A two-platform index locked with ``update --platform linux/amd64``: (repo, name, index,
    config path, the linux/amd64 digest)."""
    repo = unique_repo(prefix)
    name = f"{registry.host}/{repo}"
    one = registry.push_index(repo, "1.70", ["linux/amd64", "linux/arm64"], salt="1")
    cfg = write(tmp_path, f'[container]\nimage = "{name}:1.70"\n')
    assert run("update", "--platform", "linux/amd64", "--config", cfg).code == 0
    amd64 = one.children["linux/amd64"].digest
    return repo, name, one, cfg, amd64


@pytest.mark.registry
def test_platform_pin_holding_an_index_digest_fails_verify_and_is_rebuilt(
    tmp_path: Path, registry: Registry, run
) -> None:
    repo, name, one, cfg, amd64 = _platform_pinned(tmp_path, registry, run, "platpin")
    assert entries(tmp_path)[(name, "1.70")].digest == amd64

    # Another platform's manifest recorded as linux/amd64: served, hashes right, still wrong.
    renovate_edit(tmp_path, amd64, one.children["linux/arm64"].digest)
    r = run("verify", "--config", cfg)
    assert r.code == 1
    assert f"index {one.digest} lists {amd64} for linux/amd64, not the locked" in r.err
    renovate_edit(tmp_path, one.children["linux/arm64"].digest, amd64)
    assert run("verify", "--config", cfg).code == 0

    # The tag moves and the bot writes the tag's new digest (an index) into `digest`.
    two = registry.push_index(repo, "1.70", ["linux/amd64", "linux/arm64"], salt="2")
    renovate_edit(tmp_path, amd64, two.digest)
    for deep in ((), ("--deep",)):
        r = run("verify", *deep, "--config", cfg)
        assert r.code == 1, r.err
        assert (
            f"platform pin {two.digest} is a multi-platform index, not a linux/amd64 image manifest" in r.err
        )
    assert run("update", "--check", "--config", cfg).code == 1
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    entry = entries(tmp_path)[(name, "1.70")]
    assert (entry.digest, entry.index_digest) == (two.children["linux/amd64"].digest, two.digest)
    assert run("verify", "--config", cfg).code == 0


@pytest.mark.registry
def test_tag_pin_whose_digest_was_edited_is_rebuilt(tmp_path: Path, registry: Registry, run) -> None:
    repo = unique_repo("edited")
    name = f"{registry.host}/{repo}"
    registry.push_index(repo, "1.70", ["linux/amd64", "linux/arm64"], salt="1")
    cfg = write(tmp_path, f'[container]\nimage = "{name}:1.70"\n')
    assert run("update", "--config", cfg).code == 0
    old = entries(tmp_path)[(name, "1.70")]

    # Same kind (an index): only the manifest tells the platforms are stale. verify fetches it
    # (and keeps it in the manifest cache), so the next update sees the mismatch and rebuilds.
    two = registry.push_index(repo, "1.70", ["linux/amd64", "linux/arm64"], salt="2")
    renovate_edit(tmp_path, old.digest, two.digest)
    r = run("verify", "--config", cfg)
    assert r.code == 1 and "is not in the index" in r.err
    assert run("update", "--config", cfg).code == 0
    assert {p.digest for p in entries(tmp_path)[(name, "1.70")].platforms} == {
        c.digest for c in two.children.values()
    }
    assert run("verify", "--config", cfg).code == 0

    # Another kind: the tag now names a single-platform image; the HEAD alone says so.
    single = registry.push_image(repo, "1.70", salt="3")
    renovate_edit(tmp_path, two.digest, single.digest)
    assert run("update", "--config", cfg).code == 0
    entry = entries(tmp_path)[(name, "1.70")]
    assert entry.platforms == () and entry.media_type == single.media_type
    assert run("verify", "--config", cfg).code == 0


def requests_since(registry: Registry, mark: int) -> list[str]:
    return registry.access_log_lines()[mark:]


@pytest.mark.registry
def test_edited_multi_platform_digest_is_rebuilt_on_a_cold_cache(
    tmp_path: Path, registry: Registry, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = unique_repo("bound")
    name = f"{registry.host}/{repo}"
    one = registry.push_index(repo, "1.70", ["linux/amd64", "linux/arm64"], salt="1")
    cfg = write(tmp_path, f'[container]\nimage = "{name}:1.70"\n')
    assert run("update", "--config", cfg).code == 0
    assert f'details-from = "{one.digest}"' in (tmp_path / "xcargo.lock").read_text()

    # The tag moves; a regex manager writes the new index's digest and nothing else.
    two = registry.push_index(repo, "1.70", ["linux/amd64", "linux/arm64"], salt="2")
    renovate_edit(tmp_path, one.digest, two.digest)
    edited = (tmp_path / "xcargo.lock").read_bytes()
    r = run("verify", "--offline", "--format", "json", "--config", cfg)
    assert r.code == 1, r.err
    kinds = [p["kind"] for p in json.loads(r.out)["problems"]]
    assert kinds == ["edited-outside-lockman"]
    assert f"{name}:1.70: digest {two.digest} in xcargo.lock was edited outside lockman" in r.err
    assert "run `lockman update`" in r.err
    assert run("verify", "--config", cfg).code == 1  # online too (it also fills the cache...)
    assert run("update", "--check", "--config", cfg).code == 1
    assert (tmp_path / "xcargo.lock").read_bytes() == edited

    # ... so the bot's update runs in a fresh container: nothing cached, the tag's HEAD returns
    # the very digest the lock now records. details-from alone tells the entry is stale.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "fresh-cache"))
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert r.err.count("edited outside lockman") == 1 and f"{name}:1.70" in r.err
    entry = entries(tmp_path)[(name, "1.70")]
    assert entry.digest == entry.details_from == two.digest
    assert {p.digest for p in entry.platforms} == {c.digest for c in two.children.values()}
    assert run("verify", "--config", cfg).code == 0

    # The binding costs nothing: a no-op update is one ping and one HEAD, no GET.
    before = (tmp_path / "xcargo.lock").read_bytes()
    mark = len(registry.access_log_lines())
    r = run("update", "--config", cfg)
    assert r.code == 0 and "edited outside" not in r.err, r.err
    lines = requests_since(registry, mark)
    assert sum('"HEAD /v2/' in ln for ln in lines) == 1
    assert [ln for ln in lines if '"HEAD /v2/' not in ln] == [ln for ln in lines if '"GET /v2/ ' in ln]
    assert (tmp_path / "xcargo.lock").read_bytes() == before


@pytest.mark.registry
def test_edited_pin_and_lock_digest_together_are_rebuilt(tmp_path: Path, registry: Registry, run) -> None:
    """A regex manager bumping a pin in xcargo.toml and the digest in xcargo.lock in one go."""
    repo = unique_repo("boundpin")
    name = f"{registry.host}/{repo}"
    one = registry.push_index(repo, "1.70", ["linux/amd64", "linux/arm64"], salt="1")
    cfg = write(tmp_path, f'[container]\nimage = "{name}:1.70@{one.digest}"\n')
    assert run("update", "--config", cfg).code == 0
    two = registry.push_index(repo, "1.70", ["linux/amd64", "linux/arm64"], salt="2")
    cfg.write_text(cfg.read_text().replace(one.digest, two.digest))
    renovate_edit(tmp_path, one.digest, two.digest)
    r = run("verify", "--offline", "--config", cfg)
    assert r.code == 1 and "edited outside lockman" in r.err, r.err
    r = run("update", "--config", cfg)
    assert r.code == 0 and "edited outside lockman" in r.err, r.err
    entry = entries(tmp_path)[(name, "1.70")]
    assert entry.pinned and entry.details_from == two.digest
    assert {p.digest for p in entry.platforms} == {c.digest for c in two.children.values()}
    assert run("verify", "--config", cfg).code == 0


@pytest.mark.registry
def test_lock_from_an_older_lockman_works_and_gains_the_key_when_rebuilt(
    tmp_path: Path, registry: Registry, run
) -> None:
    repo = unique_repo("oldlock")
    name = f"{registry.host}/{repo}"
    registry.push_index(repo, "1.70", ["linux/amd64", "linux/arm64"], salt="1")
    cfg = write(tmp_path, f'[container]\nimage = "{name}:1.70"\n')
    assert run("update", "--config", cfg).code == 0
    lock = tmp_path / "xcargo.lock"
    old = "".join(ln for ln in lock.read_text().splitlines(keepends=True) if not ln.startswith("details-from"))
    assert "details-from" not in old
    lock.write_text(old)
    assert run("verify", "--config", cfg).code == 0
    mark = len(registry.access_log_lines())
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert lock.read_text() == old  # byte-identical: a no-change update adds nothing
    assert not any('"GET /v2/' in ln and "/manifests/" in ln for ln in requests_since(registry, mark))

    two = registry.push_index(repo, "1.70", ["linux/amd64", "linux/arm64"], salt="2")
    assert run("update", "--config", cfg).code == 0  # the tag moved: the entry is rewritten
    assert f'details-from = "{two.digest}"' in lock.read_text()


@pytest.mark.registry
def test_platform_pin_records_the_manifest_its_details_describe(
    tmp_path: Path, registry: Registry, run
) -> None:
    _repo, name, one, cfg, amd64 = _platform_pinned(tmp_path, registry, run, "boundplat")
    assert entries(tmp_path)[(name, "1.70")].details_from == amd64
    renovate_edit(tmp_path, amd64, one.digest)  # the tag's digest (the index) written into `digest`
    r = run("verify", "--offline", "--config", cfg)
    assert r.code == 1 and "edited outside lockman" in r.err, r.err
    r = run("update", "--config", cfg)
    assert r.code == 0 and "edited outside lockman" in r.err, r.err
    entry = entries(tmp_path)[(name, "1.70")]
    assert (entry.digest, entry.index_digest, entry.platform) == (amd64, one.digest, "linux/amd64")
    assert run("verify", "--config", cfg).code == 0


@pytest.mark.registry
def test_verify_report_moved_names_each_moved_tag_without_failing(
    tmp_path: Path, registry: Registry, run
) -> None:
    """Renovate never proposes a moved bare tag; ``verify --report-moved`` lets CI learn it."""
    base = unique_repo("moved")
    a = registry.push_index(f"{base}/a", "1", ["linux/amd64", "linux/arm64"], salt="a1")
    registry.push_image(f"{base}/b", "1", salt="b1")
    pin = registry.push_image(f"{base}/c", "1", salt="c1")
    a_name, b_name, c_name = (f"{registry.host}/{base}/{x}" for x in "abc")
    cfg = write(
        tmp_path,
        f'[container]\nimage = "{a_name}:1"\n\n'
        f'[targets."aarch64-unknown-linux-gnu".container]\nimage = "{b_name}:1"\n\n'
        f'[targets."armv7-unknown-linux-gnueabihf".container]\nimage = "{c_name}:1@{pin.digest}"\n',
    )
    assert run("update", "--config", cfg).code == 0
    r = run("verify", "--report-moved", "--format", "json", "--config", cfg)
    assert r.code == 0 and json.loads(r.out)["moved"] == [] and "warning" not in r.err, r.err

    a2 = registry.push_index(f"{base}/a", "1", ["linux/amd64", "linux/arm64"], salt="a2")
    registry.push_image(f"{base}/c", "1", salt="c2")  # a pin: Renovate's business, not reported
    mark = len(registry.access_log_lines())
    r = run("verify", "--report-moved", "--format", "json", "--config", cfg)
    assert r.code == 0, r.err  # news, not a failure
    assert json.loads(r.out)["moved"] == [
        {"name": a_name, "tag": "1", "locked_digest": a.digest, "tag_digest": a2.digest}
    ]
    (warning,) = [ln for ln in r.err.splitlines() if ln.startswith("warning:")]
    assert f"{a_name}:1: the tag moved to {a2.digest[:19]}" in warning
    assert f"`lockman update {a_name}:1`" in warning
    heads = [ln for ln in requests_since(registry, mark) if '"HEAD /v2/' in ln]
    assert sorted(ln.split("/manifests/")[1].split()[0] for ln in heads) == ["1", "1"]  # a and b, once
    assert not any(f"/{base}/c/" in ln for ln in heads)

    # Without the flag verify asks no tag, and says nothing about it.
    mark = len(registry.access_log_lines())
    r = run("verify", "--format", "json", "--config", cfg)
    assert r.code == 0 and "moved" not in json.loads(r.out) and "warning" not in r.err
    assert not any('"HEAD /v2/' in ln for ln in requests_since(registry, mark))
    # The text form: the same warning on stderr, verify's usual summary.
    r = run("verify", "--report-moved", "--config", cfg)
    assert r.code == 0 and r.err.count("warning:") == 1 and "the tag moved" in r.err
