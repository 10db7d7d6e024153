"""Push many small images quickly: one connection, shared blobs mounted into each repository.

For request-count tests and ``benchmarks/resolve.py``, where pushing is set-up, not the subject.
"""

from __future__ import annotations

import hashlib
import json

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_images(
    url: str, count: int, *, start: int = 0, tags_per_repo: int = 1, prefix: str = "bench/app"
) -> list[str]:
    """Push ``count`` single-platform images; return ``repo:tag`` names.

    Every manifest is distinct (it names its reference in an annotation) while all share one
    config and one layer blob, mounted into each repository: three requests per image.
    """
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    layer = b"lockman benchmark layer\n" * 8
    names = []
    with httpx.Client(base_url=url, timeout=60) as c:
        first = None
        for i in range(start, start + count):
            repo, tag = f"{prefix}{i // tags_per_repo:04d}", f"v{i % tags_per_repo}"
            for blob in (config, layer):
                if first is None:
                    r = c.post(f"/v2/{repo}/blobs/uploads/")
                    r = c.put(f"{r.headers['location']}&digest={sha256(blob)}", content=blob)
                else:
                    r = c.post(f"/v2/{repo}/blobs/uploads/?mount={sha256(blob)}&from={first}")
                assert r.status_code == 201, r.text
            first = first or repo
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": sha256(config),
                        "size": len(config),
                    },
                    "layers": [
                        {
                            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": sha256(layer),
                            "size": len(layer),
                        }
                    ],
                    "annotations": {"bench.ref": f"{repo}:{tag}"},
                },
                indent=2,
            ).encode()
            r = c.put(f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
            assert r.status_code == 201, r.text
            names.append(f"{repo}:{tag}")
    return names
