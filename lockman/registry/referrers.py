"""OCI 1.1 referrers: the artifacts (signatures, SBOMs) whose ``subject`` is a given manifest.

The referrers API (``GET /v2/<name>/referrers/<digest>``) is asked first. Where a registry lacks
it (docker-registry 2.8 answers 404), clients keep the list themselves in an OCI index at the
fallback tag ``sha256-<hex>``, as the distribution spec prescribes; that tag is read instead.
"""

from __future__ import annotations

from lockman.model.digest import Digest
from lockman.model.manifest import Descriptor
from lockman.model.reference import Reference
from lockman.registry.client import NotFound, RegistryClient


def fallback_tag(digest: str) -> str:
    """The referrers fallback tag: ``sha256:abc…`` → ``sha256-abc…`` (no ``.sig`` suffix)."""
    dg = Digest.parse(digest)
    return f"{dg.algorithm}-{dg.hex}"


async def list_referrers(client: RegistryClient, ref: Reference, digest: str) -> list[Descriptor]:
    """Descriptors of every manifest that refers to ``digest`` in ``ref``'s repository."""
    index = await client.get_referrers(ref, digest)
    if index is None:
        try:
            index = await client.get_manifest(ref.with_digest(None).with_tag(fallback_tag(digest)))
        except NotFound:
            return []
        if not index.is_index:
            return []  # something else owns that tag; it is not a referrers list
    return list(index.manifests)
