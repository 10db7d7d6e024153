"""Platform-specific pins: ``lockman update --platform os/arch[/variant]``.

Most users lock what the tag names (for a multi-platform image, the index: what ``docker pull
name:tag`` resolves). Some want the digest of one platform's manifest instead. Such an entry
records ``kind = "platform"``, the platform, and the index it was chosen from, so a later update
without ``--platform`` keeps the kind, and an unchanged tag still costs one HEAD.
"""

from __future__ import annotations

from dataclasses import replace

from lockman.errors import InputError
from lockman.images.graph import available_platforms, config_platform, fetch_child, select_platform
from lockman.model.lockfile import LockedImage
from lockman.model.manifest import INDEX_TYPES
from lockman.model.platforms import matches, parse_platform
from lockman.model.xcargo import ImageUse
from lockman.registry.blobs import read_blob
from lockman.registry.client import RegistryClient


async def lock_platform(
    client: RegistryClient, use: ImageUse, source: str, previous: LockedImage | None, platform: str
) -> LockedImage:
    ref = use.ref.with_digest(None)
    wanted = parse_platform(platform, what=f"{use.ref.familiar()}: platform")
    resolved = await client.resolve(ref)
    top = resolved.descriptor
    if (
        previous is not None
        and previous.platform == platform
        and top.digest in (previous.index_digest, previous.digest)
    ):
        return replace(previous, source=source)
    manifest = resolved.manifest or await client.get_manifest(ref.with_digest(top.digest))
    what = use.ref.familiar()
    if top.media_type in INDEX_TYPES or manifest.is_index:
        child = await select_platform(client, ref, manifest, wanted, what=what)
        if child is None:
            raise InputError(
                f"{what}: no {platform} image in {top.digest} (it has: {available_platforms(manifest)})"
            )
        # Fetched by digest (hashed) and checked against its descriptor before it is recorded.
        chosen = await fetch_child(client, ref, child, what)
        digest, media_type, index_digest = chosen.digest, chosen.media_type, top.digest
    else:
        if manifest.config is None:
            raise InputError(f"{what}: manifest {top.digest} has no config to tell its platform")
        declared = config_platform(await read_blob(client, ref, manifest.config, what=f"{what} (config)"))
        if not matches(wanted, declared):
            raise InputError(f"{what}: is a {declared or 'unknown'} image, not {platform}")
        digest, media_type, index_digest = top.digest, manifest.media_type, ""
    return LockedImage(
        name=use.name,
        tag=use.tag,
        digest=digest,
        media_type=media_type,
        source=source,
        platform=platform,
        index_digest=index_digest,
    )
