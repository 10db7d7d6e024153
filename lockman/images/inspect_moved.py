"""Shared by the updater and `diff --insight`: which lock entries to inspect, and with what policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lockman.model.lockfile import LockedImage
from lockman.model.reference import Reference
from lockman.registry.client import RegistryClient

if TYPE_CHECKING:
    from lockman.model.insight import Insight
    from lockman.registry.osv import OsvClient
    from lockman.signatures import PolicySet


async def gather(
    client: RegistryClient,
    changed: Sequence[tuple[Reference, LockedImage | None, LockedImage | None]],
    policies: PolicySet | None,
    osv: OsvClient | None = None,
) -> dict[tuple[str, str], Insight]:
    """Insight for each entry whose digest moved; VerificationError when bytes were tampered with."""
    from lockman.images.insight import Target, inspect_all, moved

    targets = []
    for ref, old, new in changed:
        if old is None or new is None or not moved(old, new):
            continue
        verifier = None
        if policies is not None:
            from lockman.enforce.attestation import sbom_verifier

            verifier = sbom_verifier(policies, new.display)
        targets.append(Target(new.key, ref, old, new, verifier))
    return await inspect_all(client, targets, osv=osv) if targets else {}


def osv_client(client: RegistryClient, url: str | None) -> OsvClient:
    """An OSV client over the run's httpx client, caching in lockman's cache directory."""
    from lockman.registry.cache import default_cache_dir
    from lockman.registry.osv import OsvCache, OsvClient

    return OsvClient(client.http, url, cache=OsvCache(default_cache_dir()))
