"""A content-addressed cache of verified manifests (and small blobs) in the user's cache directory.

Safe to share and to leave lying around because nothing in it is trusted: an entry is a file
named by its digest, and every read hashes the bytes again; an entry that does not hash to its
name (a corrupted disk, a meddling user) is deleted and treated as a miss. Writes are atomic
(temp file + rename), so concurrent lockman runs never see half an entry.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from lockman import env
from lockman.fileio import UnsafePath, open_read, write_atomic
from lockman.model.manifest import MAX_MANIFEST_BYTES, compute_digest
from lockman.model.reference import is_digest


def default_cache_dir() -> Path:
    """``$LOCKMAN_CACHE_DIR``, else the platform's user cache directory (XDG on Linux)."""
    configured: Path | None = env.get("LOCKMAN_CACHE_DIR")
    if configured is not None:
        return configured
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("lockman"))


class ManifestCache:
    """Manifest bytes by digest under ``<root>/manifests/<alg>/<hex>``."""

    SUBDIR = "manifests"
    LIMIT = MAX_MANIFEST_BYTES

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_cache_dir()) / self.SUBDIR
        self.hits = 0
        self.misses = 0

    def _path(self, digest: str) -> Path:
        alg, _, hex_ = digest.partition(":")
        return self.root / alg / hex_

    def get(self, digest: str) -> bytes | None:
        """The cached bytes for ``digest``, re-hashed; None on a miss or a bad entry."""
        if not is_digest(digest):
            return None
        path = self._path(digest)
        try:
            with open_read(path) as f:  # a planted link or FIFO is a miss, not a hang
                data = f.read(self.LIMIT + 1)
        except UnsafePath:
            with contextlib.suppress(OSError):
                path.unlink()
            self.misses += 1
            return None
        except OSError:
            self.misses += 1
            return None
        if len(data) > self.LIMIT or compute_digest(data, digest.partition(":")[0]) != digest:
            with contextlib.suppress(OSError):
                path.unlink()
            self.misses += 1
            return None
        self.hits += 1
        return data

    def put(self, digest: str, data: bytes) -> None:
        """Store bytes already verified against ``digest``; a cache that cannot write is no error."""
        if len(data) > self.LIMIT or not is_digest(digest):
            return
        if compute_digest(data, digest.partition(":")[0]) != digest:
            return
        path = self._path(digest)
        if path.exists():
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data, durable=False)
        except OSError:
            pass


class BlobCache(ManifestCache):
    """Small blobs (image configs, SBOM documents) by digest under ``<root>/blobs/<alg>/<hex>``.

    A blob never changes under its digest, so a hit needs no request at all.
    """

    SUBDIR = "blobs"
    LIMIT = 16 * 1024 * 1024
