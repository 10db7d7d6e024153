"""Fetcher on the scripted fake registry: one GET per digest however many ask, and a failure
that is not remembered."""

from __future__ import annotations

import asyncio

import pytest

from lockman.errors import NotFound
from lockman.model import reference
from lockman.registry.client import RegistryClient
from lockman.registry.fetch import Resolved
from lockman.registry.registries_conf import RegistriesConf
from tests.support.fake_registry import FakeRegistry

HOST = "registry.test"


def test_concurrent_fetches_of_one_digest_are_one_get() -> None:
    fake = FakeRegistry()
    digest = fake.put_image(HOST, "app", "v1")
    ref = reference.parse(f"{HOST}/app@{digest}")

    async def go() -> set[str]:
        async with RegistryClient(transport=fake.transport, registries=RegistriesConf([])) as c:
            return {m.digest for m in await asyncio.gather(*(c.get_manifest(ref) for _ in range(8)))}

    assert asyncio.run(go()) == {digest}
    assert fake.seen("GET", path="/manifests/") == [f"GET {HOST}/v2/app/manifests/{digest}"]


def test_a_failed_fetch_is_asked_again() -> None:
    fake = FakeRegistry()
    digest = fake.put_image(HOST, "app", "v1")
    ref = reference.parse(f"{HOST}/app@{digest}")

    async def go() -> Resolved:
        async with RegistryClient(transport=fake.transport, registries=RegistriesConf([])) as c:
            fake.status[HOST] = 404
            with pytest.raises(NotFound):
                await c.get_manifest(ref)
            del fake.status[HOST]
            return await c.resolve(ref, want_manifest=True)

    assert asyncio.run(go()).digest == digest
    assert len(fake.seen("GET", path="/manifests/")) == 2
