"""``verify --deep``: every config and layer blob of every locked platform, streamed and hashed.

Nothing is written to disk; memory stays at one network chunk per blob in flight. Each blob is
checked once per repository however many images or platforms share it, and at most a few
blobs stream at a time so a large image does not open hundreds of connections.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from lockman.console import short
from lockman.errors import LockmanError
from lockman.images.graph import locked_content, walk
from lockman.model.lockfile import LockedImage
from lockman.model.manifest import Descriptor
from lockman.model.reference import Reference
from lockman.registry.blobs import BLOB_CONCURRENCY, hash_blob
from lockman.registry.client import RegistryClient


@dataclass
class DeepVerifier:
    client: RegistryClient
    limit: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(BLOB_CONCURRENCY))
    tasks: dict[tuple[str, str], asyncio.Task[None]] = field(default_factory=dict)
    bytes_hashed: int = 0

    async def _hash(self, ref: Reference, desc: Descriptor, what: str) -> None:
        async with self.limit:
            with locked_content():
                await hash_blob(self.client, ref, desc, what=what)
        self.bytes_hashed += desc.size

    async def check(self, use_ref: Reference, entry: LockedImage) -> list[LockmanError]:
        """Problems with ``entry``'s blobs (an empty list when every byte checks out)."""
        ref = use_ref.with_digest(entry.digest)
        only = frozenset(p.digest for p in entry.platforms) if entry.platforms else None
        try:
            graph = await walk(self.client, ref, entry.digest, what=entry.display, only=only)
        except LockmanError as e:
            return [e]
        waits = []
        for digest, (role, desc) in graph.blobs.items():
            key = (ref.name, digest)
            task = self.tasks.get(key)
            if task is None:
                what = f"{entry.display} ({role} {short(digest)})"
                task = asyncio.ensure_future(self._hash(ref, desc, what))
                self.tasks[key] = task
            waits.append(task)
        results = await asyncio.gather(*waits, return_exceptions=True)
        errors: list[LockmanError] = []
        for r in results:
            if isinstance(r, LockmanError):
                if r not in errors:
                    errors.append(r)
            elif isinstance(r, BaseException):
                raise r
        return errors

    @property
    def blobs(self) -> int:
        return len(self.tasks)
