"""lockman.images.insight.vulnerabilities with one lookup shared by an image's platforms, against
the loopback OSV service (tests/support/osv_server.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from lockman.images.insight import vulnerabilities
from lockman.model.insight import Sbom
from lockman.model.vulns import Package, VulnDiff
from lockman.registry import osv
from lockman.registry.osv import Lookup, OsvClient
from tests.support.osv_server import OsvServer


@pytest.fixture
def server() -> Iterator[OsvServer]:
    s = OsvServer().start()
    yield s
    s.stop()


def sbom(*packages: Package) -> Sbom:
    return Sbom("CycloneDX", frozenset((p.name, p.version) for p in packages), "referrer", purls=frozenset(packages))


def test_a_platform_cut_by_the_shared_budget_says_so_though_an_earlier_one_did(
    server: OsvServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image's platforms share one request budget; each platform's result carries the note
    when its own look-ups were cut (a note said once per lookup would leave the second one
    looking complete, and "no ids" reads as clean)."""
    monkeypatch.setattr(osv, "MAX_REQUESTS", 1)
    old = sbom(Package("requests", "2.30.0", "pkg:pypi/requests@2.30.0"))
    new = sbom(Package("requests", "2.31.0", "pkg:pypi/requests@2.31.0"))
    other = sbom(Package("gradio", "4.36.1", "pkg:pypi/gradio@4.36.1"))

    async def go() -> tuple[VulnDiff, VulnDiff]:
        async with httpx.AsyncClient(timeout=5) as http:
            client, lookup = OsvClient(http, server.url), Lookup()
            first = await vulnerabilities(client, old, new, "linux/amd64", lookup)
            second = await vulnerabilities(client, old, other, "linux/arm64", lookup)
            return first, second

    first, second = asyncio.run(go())
    limit = f"OSV request limit ({osv.MAX_REQUESTS}) reached; the rest was not looked up"
    assert limit in first.notes  # one querybatch spent it: PYSEC-2023-74's record is not read
    assert limit in second.notes  # gradio was never asked about: said here too
    assert second.requests == 0 and len(server.log) == 1
