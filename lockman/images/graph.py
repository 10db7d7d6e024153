"""Walking an image from its locked digest: every manifest (verified) and every blob it names.

An index is followed into each child, nested indexes included; attestation manifests are
followed too when the whole index is wanted (a layout that lacks them would be incomplete for
``skopeo copy --all``), and skipped when one platform is selected. Every manifest is fetched by
digest, so its bytes are hashed against what its parent (or the lock) says.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from lockman.errors import InputError, VerificationError
from lockman.model import platforms
from lockman.model.manifest import INDEX_TYPES, MANIFEST_TYPES, Descriptor, Manifest, Platform
from lockman.model.reference import Reference
from lockman.registry.client import RegistryClient


@dataclass
class ImageGraph:
    """What a pull needs: the descriptor index.json points at, manifests and blobs."""

    top: Descriptor
    manifests: list[Manifest] = field(default_factory=list)  # children before their parents
    blobs: dict[str, tuple[str, Descriptor]] = field(default_factory=dict)  # digest -> (role, desc)
    single_manifest: Manifest | None = None  # set when the locked digest is one image manifest


def _check_size(desc: Descriptor, manifest: Manifest, what: str) -> None:
    if desc.size != len(manifest.raw):
        raise VerificationError(
            f"{what}: manifest {desc.digest} is {len(manifest.raw)} bytes, its descriptor says {desc.size}"
        )


async def select_platform(
    client: RegistryClient, ref: Reference, index: Manifest, wanted: Platform, *, what: str
) -> Descriptor | None:
    """The child of ``index`` (searching nested indexes) built for ``wanted``."""
    child = platforms.select(list(index.manifests), wanted)
    if child is not None:
        return child
    for nested in platforms.unplatformed(list(index.manifests)):
        if nested.media_type not in INDEX_TYPES:
            continue
        inner = await client.get_manifest(ref.with_digest(nested.digest))
        _check_size(nested, inner, what)
        found = await select_platform(client, ref, inner, wanted, what=what)
        if found is not None:
            return found
    return None


def available_platforms(index: Manifest) -> str:
    names = sorted({str(d.platform) for d in index.platform_children() if d.platform is not None})
    return ", ".join(names) or "none"


async def walk(
    client: RegistryClient,
    ref: Reference,
    digest: str,
    *,
    what: str,
    platform: Platform | None = None,
    only: frozenset[str] | None = None,
) -> ImageGraph:
    """Fetch and verify the manifests under ``digest``; collect their blobs.

    ``platform`` picks one child of an index (the graph's top is then that child);
    ``only`` restricts an index to the children with those digests (the locked platforms).
    """
    root = await client.get_manifest(ref.with_digest(digest))
    top = Descriptor(root.media_type, root.digest, len(root.raw))
    if platform is not None and root.is_index:
        child = await select_platform(client, ref, root, platform, what=what)
        if child is None:
            raise InputError(f"{what}: no {platform} image in {digest} (it has: {available_platforms(root)})")
        graph = ImageGraph(child)
        await _collect(client, ref, child, graph, what=what, attestations=False, only=None)
        return graph
    graph = ImageGraph(top)
    await _collect(client, ref, top, graph, what=what, attestations=True, only=only, manifest=root)
    if not root.is_index:
        graph.single_manifest = root
    return graph


async def _collect(
    client: RegistryClient,
    ref: Reference,
    desc: Descriptor,
    graph: ImageGraph,
    *,
    what: str,
    attestations: bool,
    only: frozenset[str] | None,
    manifest: Manifest | None = None,
) -> None:
    if manifest is None:
        manifest = await client.get_manifest(ref.with_digest(desc.digest))
        _check_size(desc, manifest, what)
    if manifest.is_index:
        children = [
            c
            for c in manifest.manifests
            if (attestations or not c.is_attestation) and (only is None or c.digest in only)
        ]
        blobs = [c for c in children if c.media_type not in MANIFEST_TYPES]
        for b in blobs:
            graph.blobs.setdefault(b.digest, ("artifact", b))
        subs = [c for c in children if c.media_type in MANIFEST_TYPES]
        await asyncio.gather(
            *(_collect(client, ref, c, graph, what=what, attestations=attestations, only=None) for c in subs)
        )
    else:
        if manifest.config is not None:
            graph.blobs.setdefault(manifest.config.digest, ("config", manifest.config))
        for layer in manifest.layers:
            graph.blobs.setdefault(layer.digest, ("layer", layer))
    graph.manifests.append(manifest)


def config_platform(data: bytes) -> Platform | None:
    """The platform an image config declares (``os``, ``architecture``, ``variant``)."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict):
        return None
    os_, arch, variant = obj.get("os"), obj.get("architecture"), obj.get("variant")
    if not isinstance(os_, str) or not isinstance(arch, str):
        return None
    return Platform(os_, arch, variant if isinstance(variant, str) and variant else None)
