"""Platform-specific pins: ``lockman update --platform os/arch[/variant]``.

Most users lock what the tag names (for a multi-platform image, the index: what ``docker pull
name:tag`` resolves). Some want the digest of one platform's manifest instead. Such an entry
records ``kind = "platform"``, the platform, and the index it was chosen from, so a later update
without ``--platform`` keeps the kind, and an unchanged tag still costs one HEAD.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from lockman.console import short
from lockman.errors import InputError, about
from lockman.images.graph import available_platforms, config_platform, fetch_child, select_platform
from lockman.model.lockfile import LockedImage
from lockman.model.manifest import INDEX_TYPES, Descriptor, Manifest, Platform
from lockman.model.platforms import matches, parse_platform
from lockman.model.reference import Reference
from lockman.model.xcargo import ImageUse
from lockman.registry.blobs import read_blob
from lockman.registry.client import RegistryClient

log = logging.getLogger("lockman.platform")


async def lock_platform(
    client: RegistryClient, use: ImageUse, source: str, previous: LockedImage | None, platform: str
) -> LockedImage:
    ref = use.ref.with_digest(None)
    with about(f"{use.ref.familiar()}: platform"):
        wanted = parse_platform(platform)
    resolved = await client.resolve(ref)
    top = resolved.descriptor
    if previous is not None and previous.platform == platform and _still_current(previous, top):
        return replace(previous, source=source)
    manifest = resolved.manifest or await client.get_manifest(ref.with_digest(top.digest))
    what = use.ref.familiar()
    chosen = await choose_platform(client, ref, top, manifest, wanted, what=what)
    if chosen is None:  # a single-platform image for another platform: locked as it is
        if previous is not None and previous.digest == top.digest:
            return replace(previous, source=source)
        return LockedImage(
            name=use.name, tag=use.tag, digest=top.digest, media_type=manifest.media_type, source=source
        )
    digest, media_type, index_digest = chosen
    return LockedImage(
        name=use.name,
        tag=use.tag,
        digest=digest,
        media_type=media_type,
        source=source,
        platform=platform,
        index_digest=index_digest,
        details_from=digest,  # platform and index-digest describe this manifest
    )


async def choose_platform(
    client: RegistryClient,
    ref: Reference,
    top: Descriptor,
    manifest: Manifest,
    wanted: Platform,
    *,
    what: str,
) -> tuple[str, str, str] | None:
    """``(digest, media type, index digest)`` of ``wanted``'s manifest under what a tag names.

    A multi-platform index without ``wanted`` is an error. A single-platform image built for
    another platform gives None after one warning naming it and its platform: in a mixed
    project (one amd64-only image among multi-platform ones) the run carries on, and the image
    is taken as it is, as ``crane digest --platform`` does.
    """
    if top.media_type in INDEX_TYPES or manifest.is_index:
        child = await select_platform(client, ref, manifest, wanted, what=what)
        if child is None:
            raise InputError(
                f"no {wanted} image in {top.digest} (it has: {available_platforms(manifest)})", subject=what
            )
        # Fetched by digest (hashed) and checked against its descriptor before it is recorded.
        fetched = await fetch_child(client, ref, child, what)
        return fetched.digest, fetched.media_type, top.digest
    if manifest.config is None:
        raise InputError(f"manifest {top.digest} has no config to tell its platform", subject=what)
    declared = config_platform(await read_blob(client, ref, manifest.config, what=f"{what} (config)"))
    if matches(wanted, declared):
        return top.digest, manifest.media_type, ""
    log.warning(
        "%s: single-platform %s image, no %s variant; taken as it is (%s)",
        what,
        declared or "unknown-platform",
        wanted,
        short(top.digest),
    )
    return None


def _still_current(previous: LockedImage, top: Descriptor) -> bool:
    """The tag still names what the entry was chosen from, and the entry is shaped like lockman's.

    A platform pin records a child's digest and the index it came from; a ``digest`` equal to
    that index, or a single-platform entry whose tag now names an index, was not written by
    lockman (a bot's regex edit) and is rebuilt instead of trusted.
    """
    if previous.index_digest:
        return top.digest == previous.index_digest and previous.digest != previous.index_digest
    return top.digest == previous.digest and top.media_type not in INDEX_TYPES


async def platform_pin_problems(
    client: RegistryClient, ref: Reference, entry: LockedImage, manifest: Manifest
) -> list[str]:
    """Why a ``kind = "platform"`` entry is not what it claims to be (``verify``), or nothing.

    Its ``digest`` must name one platform's manifest, and the ``index-digest`` it came from must
    list that manifest for that platform; without an index, the image's config must declare the
    platform. A multi-platform digest written into ``digest`` hashes fine and is served fine, so
    only this check tells it apart.
    """
    what = entry.display
    with about(f"{what}: platform"):
        wanted = parse_platform(entry.platform)
    advice = "; run `lockman update` to rebuild the entry"
    if manifest.is_index:
        return [
            f"{what}: platform pin {entry.digest} is a multi-platform index, not a {entry.platform} "
            f"image manifest{advice}"
        ]
    if entry.index_digest:
        index = await client.get_manifest(ref.with_digest(entry.index_digest))
        if not index.is_index:
            return [f"{what}: index-digest {entry.index_digest} is not a multi-platform index{advice}"]
        child = await select_platform(client, ref, index, wanted, what=what)
        if child is None or child.digest != entry.digest:
            listed = child.digest if child is not None else "nothing"
            return [
                f"{what}: index {entry.index_digest} lists {listed} for {entry.platform}, "
                f"not the locked {entry.digest}{advice}"
            ]
        return []
    if manifest.config is None:
        return [f"{what}: manifest {entry.digest} has no config to tell its platform"]
    declared = config_platform(await read_blob(client, ref, manifest.config, what=f"{what} (config)"))
    if not matches(wanted, declared):
        return [
            f"{what}: locked as {entry.platform} but {entry.digest} is a {declared or 'unknown'} "
            f"image{advice}"
        ]
    return []
