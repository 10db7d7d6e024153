"""Walking an image from its locked digest: every manifest (verified) and every blob it names.

An index is followed into each child, nested indexes included; attestation manifests are
followed too when the whole index is wanted (a layout that lacks them would be incomplete for
``skopeo copy --all``), and skipped when one platform is selected. Every manifest is fetched by
digest, so its bytes are hashed against what its parent (or the lock) says, and its size and
media type against the descriptor that named it (the checks ``verify`` applies).

A registry controls the graph, so a walk fetches each digest once (an index listing one child 40
times, each listing theirs 40 times, costs 3 fetches, not 1,641) and refuses more than
``MAX_MANIFESTS`` manifests or nesting deeper than ``MAX_DEPTH``, with one clear error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from lockman import safejson
from lockman.errors import InputError, NotFound, NotServed, SizeMismatch, VerificationError, about
from lockman.model import platforms
from lockman.model.manifest import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    Descriptor,
    Manifest,
    Platform,
    check_descriptor,
)
from lockman.model.reference import Reference
from lockman.registry.client import RegistryClient

MAX_MANIFESTS = 1000  # distinct manifests in one image (a big multi-platform index has ~50)
MAX_DEPTH = 8  # index → index → … → manifest; real images nest at most 2 deep


@dataclass
class ImageGraph:
    """What a pull needs: the descriptor index.json points at, manifests and blobs."""

    top: Descriptor
    manifests: list[Manifest] = field(default_factory=list)  # children before their parents
    blobs: dict[str, tuple[str, Descriptor]] = field(default_factory=dict)  # digest -> (role, desc)
    single_manifest: Manifest | None = None  # set when the locked digest is one image manifest
    visits: dict[str, asyncio.Task[Manifest]] = field(default_factory=dict)  # digest -> its one visit


@contextmanager
def locked_content() -> Iterator[None]:
    """Around fetches of what a lock pins (a locked image's manifests and blobs, by digest): the
    registry's 404 is the locked content gone, :class:`NotServed` (exit 1) in every command, as
    ``verify`` reports it; other registry failures stay exit 3."""
    try:
        yield
    except NotFound as e:
        raise NotServed.of(e) from None


def _bound(what: str, seen: int, depth: int) -> None:
    """A registry-built graph larger or deeper than any real image is refused, clearly."""
    if depth > MAX_DEPTH:
        raise VerificationError(
            f"indexes nested more than {MAX_DEPTH} deep; refusing to walk on", subject=what
        )
    if seen > MAX_MANIFESTS:
        raise VerificationError(
            f"more than {MAX_MANIFESTS} manifests in one image; refusing to walk on", subject=what
        )


async def fetch_child(client: RegistryClient, ref: Reference, desc: Descriptor, what: str) -> Manifest:
    """A child manifest by digest (hashed), and what its descriptor says checked against it."""
    manifest = await client.get_manifest(ref.with_digest(desc.digest))
    with about(what):
        _check_child(desc, manifest)
    return manifest


def _check_child(desc: Descriptor, manifest: Manifest) -> None:
    if desc.size != len(manifest.raw):
        raise SizeMismatch(
            f"manifest {desc.digest} is {len(manifest.raw)} bytes, its descriptor says {desc.size}"
        )
    check_descriptor(desc, manifest)


async def select_platform(
    client: RegistryClient,
    ref: Reference,
    index: Manifest,
    wanted: Platform,
    *,
    what: str,
    _seen: set[str] | None = None,
    _depth: int = 1,
) -> Descriptor | None:
    """The child of ``index`` (searching nested indexes, each once) built for ``wanted``."""
    seen = _seen if _seen is not None else {index.digest}
    child = platforms.select(list(index.manifests), wanted)
    if child is not None:
        return child
    for nested in platforms.unplatformed(list(index.manifests)):
        if nested.media_type not in INDEX_TYPES or nested.digest in seen:
            continue
        seen.add(nested.digest)
        _bound(what, len(seen), _depth + 1)
        inner = await fetch_child(client, ref, nested, what)
        found = await select_platform(client, ref, inner, wanted, what=what, _seen=seen, _depth=_depth + 1)
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
    A manifest the registry does not serve is :class:`NotServed` (see :func:`locked_content`).
    """
    with locked_content():
        return await _walk(client, ref, digest, what=what, platform=platform, only=only)


async def _walk(
    client: RegistryClient,
    ref: Reference,
    digest: str,
    *,
    what: str,
    platform: Platform | None,
    only: frozenset[str] | None,
) -> ImageGraph:
    root = await client.get_manifest(ref.with_digest(digest))
    top = Descriptor(root.media_type, root.digest, len(root.raw))
    if platform is not None and root.is_index:
        child = await select_platform(client, ref, root, platform, what=what)
        if child is None:
            raise InputError(
                f"no {platform} image in {digest} (it has: {available_platforms(root)})", subject=what
            )
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
    depth: int = 1,
) -> None:
    if manifest is None:
        task = graph.visits.get(desc.digest)
        if task is not None:  # listed again (here or elsewhere): visited once, checked each time
            manifest = await task
            with about(what):
                _check_child(desc, manifest)
            return
        _bound(what, len(graph.visits) + 2, depth)  # + the root, + this one
        task = graph.visits[desc.digest] = asyncio.ensure_future(fetch_child(client, ref, desc, what))
        manifest = await task
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
            *(
                _collect(
                    client, ref, c, graph, what=what, attestations=attestations, only=None, depth=depth + 1
                )
                for c in subs
            )
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
        obj = safejson.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict):
        return None
    os_, arch, variant = obj.get("os"), obj.get("architecture"), obj.get("variant")
    if not isinstance(os_, str) or not isinstance(arch, str):
        return None
    return Platform(os_, arch, variant if isinstance(variant, str) and variant else None)
