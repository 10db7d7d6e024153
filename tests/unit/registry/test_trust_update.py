"""Trusted-root refresh over TUF, against a real TUF repository served on loopback."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
    # offline now uses the cached copy, silently
    off = fetch_trusted_root(url, cache_dir=tmp_path / "cache", offline=True)
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
