"""Images pushed byte by byte, for the tests that need a particular config or layer list."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tests.support.registry import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, Registry, sha256

SPDX = "application/spdx+json"


@dataclass
class Build:
    digest: str
    manifest: bytes
    config_digest: str


def push_build(
    reg: Registry,
    repo: str,
    tag: str,
    layers: list[bytes],
    created: str,
    image_labels: dict[str, str],
    env: list[str] | None = None,
) -> Build:
    """An OCI image with the given layers, ``created``, config labels (and ``Env``), tagged ``tag``."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {"Labels": image_labels, **({"Env": env} if env is not None else {})},
            "rootfs": {"type": "layers", "diff_ids": [sha256(x) for x in layers]},
        }
    ).encode()
    cd = reg.push_blob(repo, config)
    descs = [{"mediaType": OCI_LAYER, "digest": reg.push_blob(repo, x), "size": len(x)} for x in layers]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": len(config)},
            "layers": descs,
        }
    ).encode()
    return Build(reg.push_manifest(repo, tag, manifest, OCI_MANIFEST), manifest, cd)


def attach_sbom(reg: Registry, repo: str, subject: Build, doc: bytes, artifact_type: str = SPDX) -> None:
    """An SBOM as an OCI 1.1 referrer of ``subject``, listed in the ``sha256-<hex>`` fallback index
    (docker-registry 2.8 has no referrers API), as oras and cosign lay it out."""
    empty = reg.push_blob(repo, b"{}")
    layer = reg.push_blob(repo, doc)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": artifact_type, "digest": layer, "size": len(doc)}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": len(subject.manifest)},
        }
    ).encode()
    digest = reg.push_manifest(repo, sha256(manifest), manifest, OCI_MANIFEST)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": len(manifest),
                    "artifactType": artifact_type,
                }
            ],
        }
    ).encode()
    reg.push_manifest(repo, subject.digest.replace(":", "-"), index, OCI_INDEX)


def push_buildkit_index(reg: Registry, repo: str, tag: str, build: Build, doc: bytes) -> str:
    """An index as ``docker buildx build --sbom=true`` pushes it: the image, and an attestation
    manifest (platform unknown/unknown) whose layer is an in-toto SPDX statement (``doc``) about it."""
    statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://spdx.dev/Document",
            "subject": [{"name": "pkg:docker/app", "digest": {"sha256": build.digest.split(":")[1]}}],
            "predicate": json.loads(doc),
        }
    ).encode()
    config_bytes = b'{"architecture":"unknown","os":"unknown","rootfs":{"type":"layers","diff_ids":[]}}'
    config = reg.push_blob(repo, config_bytes)
    layer = reg.push_blob(repo, statement)
    att = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config, "size": len(config_bytes)},
            "layers": [
                {
                    "mediaType": "application/vnd.in-toto+json",
                    "digest": layer,
                    "size": len(statement),
                    "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"},
                }
            ],
        }
    ).encode()
    att_digest = reg.push_manifest(repo, sha256(att), att, OCI_MANIFEST)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": build.digest,
                    "size": len(build.manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                },
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": att_digest,
                    "size": len(att),
                    "platform": {"architecture": "unknown", "os": "unknown"},
                    "annotations": {
                        "vnd.docker.reference.type": "attestation-manifest",
                        "vnd.docker.reference.digest": build.digest,
                    },
                },
            ],
        }
    ).encode()
    return reg.push_manifest(repo, tag, index, OCI_INDEX)
