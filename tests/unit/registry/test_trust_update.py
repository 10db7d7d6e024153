"""Trusted-root refresh over TUF, against a real TUF repository served on loopback."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from lockman.registry.trust_update import fetch_trusted_root
from tests.support.tuf_repo import TufRepo, serve


def _root_doc(tag: str) -> bytes:
    return json.dumps({"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tag": tag}).encode()


@pytest.fixture
def repo(tmp_path: Path) -> TufRepo:
    r = TufRepo(tmp_path / "repo")
    r.add_target("trusted_root.json", _root_doc("v1"))
    return r


def test_fetch_verifies_and_caches(repo: TufRepo, tmp_path: Path) -> None:
    with serve(repo.dir) as url:
        got = fetch_trusted_root(url, cache_dir=tmp_path / "cache", bootstrap_root=repo.root_bytes())
    assert got.warning is None
    assert got.data == _root_doc("v1")
    assert "TUF, verified" in got.source
    # offline now uses the cached copy TUF verifies again from the same starting root, silently
    off = fetch_trusted_root(url, cache_dir=tmp_path / "cache", bootstrap_root=repo.root_bytes(), offline=True)
    assert off.data == _root_doc("v1") and off.warning is None and "cached" in off.source


def test_root_key_rotation_is_followed(repo: TufRepo, tmp_path: Path) -> None:
    first = repo.root_bytes()
    repo.rotate_root_key()
    repo.add_target("trusted_root.json", _root_doc("v2"))
    with serve(repo.dir) as url:
        got = fetch_trusted_root(url, cache_dir=tmp_path / "cache", bootstrap_root=first)
    assert got.warning is None
    assert got.data == _root_doc("v2")


def test_expired_metadata_refused_falls_back_to_cache(repo: TufRepo, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with serve(repo.dir) as url:
        assert fetch_trusted_root(url, cache_dir=cache, bootstrap_root=repo.root_bytes()).data == _root_doc("v1")
        repo.targets.signed.targets.clear()
        repo.add_target("trusted_root.json", _root_doc("evil"))
        repo.publish_top(expires=datetime.now(UTC) - timedelta(days=1))
        got = fetch_trusted_root(url, cache_dir=cache, bootstrap_root=repo.root_bytes())
    assert got.data == _root_doc("v1")
    assert got.warning is not None and "expired metadata refused" in got.warning
    assert "day" in got.warning  # says the age of what it uses instead


def test_rollback_refused(repo: TufRepo, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with serve(repo.dir) as url:
        repo.publish_top()
        assert fetch_trusted_root(url, cache_dir=cache, bootstrap_root=repo.root_bytes()).warning is None
        repo.rollback_timestamp()
        got = fetch_trusted_root(url, cache_dir=cache, bootstrap_root=repo.root_bytes())
    assert got.warning is not None and "rollback refused" in got.warning
    assert got.data == _root_doc("v1")


def test_unreachable_uses_shipped_root_with_one_warning(tmp_path: Path) -> None:
    got = fetch_trusted_root(
        "http://127.0.0.1:9", cache_dir=tmp_path / "cache", bootstrap_root=b"{}", embedded_date="2025-10-21"
    )
    assert got.data is None
    assert got.warning is not None and got.warning.count("\n") == 0
    assert "shipped trusted root (2025-10-21)" in got.warning


# -- a cache someone else can write (a CI cache restored from another job, a shared LOCKMAN_CACHE_DIR)


def _cache_of(cache: Path, url: str) -> Path:
    return cache / quote(url, safe="")


def _primed(repo: TufRepo, cache: Path) -> str:
    """A cache holding a verified copy of v1; returns the (now unreachable) repository URL."""
    with serve(repo.dir) as url:
        assert fetch_trusted_root(url, cache_dir=cache, bootstrap_root=repo.root_bytes()).data == _root_doc("v1")
    return url


@pytest.mark.parametrize("offline", [False, True])
def test_planted_root_with_metadata_made_a_file_is_not_used(repo: TufRepo, tmp_path: Path, offline: bool) -> None:
    """The attacker swaps the cached target and makes ``metadata/`` a file to force the fallback."""
    cache = tmp_path / "cache"
    url = _primed(repo, cache)
    base = _cache_of(cache, url)
    (base / "targets" / "trusted_root.json").write_bytes(_root_doc("evil"))
    shutil.rmtree(base / "metadata")
    (base / "metadata").write_text("not a directory")
    got = fetch_trusted_root(url, cache_dir=cache, bootstrap_root=repo.root_bytes(), offline=offline)
    assert got.data is None and got.source.startswith("shipped trusted root")
    assert got.warning is not None and "nothing verifiable is cached" in got.warning


@pytest.mark.parametrize("offline", [False, True])
def test_planted_root_next_to_good_metadata_fails_its_signed_hash(repo: TufRepo, tmp_path: Path, offline: bool) -> None:
    cache = tmp_path / "cache"
    url = _primed(repo, cache)  # server down from here on
    (_cache_of(cache, url) / "targets" / "trusted_root.json").write_bytes(_root_doc("evil"))
    got = fetch_trusted_root(url, cache_dir=cache, bootstrap_root=repo.root_bytes(), offline=offline)
    assert got.data is None
    assert got.warning is not None and "LengthOrHashMismatchError" in got.warning


def test_planted_metadata_signed_by_other_keys_is_refused(repo: TufRepo, tmp_path: Path) -> None:
    """A whole planted repository (metadata and target, consistently signed by the attacker's own
    keys, root v2 included) does not chain to the starting root: the shipped root is used."""
    cache = tmp_path / "cache"
    url = _primed(repo, cache)
    evil = TufRepo(tmp_path / "evil")
    evil.root.signed.version = 2
    evil.publish_root()
    evil.add_target("trusted_root.json", _root_doc("evil"))
    base = _cache_of(cache, url)
    for role in ("timestamp", "snapshot", "targets"):
        shutil.copy(evil.dir / f"{role}.json", base / "metadata" / f"{role}.json")
    shutil.copy(evil.dir / "2.root.json", base / "metadata" / "root_history" / "2.root.json")
    shutil.copy(evil.dir / "targets" / "trusted_root.json", base / "targets" / "trusted_root.json")
    got = fetch_trusted_root(url, cache_dir=cache, bootstrap_root=repo.root_bytes())
    assert got.data is None
    assert got.warning is not None and "does not verify" in got.warning


def test_planted_root_without_any_metadata_is_not_used_offline(repo: TufRepo, tmp_path: Path) -> None:
    base = _cache_of(tmp_path / "cache", "http://127.0.0.1:9")
    (base / "targets").mkdir(parents=True)
    (base / "targets" / "trusted_root.json").write_bytes(_root_doc("evil"))
    got = fetch_trusted_root(
        "http://127.0.0.1:9", cache_dir=tmp_path / "cache", bootstrap_root=repo.root_bytes(), offline=True
    )
    assert got.data is None and got.warning is not None and "nothing verifiable is cached" in got.warning
