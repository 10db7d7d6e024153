"""lockman.images.graph: a child that is not what its index says is refused, naming the image."""

from __future__ import annotations

import asyncio
import json

import pytest

from lockman.errors import DescriptorMismatch, LockmanError, SizeMismatch
from lockman.images.graph import walk
from lockman.model import reference
from lockman.model.manifest import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from tests.support.fake_registry import FakeRegistry

HOST = "registry.test"


def _walk_error(child: dict[str, object], fake: FakeRegistry) -> LockmanError:
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child]}).encode()
    digest = fake.put_manifest(HOST, "app", "v1", body, OCI_INDEX)
    ref = reference.parse(f"{HOST}/app@{digest}")

    async def go() -> None:
        async with fake.client() as c:
            await walk(c, ref, digest, what="app:v1")

    with pytest.raises(LockmanError) as caught:
        asyncio.run(go())
    return caught.value


def test_a_child_of_another_media_type_names_the_image() -> None:
    fake = FakeRegistry()
    child = fake.put_image(HOST, "app", "amd64")
    size = len(fake.manifests[(HOST, "app", child)][0])
    e = _walk_error({"mediaType": DOCKER_MANIFEST, "digest": child, "size": size}, fake)
    assert type(e) is DescriptorMismatch and e.kind == "media-type-mismatch"
    assert e.subject == "app:v1"
    assert str(e) == f"app:v1: descriptor says {DOCKER_MANIFEST} but the manifest {child} is {OCI_MANIFEST}"


def test_a_child_of_another_size_names_the_image() -> None:
    fake = FakeRegistry()
    child = fake.put_image(HOST, "app", "amd64")
    size = len(fake.manifests[(HOST, "app", child)][0])
    e = _walk_error({"mediaType": OCI_MANIFEST, "digest": child, "size": size + 1}, fake)
    assert type(e) is SizeMismatch and e.subject == "app:v1"
    assert str(e) == f"app:v1: manifest {child} is {size} bytes, its descriptor says {size + 1}"
