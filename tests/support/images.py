"""Images pushed byte by byte, for the tests that need a particular config or layer list."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass

from tests.support.registry import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Registry,
    sha256,
)

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


DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def tar_gz(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzipped tar of ``files`` (reproducible: fixed times) and its diff_id (the tar's digest)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0), sha256(raw)


@dataclass
class Runnable:
    """An image engines can unpack (real gzipped tar layers, true diff_ids)."""

    digest: str
    manifest: bytes
    media_type: str
    config_digest: str
    layer_digests: list[str]


def push_runnable(
    reg: Registry,
    repo: str,
    tag: str | None,
    files: dict[str, bytes],
    *,
    arch: str = "amd64",
    variant: str | None = None,
    docker: bool = True,
    labels: dict[str, str] | None = None,
) -> Runnable:
    """A one-layer image holding ``files``, as docker pushes it (v2s2) or as OCI."""
    layer, diff_id = tar_gz(files)
    cfg: dict = {
        "architecture": arch,
        "os": "linux",
        "config": {"Labels": labels or {}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    if variant:
        cfg["variant"] = variant
    config = json.dumps(cfg).encode()
    cd, ld = reg.push_blob(repo, config), reg.push_blob(repo, layer)
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG, "digest": cd, "size": len(config)},
            "layers": [{"mediaType": DOCKER_LAYER if docker else OCI_LAYER, "digest": ld, "size": len(layer)}],
        },
        indent=3,  # as docker pushes it: bytes a re-serialisation would not reproduce
    ).encode()
    digest = reg.push_manifest(repo, tag or sha256(manifest), manifest, media_type)
    return Runnable(digest, manifest, media_type, cd, [ld])


def push_runnable_list(
    reg: Registry, repo: str, tag: str, platforms: dict[str, dict[str, bytes]], *, docker: bool = True
) -> tuple[str, bytes, dict[str, Runnable]]:
    """A manifest list (Docker) or index (OCI) of runnable images: ``{"amd64": files, ...}``
    (``arm64/v8`` for a variant). Returns its digest, bytes and children by platform key."""
    children: dict[str, Runnable] = {}
    descs = []
    for key, files in platforms.items():
        arch, _, variant = key.partition("/")
        img = push_runnable(reg, repo, None, files, arch=arch, variant=variant or None, docker=docker)
        children[key] = img
        plat = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
        descs.append({"mediaType": img.media_type, "digest": img.digest, "size": len(img.manifest), "platform": plat})
    media_type = DOCKER_LIST if docker else OCI_INDEX
    body = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": descs}, indent=3).encode()
    return reg.push_manifest(repo, tag, body, media_type), body, children


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
    return push_buildkit_platforms(reg, repo, tag, [(build, "linux/amd64", doc)])


def push_buildkit_platforms(reg: Registry, repo: str, tag: str, images: list[tuple[Build, str, bytes]]) -> str:
    """``docker buildx build --platform A,B --sbom=true``: per (image, platform, SPDX document),
    the image and an attestation manifest naming it (``vnd.docker.reference.digest``)."""
    config_bytes = b'{"architecture":"unknown","os":"unknown","rootfs":{"type":"layers","diff_ids":[]}}'
    config = reg.push_blob(repo, config_bytes)
    manifests: list[dict[str, object]] = []
    for build, platform, doc in images:
        statement = json.dumps(
            {
                "_type": "https://in-toto.io/Statement/v0.1",
                "predicateType": "https://spdx.dev/Document",
                "subject": [{"name": "pkg:docker/app", "digest": {"sha256": build.digest.split(":")[1]}}],
                "predicate": json.loads(doc),
            }
        ).encode()
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
        os_, arch, *variant = platform.split("/")
        manifests.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": build.digest,
                "size": len(build.manifest),
                "platform": {"architecture": arch, "os": os_, **({"variant": variant[0]} if variant else {})},
            }
        )
        manifests.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": att_digest,
                "size": len(att),
                "platform": {"architecture": "unknown", "os": "unknown"},
                "annotations": {
                    "vnd.docker.reference.type": "attestation-manifest",
                    "vnd.docker.reference.digest": build.digest,
                },
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()
    return reg.push_manifest(repo, tag, index, OCI_INDEX)
