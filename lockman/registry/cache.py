"""A content-addressed cache of verified manifests (and small blobs) in the user's cache directory.

Safe to share and to leave lying around because nothing in it is trusted: an entry is a file
named by its digest, and every read hashes the bytes again; an entry that does not hash to its
name (a corrupted disk, a meddling user) is deleted and treated as a miss. Writes are atomic
(temp file + rename), so concurrent lockman runs never see half an entry. Below the cache
directory nothing is followed (:class:`lockman.fileio.SafeDir`): a link planted at an entry or
at ``manifests/<alg>/`` is a miss and is never written through.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from lockman import env
from lockman.fileio import SafeDir, UnsafePath
from lockman.model.digest import Digest
from lockman.model.manifest import MAX_MANIFEST_BYTES
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

    def __init__(self, root: Path | None = None, *, read: bool = True) -> None:
        """``read=False``: filled, never consulted. A hit proves only that the registry once served
        these bytes; ``verify`` claims it serves them now, so it must hash what it is served."""
        self.read = read
        self.base = root or default_cache_dir()
        self.root = self.base / self.SUBDIR
        self.hits = 0
        self.misses = 0

    @contextlib.contextmanager
    def _directory(self, alg: str, *, create: bool) -> Iterator[SafeDir]:
        """``<root>/<alg>`` held open for one operation; a link on the way raises UnsafePath."""
        if create:
            self.base.mkdir(parents=True, exist_ok=True)
        with (
            SafeDir.open(self.base) as top,
            top.subdir(self.SUBDIR, create=create) as sub,
            sub.subdir(alg, create=create) as d,
        ):
            yield d

    def get(self, digest: str) -> bytes | None:
        """The cached bytes for ``digest``, re-hashed; None on a miss or a bad entry."""
        data: bytes | None = None
        if self.read and is_digest(digest):
            dg = Digest.parse(digest)
            alg, hex_ = dg.algorithm, dg.hex
            try:
                with self._directory(alg, create=False) as d:
                    try:
                        with d.open_read(hex_) as f:  # a planted link or FIFO is a miss, not a hang
                            data = f.read(self.LIMIT + 1)
                    except UnsafePath:
                        d.unlink(hex_)
                        raise
                    if len(data) > self.LIMIT or not dg.verify(data):
                        d.unlink(hex_)
                        data = None
            except (OSError, UnsafePath):
                data = None
        if data is None:
            self.misses += 1
        else:
            self.hits += 1
        return data

    def put(self, digest: str, data: bytes) -> None:
        """Store bytes already verified against ``digest``; a cache that cannot write is no error."""
        if len(data) > self.LIMIT or not is_digest(digest):
            return
        dg = Digest.parse(digest)
        alg, hex_ = dg.algorithm, dg.hex
        if not dg.verify(data):
            return
        with contextlib.suppress(OSError, UnsafePath), self._directory(alg, create=True) as d:
            if not d.lexists(hex_):
                d.write_atomic(hex_, data, durable=False)


class BlobCache(ManifestCache):
    """Small blobs (image configs, SBOM documents) by digest under ``<root>/blobs/<alg>/<hex>``.

    A blob never changes under its digest, so a hit needs no request at all.
    """

    SUBDIR = "blobs"
    LIMIT = 16 * 1024 * 1024
