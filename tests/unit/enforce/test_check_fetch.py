"""check.fetch_bundles on the scripted fake registry: which referrers count as Sigstore bundles.

The fake has no referrers API, so the list comes from the ``sha256-<hex>`` fallback index, as
on docker-registry 2.8; a registry may list anything there, including stale entries about other
images and artifacts that are no bundles.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from lockman.enforce import check
from lockman.model.reference import parse
from lockman.registry.referrers import fallback_tag
from tests.support.fake_registry import OCI_MANIFEST, FakeRegistry

HOST, REPO = "registry.test", "app"
REF = parse(f"{HOST}/{REPO}")
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SPDX = "application/spdx+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"


def descriptor(media_type: str, digest: str, size: int, artifact_type: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": size}
    if artifact_type is not None:
        d["artifactType"] = artifact_type
    return d


def referrer(fake: FakeRegistry, layer_type: str, content: bytes, subject: str | None) -> tuple[str, int]:
    """An artifact manifest with one layer (and a subject unless None): its digest and size."""
    empty = fake.put_blob(HOST, REPO, b"{}")
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": layer_type,
        "config": descriptor(EMPTY, empty, 2),
        "layers": [descriptor(layer_type, fake.put_blob(HOST, REPO, content), len(content))],
    }
    if subject is not None:
        body["subject"] = descriptor(OCI_MANIFEST, subject, 1)
    raw = json.dumps(body).encode()
    return fake.put_manifest(HOST, REPO, None, raw), len(raw)


def fetch(fake: FakeRegistry, digest: str) -> list[tuple[str, bytes]]:
    async def main() -> list[tuple[str, bytes]]:
        async with fake.client() as c:
            return await check.fetch_bundles(c, REF, digest)

    return asyncio.run(main())


def test_only_bundles_about_this_digest_are_fetched() -> None:
    fake = FakeRegistry()
    image = fake.put_image(HOST, REPO, "v1")
    other = fake.put_image(HOST, REPO, "v2", layer=b"another image")
    own, own_size = referrer(fake, BUNDLE, b'{"bundle": "own"}', subject=image)
    bare, bare_size = referrer(fake, BUNDLE, b'{"bundle": "no subject"}', subject=None)
    stale, stale_size = referrer(fake, BUNDLE, b'{"bundle": "stale"}', subject=other)
    sbom, sbom_size = referrer(fake, BUNDLE, b'{"bundle": "in an SBOM"}', subject=image)
    untyped, untyped_size = referrer(fake, BUNDLE, b'{"bundle": "untyped"}', subject=image)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            descriptor(OCI_MANIFEST, sbom, sbom_size, SPDX),  # not a bundle by its artifactType
            descriptor(OCI_MANIFEST, own, own_size, BUNDLE),
            descriptor(OCI_MANIFEST, untyped, untyped_size),  # no artifactType: not a bundle
            descriptor(OCI_MANIFEST, stale, stale_size, BUNDLE),  # about another image
            descriptor(OCI_MANIFEST, bare, bare_size, BUNDLE),  # no subject: the index vouches
        ],
    }
    fake.put_manifest(HOST, REPO, fallback_tag(image), json.dumps(index).encode(), OCI_INDEX)

    found = fetch(fake, image)

    assert found == [(own, b'{"bundle": "own"}'), (bare, b'{"bundle": "no subject"}')]
    # A referrer that is no bundle by its artifactType is not even fetched (it would use up
    # the MAX_SIGNATURES budget and cost a request each).
    fetched = fake.seen("GET", HOST, "/manifests/sha256:")
    assert fetched == [f"GET {HOST}/v2/{REPO}/manifests/{d}" for d in (own, stale, bare)]
