"""`lockman resolve`: print ``REF@sha256:…`` for each reference, in input order.

With ``--platform``, the digest is that platform's manifest (as ``crane digest --platform``
prints it) instead of what the tag names.
"""

from __future__ import annotations

import asyncio

from lockman.commands._common import report_errors
from lockman.console import out
from lockman.errors import EXIT_OK, LockmanError, about
from lockman.model import reference
from lockman.model.manifest import Platform
from lockman.model.platforms import parse_platform
from lockman.model.reference import Reference
from lockman.registry.client import RegistryClient


async def _digest(client: RegistryClient, ref: Reference, platform: Platform | None) -> str:
    resolved = await client.resolve(ref)
    if platform is None:
        return resolved.digest
    from lockman.images.platform_lock import choose_platform

    top = resolved.descriptor
    manifest = resolved.manifest or await client.get_manifest(ref.with_digest(top.digest))
    chosen = await choose_platform(client, ref, top, manifest, platform, what=ref.familiar())
    return top.digest if chosen is None else chosen[0]


async def run(
    texts: list[str], *, timeout: float, concurrency: int | None, platform: str | None = None
) -> int:
    with about("--platform"):
        wanted = parse_platform(platform) if platform else None
    refs = [reference.parse(t) for t in texts]  # all input checked before any network
    unique = list(dict.fromkeys(refs))
    async with RegistryClient(timeout=timeout, concurrency=concurrency) as client:
        await client.prefetch_tokens(unique)
        results = await asyncio.gather(*(_digest(client, r, wanted) for r in unique), return_exceptions=True)
    by_ref = dict(zip(unique, results, strict=True))
    errors: list[LockmanError] = []
    for text, ref in zip(texts, refs, strict=True):
        r = by_ref[ref]
        if isinstance(r, LockmanError):
            errors.append(r)
        elif isinstance(r, BaseException):
            raise r
        else:
            base = text.split("@", 1)[0]
            out(f"{base}@{r}")
    if errors:
        return report_errors(list(dict.fromkeys(errors)))
    return EXIT_OK
