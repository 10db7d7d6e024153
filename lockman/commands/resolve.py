"""`lockman resolve`: print ``REF@sha256:…`` for each reference, in input order."""

from __future__ import annotations

import asyncio

from lockman.commands._common import report_errors
from lockman.console import out
from lockman.errors import EXIT_OK, LockmanError
from lockman.model import reference
from lockman.registry.client import RegistryClient


async def run(texts: list[str], *, timeout: float, concurrency: int | None) -> int:
    refs = [reference.parse(t) for t in texts]  # all input checked before any network
    unique = list(dict.fromkeys(refs))
    async with RegistryClient(timeout=timeout, concurrency=concurrency) as client:
        await client.prefetch_tokens(unique)
        results = await asyncio.gather(*(client.resolve(r) for r in unique), return_exceptions=True)
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
            out(f"{base}@{r.digest}")
    if errors:
        return report_errors(list(dict.fromkeys(errors)))
    return EXIT_OK
