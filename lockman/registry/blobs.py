"""Blob transfers with every byte hashed as it arrives, in bounded memory.

Three ways to consume a blob, all over :meth:`RegistryClient.stream_blob`:

- :func:`hash_blob`: stream and hash, keep nothing (``verify --deep``);
- :func:`download_blob`: stream into a partial file, rename it to its final name only when size
  and digest match; resume an interrupted download with an HTTP Range request after hashing the
  prefix already on disk again (nothing on disk is trusted);
- :func:`read_blob`: small blobs (image configs) into memory, with a hard size cap.

A blob in flight takes at most two 1 MiB batches of memory (see :class:`_Sink`), whatever its
size; hashing and writing happen in a worker thread while the event loop receives more.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from dataclasses import dataclass
from typing import BinaryIO

import httpx

from lockman.errors import DigestMismatch, RegistryError, SizeMismatch, TooLarge, VerificationError
from lockman.fileio import SafeDir, UnsafePath, start_writeback
from lockman.model.digest import Digest
from lockman.model.manifest import Descriptor
from lockman.model.reference import Reference
from lockman.registry.client import NETWORK_ERRORS, RangeNotSatisfiable, RegistryClient

READ_CHUNK = 1 << 20
ATTEMPTS = 3  # an interrupted body is resumed this many times within one run
# Blobs streamed at once by one run (pull, verify --deep), each on its own HTTP/1.1 connection:
# enough to overlap one blob's round trips with another's bytes, few enough that a large image
# does not open dozens of connections (benchmarks/pull.py measured 8 no faster than 4).
BLOB_CONCURRENCY = 4


class _Hasher:
    """Hash and count bytes against a descriptor; refuse more bytes than it declares."""

    def __init__(self, desc: Descriptor, what: str) -> None:
        self.desc, self.what = desc, what
        self.algorithm = Digest.parse(desc.digest).algorithm
        self.h = hashlib.new(self.algorithm)
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.desc.size:
            raise SizeMismatch(
                f"blob larger than its descriptor says ({self.desc.size} bytes): expected {self.desc.digest}",
                subject=self.what,
            )
        self.h.update(chunk)

    @property
    def digest(self) -> str:
        return f"{self.algorithm}:{self.h.hexdigest()}"

    def check(self) -> None:
        if self.size != self.desc.size:
            raise SizeMismatch(
                f"blob is {self.size} bytes, its descriptor says {self.desc.size}: "
                f"expected {self.desc.digest}",
                subject=self.what,
            )
        if self.digest != self.desc.digest:
            raise DigestMismatch(
                f"digest mismatch: expected {self.desc.digest}, got {self.digest}", subject=self.what
            )


class _Sink:
    """Hash (and write) a blob's chunks in a worker thread while the event loop receives more.

    hashlib and file writes release the GIL, so on two cores the bytes of one blob are hashed
    while the next ones are decrypted. Chunks go over in batches of about ``BATCH`` bytes, one
    batch in the worker at a time: a blob in flight holds at most two batches in memory.
    :meth:`drain` returns once everything received is hashed (and written), so after an
    interruption the hasher and the partial file agree on how many bytes there are.
    """

    BATCH = 1 << 20

    def __init__(self, hasher: _Hasher, file: BinaryIO | None = None) -> None:
        self.hasher, self.file = hasher, file
        self._batch: list[bytes] = []
        self._batched = 0
        self.received = 0  # every byte handed over, hashed yet or not
        self._work: asyncio.Future[None] | None = None

    async def add(self, chunk: bytes) -> None:
        self.received += len(chunk)
        self._batch.append(chunk)
        self._batched += len(chunk)
        if self._batched >= self.BATCH:
            await self._hand_over()

    async def _hand_over(self) -> None:
        if self._work is not None:
            work, self._work = self._work, None
            await work
        if self._batch:
            batch, self._batch, self._batched = self._batch, [], 0
            self._work = asyncio.get_running_loop().run_in_executor(None, self._consume, batch)

    def _consume(self, batch: list[bytes]) -> None:
        for chunk in batch:
            self.hasher.update(chunk)  # VerificationError past the declared size
            if self.file is not None:
                self.file.write(chunk)
        if self.file is not None:  # to disk while the rest arrives: the fsync at the end is short
            self.file.flush()
            start_writeback(self.file.fileno())

    async def drain(self) -> None:
        await self._hand_over()
        if self._work is not None:
            work, self._work = self._work, None
            await work

    async def settle(self) -> None:
        """After a failure: let the worker finish with the file before it is closed."""
        if self._work is not None:
            work, self._work = self._work, None
            with contextlib.suppress(Exception):
                await work


def _interrupted(what: str, have: int, total: int, e: Exception, *, resumable: bool = True) -> RegistryError:
    """The download broke off; only a download to a file keeps what arrived for a next run."""
    detail = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    why = f"download interrupted after {have} of {total} bytes ({detail})"
    return RegistryError(f"{why}; run the command again to resume" if resumable else why, subject=what)


async def hash_blob(client: RegistryClient, ref: Reference, desc: Descriptor, *, what: str) -> None:
    """Stream a blob and check size and digest; nothing touches the disk."""
    last: RegistryError | None = None
    for _ in range(ATTEMPTS):
        hasher = _Hasher(desc, what)
        sink = _Sink(hasher)
        try:
            async with client.stream_blob(ref, desc.digest, size=desc.size) as response:
                async for chunk in response.aiter_raw():
                    await sink.add(chunk)
            await sink.drain()
        except NETWORK_ERRORS as e:
            last = _interrupted(what, sink.received, desc.size, e, resumable=False)
            continue
        finally:
            await sink.settle()
        hasher.check()
        return
    assert last is not None
    raise last


async def read_blob(
    client: RegistryClient, ref: Reference, desc: Descriptor, *, what: str, limit: int = 4 << 20
) -> bytes:
    """A small blob, verified, in memory; refused when its descriptor says more than ``limit``."""
    if desc.size > limit:
        raise TooLarge(f"blob of {desc.size} bytes exceeds the {limit}-byte limit", subject=what)
    hasher = _Hasher(desc, what)
    chunks: list[bytes] = []
    try:
        async with client.stream_blob(ref, desc.digest, size=desc.size) as response:
            async for chunk in response.aiter_raw():
                hasher.update(chunk)
                chunks.append(chunk)
    except NETWORK_ERRORS as e:
        raise _interrupted(what, hasher.size, desc.size, e, resumable=False) from None
    hasher.check()
    return b"".join(chunks)


def _flush_and_sync(f: BinaryIO) -> None:
    f.flush()
    os.fsync(f.fileno())


@dataclass(frozen=True)
class BlobFiles:
    """Where a download streams (``partial`` in ``partial_dir``) and its name once verified."""

    partial_dir: SafeDir
    partial: str
    final_dir: SafeDir
    final: str


def _hash_prefix(directory: SafeDir, name: str, hasher: _Hasher) -> None:
    with directory.open_read(name) as f:  # not through a link, and never blocking on a FIFO
        while chunk := f.read(READ_CHUNK):
            hasher.update(chunk)


def file_matches(directory: SafeDir, name: str, desc: Descriptor) -> bool:
    """Whether ``name`` holds exactly the blob ``desc`` names (size first, then a full hash)."""
    try:
        if directory.plain_file_size(name) != desc.size:
            return False
        hasher = _Hasher(desc, str(directory.at(name)))
        _hash_prefix(directory, name, hasher)
    except (OSError, VerificationError, UnsafePath):  # swapped for a link or FIFO meanwhile: absent
        return False
    return hasher.digest == desc.digest


async def download_blob(
    client: RegistryClient,
    ref: Reference,
    desc: Descriptor,
    files: BlobFiles,
    *,
    what: str,
) -> int:
    """Download ``desc`` to ``files.final`` via ``files.partial``; return the bytes fetched.

    ``final`` appears (atomically, by rename) only with the right size and digest. A partial
    file left by an interrupted run is resumed with ``Range`` after its prefix is hashed again;
    if the whole then fails to verify, the prefix is blamed once and the blob fetched afresh.
    On a digest mismatch the partial file is deleted, so nothing unverified stays behind.
    """
    pdir, partial = files.partial_dir, files.partial
    last: RegistryError | None = None
    fetched = 0
    fresh_retry_left = True
    attempts = 0
    while attempts < ATTEMPTS:
        attempts += 1
        hasher = _Hasher(desc, what)
        try:
            if pdir.lexists(partial):
                await asyncio.to_thread(_hash_prefix, pdir, partial, hasher)  # the loop keeps receiving
        except (VerificationError, UnsafePath):
            pdir.unlink(partial)  # longer than the blob, or a planted link or FIFO: not a prefix
            hasher = _Hasher(desc, what)
        resumed_from = hasher.size
        try:
            if hasher.size < desc.size:
                # size: the whole blob, as a registry may ignore the Range and send it all
                async with client.stream_blob(
                    ref, desc.digest, offset=hasher.size, size=desc.size
                ) as response:
                    if hasher.size and not _resumes_at(response, hasher.size):
                        hasher = _Hasher(desc, what)  # the registry sent the whole blob
                        resumed_from = 0
                    with pdir.open_write(partial, append=hasher.size > 0) as f:
                        sink = _Sink(hasher, f)
                        try:
                            async for chunk in response.aiter_raw():
                                await sink.add(chunk)
                                fetched += len(chunk)
                            await sink.drain()
                        except NETWORK_ERRORS:
                            await sink.drain()  # keep what arrived: the next attempt resumes after it
                            raise
                        finally:
                            await sink.settle()
                        await asyncio.to_thread(_flush_and_sync, f)
        except RangeNotSatisfiable:
            pdir.unlink(partial)
            continue
        except NETWORK_ERRORS as e:
            last = _interrupted(what, hasher.size, desc.size, e)
            continue
        except VerificationError:
            pdir.unlink(partial)
            raise
        try:
            hasher.check()
        except VerificationError:
            pdir.unlink(partial)
            if resumed_from and fresh_retry_left:
                fresh_retry_left = False  # the old prefix may be what was wrong
                attempts -= 1
                continue
            raise
        if not pdir.lexists(partial):
            pdir.open_write(partial, append=False).close()  # an empty blob never opened the file
        # Renames the file itself, directory to directory (both held open); a link at the final
        # name is replaced, never followed.
        pdir.replace(partial, files.final_dir, files.final)
        files.final_dir.fsync()
        return fetched
    assert last is not None
    raise last


def _resumes_at(response: httpx.Response, offset: int) -> bool:
    """A 206 whose Content-Range starts where the partial file ends."""
    if response.status_code != 206:
        return False
    content_range = response.headers.get("content-range", "")
    return content_range.startswith(f"bytes {offset}-")
