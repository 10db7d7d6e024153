"""Fetcher on the scripted fake registry: one GET per digest however many ask, and a failure
that is not remembered."""

from __future__ import annotations

import asyncio
import json

import pytest

from lockman.errors import NotFound, UnsupportedMediaType, VerificationError
from lockman.model import reference
from lockman.model.manifest import OCI_INDEX, OCI_MANIFEST
from lockman.registry.fetch import Resolved
from tests.support.fake_registry import FakeRegistry

HOST = "registry.test"


def test_concurrent_fetches_of_one_digest_are_one_get() -> None:
    fake = FakeRegistry()
    digest = fake.put_image(HOST, "app", "v1")
    ref = reference.parse(f"{HOST}/app@{digest}")

    async def go() -> set[str]:
        async with fake.client() as c:
            return {m.digest for m in await asyncio.gather(*(c.get_manifest(ref) for _ in range(8)))}

    assert asyncio.run(go()) == {digest}
    assert fake.seen("GET", path="/manifests/") == [f"GET {HOST}/v2/app/manifests/{digest}"]


def test_a_failed_fetch_is_asked_again() -> None:
    fake = FakeRegistry()
    digest = fake.put_image(HOST, "app", "v1")
    ref = reference.parse(f"{HOST}/app@{digest}")

    async def go() -> Resolved:
        async with fake.client() as c:
            fake.status[HOST] = 404
            with pytest.raises(NotFound):
                await c.get_manifest(ref)
            del fake.status[HOST]
            return await c.resolve(ref, want_manifest=True)

    assert asyncio.run(go()).digest == digest
    assert len(fake.seen("GET", path="/manifests/")) == 2


def _fetch_error(fake: FakeRegistry, ref: reference.Reference) -> VerificationError:
    async def go() -> None:
        async with fake.client() as c:
            await c.get_manifest(ref)

    with pytest.raises(VerificationError) as caught:
        asyncio.run(go())
    return caught.value


def test_a_bad_descriptor_inside_an_index_names_the_image_and_the_place() -> None:
    """The parser knows ``manifests[1]``, the fetch knows the image: one line, two fields."""
    fake = FakeRegistry()
    good = fake.put_image(HOST, "app", "v1")
    children = [{"mediaType": OCI_MANIFEST, "digest": good, "size": 1}, {"mediaType": OCI_MANIFEST, "size": 1}]
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()
    digest = fake.put_manifest(HOST, "app", "multi", body, OCI_INDEX)
    e = _fetch_error(fake, reference.parse(f"{HOST}/app@{digest}"))
    assert type(e) is VerificationError
    assert (e.subject, e.where) == (f"{HOST}/app@{digest}", "manifests[1]")
    assert str(e) == f"{HOST}/app@{digest} manifests[1]: descriptor lacks mediaType or digest"


def test_an_unsupported_manifest_names_the_image_by_tag() -> None:
    fake = FakeRegistry()
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/x-unknown"}).encode()
    fake.put_manifest(HOST, "app", "odd", body, "application/x-unknown")
    e = _fetch_error(fake, reference.parse(f"{HOST}/app:odd"))
    assert isinstance(e, UnsupportedMediaType) and e.kind == "unsupported-media-type"
    assert (e.subject, e.where) == (f"{HOST}/app:odd", None)
    assert str(e) == f"{HOST}/app:odd: unsupported manifest media type 'application/x-unknown'"
