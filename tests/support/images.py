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


@dataclass
class Build:
    digest: str
    manifest: bytes
    config_digest: str


def push_build(
    reg: Registry, repo: str, tag: str, layers: list[bytes], created: str, image_labels: dict[str, str]
) -> Build:
    """An OCI image with the given layers, ``created`` and config labels, tagged ``tag``."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {"Labels": image_labels},
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
