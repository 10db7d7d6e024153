"""Images pushed byte by byte, for the tests that need a particular config or layer list."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tests.support.registry import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Registry, sha256


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
