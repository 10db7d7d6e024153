"""Turning the images a config uses into lock entries, and comparing locks.

Sits between the pure model (xcargo config, lockfile) and the registry client. An image whose
tag still points at the locked digest costs one HEAD and no GET: the previous entry (with its
platform list) is kept as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, replace
from typing import TypeVar

from lockman.errors import InputError, LockmanError, VerificationError, about
from lockman.model.lockfile import LockedImage, LockedPlatform, Lockfile
from lockman.model.manifest import INDEX_TYPES, Descriptor, Manifest, check_descriptor
from lockman.model.reference import Reference
from lockman.model.xcargo import ImageUse
from lockman.registry.client import NotFound, RegistryClient

T = TypeVar("T")


@dataclass(frozen=True)
class Wanted:
    """One lock entry to produce: a (name, tag) pair and every place that uses it."""

    use: ImageUse
    sources: tuple[str, ...]
    # Keys of uses that name the same name:tag without the pin ``use`` carries (a Renovate
    # branch leaves one use pinned and one not): they agree only while the tag is at the pin.
    unpinned_keys: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.use.name, self.use.tag)

    @property
    def source(self) -> str:
        return "; ".join(self.sources)


@dataclass(frozen=True)
class Outcome:
    wanted: Wanted
    entry: LockedImage | None = None
    error: LockmanError | None = None
    tag_moved_to: str | None = None  # for pinned images whose tag now points elsewhere

    @property
    def split_pin(self) -> bool:
        """A pinned and an unpinned use of one name:tag that no longer agree: what a bot's
        branch leaves (it bumped the pin at one key). Both stay locked at the pin; the branch,
        or ``update --repin``, moves them."""
        return bool(self.wanted.unpinned_keys and self.tag_moved_to)


def wanted_images(uses: Iterable[ImageUse], config_path: object) -> list[Wanted]:
    """Group uses by (name, tag): one lock entry serves them all.

    Uses of one name:tag may mix a pin and the bare tag (what a Renovate branch leaves): the
    entry is the pin, and updating checks the tag still points there. Two different pins are a
    config error naming each key and its digest.
    """
    groups: dict[tuple[str, str], list[ImageUse]] = {}
    for u in uses:
        groups.setdefault((u.name, u.tag), []).append(u)
    out = []
    for key, group in groups.items():
        pins = {u.ref.digest for u in group if u.pinned}
        if len(pins) > 1:
            where = ", ".join(f"{u.key} = {u.ref.digest or 'the tag'}" for u in group)
            raise InputError(
                f"{config_path}: {key[0]}:{key[1]} is pinned to different digests ({where}); "
                "write the same digest at every key"
            )
        pinned = next((u for u in group if u.pinned), group[0])
        loose = tuple(u.key for u in group if not u.pinned) if pins else ()
        out.append(Wanted(pinned, tuple(sorted({u.source for u in group})), loose))
    return sorted(out, key=lambda w: w.key)


def pin_mismatches(wanted: Iterable[Wanted], lock: Lockfile, config_path: object) -> list[tuple[str, str]]:
    """``(name:tag, message)`` for each pinned use whose lock entry holds another digest.

    The pins are what tie xcargo.toml to xcargo.lock: ``update --repin`` and ``pin --write``
    move a pin and its entry together, so a pair torn by a kill between their two renames (the
    new xcargo.toml beside the old xcargo.lock) always shows up here, like a hand-edited pin.
    """
    entries = lock.by_key()
    found = []
    for w in wanted:
        e = entries.get(w.key)
        if e is not None and w.use.ref.digest is not None and e.digest != w.use.ref.digest:
            display = f"{w.use.name}:{w.use.tag}" if w.use.tag else w.use.name
            found.append((
                display,
                f"{display}: pinned to {w.use.ref.digest} in {w.use.where(config_path)} but locked to "
                f"{e.digest}; run `lockman update` to lock the pinned digest",
            ))  # fmt: skip
    return found


def platforms_of(manifest: Manifest) -> tuple[LockedPlatform, ...]:
    if not manifest.is_index:
        return ()
    # dict: an index listing one child many times records (and later fetches) it once
    return tuple(
        dict.fromkeys(
            LockedPlatform(d.platform.os, d.platform.architecture, d.digest, d.platform.variant)
            for d in manifest.platform_children()
            if d.platform is not None
        )
    )


def _entry(w: Wanted, digest: str, manifest: Manifest | None, media_type: str) -> LockedImage:
    platforms = platforms_of(manifest) if manifest else ()
    return LockedImage(
        name=w.use.name,
        tag=w.use.tag,
        digest=digest,
        media_type=manifest.media_type if manifest else media_type,
        source=w.source,
        pinned=w.use.pinned,
        platforms=platforms,
        details_from=digest if platforms else "",  # read from this manifest, just now
    )


async def lock_one(
    client: RegistryClient, w: Wanted, previous: LockedImage | None, platform: str = ""
) -> Outcome:
    """Lock ``w``: what its tag resolves to, or (``platform`` set) that platform's manifest.

    An entry edited outside lockman (``details-from`` is not its ``digest``) is not trusted at
    all: it is rebuilt as if it were new, keeping only its kind (the caller's ``platform``).
    """
    ref = w.use.ref
    if previous is not None and previous.edited_outside:
        previous = None
    try:
        if ref.digest is not None:
            return await _lock_pinned(client, w, previous)
        if platform:
            from lockman.images.platform_lock import lock_platform

            entry = await lock_platform(client, w.use, w.source, previous, platform)
            return Outcome(w, entry)
        resolved = await client.resolve(ref.with_digest(None))
        desc, manifest = resolved.descriptor, resolved.manifest
        if (
            previous is not None
            and previous.digest == desc.digest
            and not previous.pinned
            and not previous.platform
            and recorded_details_agree(client, ref, previous, desc)
        ):
            return Outcome(w, replace(previous, source=w.source))
        if manifest is None:
            # A digest about to be recorded is fetched and hashed first: a lying HEAD
            # (Docker-Content-Digest) must never reach the lockfile.
            manifest = await _fetch_announced(client, ref, desc)
        with about(ref.familiar()):
            check_descriptor(desc, manifest)
        return Outcome(w, _entry(w, desc.digest, manifest, desc.media_type))
    except LockmanError as e:
        return Outcome(w, error=e)


def recorded_details_agree(
    client: RegistryClient, ref: Reference, previous: LockedImage, desc: Descriptor
) -> bool:
    """Whether an entry's media type and platforms still fit the digest the tag names.

    The no-change path trusts the lock for one HEAD. A digest edited in xcargo.lock by anything
    but lockman (a bot's regex manager) leaves the old details behind; ``details-from`` catches
    that for free (see :func:`lock_one`). For entries written before that key existed, what the
    HEAD tells (media type, index or not) and the local manifest cache (filled by ``verify``)
    catch it, and the entry is then rebuilt from the registry.
    """
    if previous.media_type and desc.media_type and previous.media_type != desc.media_type:
        return False
    if bool(previous.platforms) and desc.media_type and desc.media_type not in INDEX_TYPES:
        return False
    cached = client.cached_manifest(ref.with_digest(desc.digest))
    return cached is None or platforms_of(cached) == previous.platforms


async def _fetch_announced(client: RegistryClient, ref: Reference, desc: Descriptor) -> Manifest:
    try:
        return await client.get_manifest(ref.with_digest(desc.digest))
    except NotFound:
        raise VerificationError(
            f"registry announced digest {desc.digest} but serves no manifest with it", subject=ref.familiar()
        ) from None


async def _lock_pinned(client: RegistryClient, w: Wanted, previous: LockedImage | None) -> Outcome:
    ref = w.use.ref
    assert ref.digest is not None
    digest = ref.digest

    async def pinned_entry() -> LockedImage:
        if previous is not None and previous.digest == digest and previous.pinned:
            # Already locked and verified: confirm the registry still serves it (one HEAD).
            desc = (await client.resolve(ref)).descriptor
            return replace(previous, source=w.source, media_type=previous.media_type or desc.media_type)
        manifest = await client.get_manifest(ref)  # hashes the bytes against the pin
        return _entry(w, digest, manifest, manifest.media_type)

    async def tag_now() -> str | None:
        if ref.tag is None:
            return None
        try:
            return (await client.resolve(ref.with_digest(None))).digest
        except LockmanError:
            if w.unpinned_keys:
                raise  # other uses pull this tag: it must resolve
            return None  # the tag is documentation; a vanished tag does not break the pin

    entry, current = await asyncio.gather(pinned_entry(), tag_now())
    moved = current if current is not None and current != digest else None
    return Outcome(w, entry, tag_moved_to=moved)


async def gather_all(aws: Iterable[Awaitable[T]]) -> list[T]:
    return list(await asyncio.gather(*aws))
