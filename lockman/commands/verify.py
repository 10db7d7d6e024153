"""`lockman verify`: the lock agrees with the config, and the registry serves exactly it.

Offline, only consistency: every image the config uses has an entry, pins agree, nothing stale.
Online, also: every locked digest (and each locked platform digest) is fetched by digest and its
bytes hashed; an index must still list the locked platforms.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from lockman import lockfile
from lockman.commands._common import worst
from lockman.console import err, out
from lockman.errors import EXIT_OK, EXIT_VERIFY, LockmanError, VerificationError
from lockman.locker import platforms_of, wanted_images
from lockman.lockfile import LockedImage, Lockfile
from lockman.manifest import check_descriptor
from lockman.reference import Reference
from lockman.registry.client import NotFound, RegistryClient
from lockman.xcargo import XcargoConfig, load_config


@dataclass(frozen=True)
class Problem:
    kind: str  # missing | stale | pin-mismatch | no-lockfile | not-served | digest-mismatch | ...
    image: str
    message: str
    exit_code: int = EXIT_VERIFY


def consistency(config: XcargoConfig, lock: Lockfile | None) -> list[Problem]:
    lock_path = config.lockfile_path
    if lock is None:
        return [Problem("no-lockfile", "", f"{lock_path}: no lockfile; run `lockman update`")]
    problems = []
    entries = lock.by_key()
    wanted = wanted_images(config.images, config.path)
    for w in wanted:
        e = entries.get(w.key)
        display = f"{w.use.name}:{w.use.tag}" if w.use.tag else w.use.name
        if e is None:
            problems.append(
                Problem(
                    "missing",
                    display,
                    f"{display}: used by {config.path} "
                    f"({w.use.key}) but not in {lock_path.name}; run `lockman update`",
                )
            )
        elif w.use.ref.digest is not None and e.digest != w.use.ref.digest:
            problems.append(
                Problem(
                    "pin-mismatch",
                    display,
                    f"{display}: pinned to "
                    f"{w.use.ref.digest} in {config.path} ({w.use.key}) but "
                    f"locked to {e.digest}",
                )
            )
    used = {w.key for w in wanted}
    for key, e in entries.items():
        if key not in used:
            problems.append(
                Problem(
                    "stale",
                    e.display,
                    f"{e.display}: in {lock_path.name} but no "
                    f"longer used by {config.path}; run `lockman update`",
                )
            )
    return problems


async def _check_online(client: RegistryClient, use_ref: Reference, entry: LockedImage) -> list[Problem]:
    display = entry.display
    ref = use_ref.with_digest(entry.digest)
    try:
        manifest = await client.get_manifest(ref)
    except NotFound:
        return [
            Problem(
                "not-served",
                display,
                f"{display}: locked digest {entry.digest} is not served by {use_ref.registry}",
            )
        ]
    except LockmanError as e:
        kind = "digest-mismatch" if isinstance(e, VerificationError) else "registry"
        message = str(e) if use_ref.familiar() in str(e) else f"{display}: {e}"
        return [Problem(kind, display, message, e.exit_code)]
    problems = []
    if entry.platforms:
        served = set(platforms_of(manifest))
        listed = {d.digest: d for d in manifest.manifests}
        for p in entry.platforms:
            if p not in served:
                problems.append(
                    Problem(
                        "platform-mismatch",
                        display,
                        f"{display}: locked platform "
                        f"{p.platform} {p.digest} is not in the index {entry.digest}",
                    )
                )
        results = await asyncio.gather(
            *(client.get_manifest(use_ref.with_digest(p.digest)) for p in entry.platforms),
            return_exceptions=True,
        )
        for p, r in zip(entry.platforms, results, strict=True):
            if isinstance(r, NotFound):
                problems.append(
                    Problem(
                        "not-served",
                        display,
                        f"{display}: locked platform {p.platform} digest {p.digest} is not served",
                    )
                )
            elif isinstance(r, LockmanError):
                kind = "digest-mismatch" if isinstance(r, VerificationError) else "registry"
                problems.append(Problem(kind, display, f"{display} ({p.platform}): {r}", r.exit_code))
            elif isinstance(r, BaseException):
                raise r
            elif p.digest in listed:
                try:
                    check_descriptor(listed[p.digest], r, what=f"{display} ({p.platform})")
                except VerificationError as e:
                    problems.append(Problem("media-type-mismatch", display, str(e)))
    return problems


async def run(config_path: Path, *, offline: bool, timeout: float) -> int:
    config = load_config(config_path)
    lock = lockfile.read(config.lockfile_path)
    problems = consistency(config, lock)
    checked = 0
    if not offline and lock is not None:
        entries = lock.by_key()
        targets = [
            (w.use.ref, entries[w.key]) for w in wanted_images(config.images, config.path) if w.key in entries
        ]
        async with RegistryClient(timeout=timeout) as client:
            with contextlib.suppress(LockmanError):  # it resurfaces per image, named
                await client.prefetch_tokens([r for r, _ in targets])
            results = await asyncio.gather(*(_check_online(client, r, e) for r, e in targets))
        for r in results:
            problems.extend(r)
        checked = len(targets)
    for p in problems:
        err(f"error: {p.message}")
    if problems:
        return worst(p.exit_code for p in problems)
    mode = (
        "offline: lock matches config" if offline else f"{checked} images verified against their registries"
    )
    out(f"{config.lockfile_path}: ok ({mode})")
    return EXIT_OK
