"""lockman.registry.cache: nothing in the cache is trusted. Every read hashes again; a tampered
entry is deleted and is a miss; a FIFO is a miss, not a hang; only verified bytes go in. (Links
at an entry or a directory: tests/unit/test_fileio.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lockman.errors import InputError
from lockman.model.manifest import compute_digest, sha256_digest
from lockman.registry.cache import BlobCache, ManifestCache, default_cache_dir
from tests.support.fifo import within_seconds

DATA = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}'
DIGEST = sha256_digest(DATA)


def entry(root: Path, digest: str = DIGEST, subdir: str = "manifests") -> Path:
    alg, _, hex_ = digest.partition(":")
    return root / subdir / alg / hex_


def test_put_then_get_is_a_hit_and_the_counters_say_so(tmp_path: Path) -> None:
    cache = ManifestCache(tmp_path)
    assert cache.get(DIGEST) is None
    cache.put(DIGEST, DATA)
    assert entry(tmp_path).read_bytes() == DATA
    assert cache.get(DIGEST) == DATA
    assert (cache.hits, cache.misses) == (1, 1)


def test_other_algorithms_are_kept_under_their_own_directory(tmp_path: Path) -> None:
    cache = ManifestCache(tmp_path)
    digest = compute_digest(DATA, "sha512")
    cache.put(digest, DATA)
    assert entry(tmp_path, digest).is_file() and cache.get(digest) == DATA


def test_tampered_entry_is_deleted_and_a_miss(tmp_path: Path) -> None:
    cache = ManifestCache(tmp_path)
    cache.put(DIGEST, DATA)
    entry(tmp_path).write_bytes(DATA.replace(b"2", b"1"))  # a meddling user, a bad disk
    assert cache.get(DIGEST) is None
    assert not entry(tmp_path).exists() and (cache.hits, cache.misses) == (0, 1)
    cache.put(DIGEST, DATA)  # the next verified fetch fills it again
    assert cache.get(DIGEST) == DATA


def test_truncated_entry_is_deleted_and_a_miss(tmp_path: Path) -> None:
    cache = ManifestCache(tmp_path)
    cache.put(DIGEST, DATA)
    entry(tmp_path).write_bytes(DATA[:10])
    assert cache.get(DIGEST) is None and not entry(tmp_path).exists()


def test_fifo_at_an_entry_is_a_miss_not_a_hang(tmp_path: Path) -> None:
    cache = ManifestCache(tmp_path)
    cache.put(sha256_digest(b"other"), b"other")  # makes the directories
    os.mkfifo(entry(tmp_path))
    assert within_seconds(lambda: cache.get(DIGEST), entry(tmp_path)) is None
    assert not entry(tmp_path).exists()  # removed, so the next put can fill it
    cache.put(DIGEST, DATA)
    assert cache.get(DIGEST) == DATA


def test_directory_at_an_entry_is_a_miss(tmp_path: Path) -> None:
    cache = ManifestCache(tmp_path)
    entry(tmp_path).mkdir(parents=True)
    assert cache.get(DIGEST) is None and cache.misses == 1


def test_put_refuses_bytes_that_are_not_the_digest(tmp_path: Path) -> None:
    cache = ManifestCache(tmp_path)
    cache.put(DIGEST, b"something else")
    assert not entry(tmp_path).exists() and cache.get(DIGEST) is None


@pytest.mark.parametrize("digest", ["sha256:short", "not-a-digest", "md5:" + "0" * 32, "sha256:../../x"])
def test_malformed_digests_are_neither_stored_nor_looked_up(tmp_path: Path, digest: str) -> None:
    cache = ManifestCache(tmp_path)
    cache.put(digest, DATA)
    assert cache.get(digest) is None
    assert not (tmp_path / "manifests").exists()


def test_an_existing_entry_is_not_rewritten(tmp_path: Path) -> None:
    cache = ManifestCache(tmp_path)
    cache.put(DIGEST, DATA)
    before = entry(tmp_path).stat().st_ino
    cache.put(DIGEST, DATA)
    assert entry(tmp_path).stat().st_ino == before


def test_read_false_fills_but_never_answers(tmp_path: Path) -> None:
    cache = ManifestCache(tmp_path, read=False)
    cache.put(DIGEST, DATA)
    assert entry(tmp_path).read_bytes() == DATA
    assert cache.get(DIGEST) is None and cache.misses == 1
    assert ManifestCache(tmp_path).get(DIGEST) == DATA


def test_missing_cache_directory_is_a_miss_and_is_not_created_by_a_read(tmp_path: Path) -> None:
    cache = ManifestCache(tmp_path / "absent")
    assert cache.get(DIGEST) is None and not (tmp_path / "absent").exists()


def test_a_cache_that_cannot_be_written_is_no_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    cache = ManifestCache(tmp_path / "file")  # a file where the directory should be
    cache.put(DIGEST, DATA)
    assert cache.get(DIGEST) is None


def test_manifest_limit_applies_on_the_way_in_and_out(tmp_path: Path) -> None:
    big = b" " * (ManifestCache.LIMIT + 1)
    cache = ManifestCache(tmp_path)
    cache.put(sha256_digest(big), big)
    assert not entry(tmp_path, sha256_digest(big)).exists()


def test_blob_cache_is_separate_and_takes_larger_entries(tmp_path: Path) -> None:
    big = b"b" * (ManifestCache.LIMIT + 1)
    blobs, manifests = BlobCache(tmp_path), ManifestCache(tmp_path)
    blobs.put(sha256_digest(big), big)
    assert entry(tmp_path, sha256_digest(big), "blobs").is_file()
    assert blobs.get(sha256_digest(big)) == big
    assert manifests.get(sha256_digest(big)) is None  # a blob is not a manifest


def test_default_cache_dir_honours_lockman_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKMAN_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    assert ManifestCache().root == tmp_path / "c" / "manifests"
    (tmp_path / "file").write_bytes(b"")
    monkeypatch.setenv("LOCKMAN_CACHE_DIR", str(tmp_path / "file"))
    with pytest.raises(InputError, match="LOCKMAN_CACHE_DIR"):
        default_cache_dir()


def test_default_cache_dir_is_the_users_cache_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOCKMAN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "lockman"
