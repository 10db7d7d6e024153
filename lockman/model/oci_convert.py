"""Docker-format manifests rewritten with OCI media types, for OCI image layouts. Pure: no I/O.

skopeo, podman (containers/image) and umoci find an image by name in a layout's ``index.json``
only among OCI media types: an entry that names a Docker v2s2 manifest or manifest list answers
"no descriptor found for reference". So a layout names an OCI rendering of such an image, the
way ``skopeo copy`` converts it, and keeps the Docker original (the bytes the lock pins) beside it.

Only media types change: the config and every layer stay the same blobs, so the image ID an
engine shows (the config's digest) is the one a registry pull gives. An index is rewritten when
one of its children is (its descriptor then names the conversion). Each conversion says which
digest it came from in its annotation :data:`ORIGINAL`, so the locked bytes are found, and
proved by hashing, from the layout alone. The output is a function of the input bytes only: the
same image converts to the same digest on every run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from lockman import safejson
from lockman.model.digest import Digest
from lockman.model.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
)

ORIGINAL = "xcargo.lockman.original-digest"

# containers/image's conversion table (manifest/oci.go, docker_schema2.go): each Docker media
# type and its OCI counterpart. A type not listed is kept as it is.
OCI_FOR_DOCKER = {
    DOCKER_MANIFEST: OCI_MANIFEST,
    DOCKER_LIST: OCI_INDEX,
    "application/vnd.docker.container.image.v1+json": "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    ),
    "application/vnd.docker.image.rootfs.foreign.diff.tar": (
        "application/vnd.oci.image.layer.nondistributable.v1.tar"
    ),
}


@dataclass(frozen=True)
class OciView:
    """What a layout names for an image, and the conversions it must store for that."""

    top: Descriptor  # the conversion of the top manifest, or the top itself when it needs none
    original: Descriptor  # the top as locked (the same as ``top`` when nothing was converted)
    blobs: dict[str, bytes] = field(default_factory=dict)  # digest -> bytes of each conversion

    @property
    def converted(self) -> bool:
        return self.top.digest != self.original.digest


def _retype(desc: Any) -> bool:
    """Give a descriptor object its OCI media type; whether it changed."""
    if not isinstance(desc, dict):
        return False
    new = OCI_FOR_DOCKER.get(str(desc.get("mediaType")))
    if new is None:
        return False
    desc["mediaType"] = new
    return True


def oci_view(top: Descriptor, manifests: Iterable[Manifest]) -> OciView:
    """The OCI rendering of the image under ``top`` (``manifests``: every manifest of it,
    verified; a child not among them, e.g. one another platform needs, is left as named)."""
    by_digest = {m.digest: m for m in manifests}
    done: dict[str, Descriptor | None] = {}
    blobs: dict[str, bytes] = {}

    def convert(manifest: Manifest) -> Descriptor | None:
        if manifest.digest in done:
            return done[manifest.digest]
        done[manifest.digest] = None  # a digest cannot name itself; this only stops a repeat
        obj = safejson.loads(manifest.raw)
        changed = _retype(obj)
        if manifest.is_index:
            for child in obj.get("manifests") or []:
                inner = by_digest.get(str(child.get("digest"))) if isinstance(child, dict) else None
                if inner is None or child.get("mediaType") not in MANIFEST_TYPES:
                    continue
                new = convert(inner)
                if new is not None:
                    child.update(mediaType=new.media_type, digest=new.digest, size=new.size)
                    changed = True
        else:
            changed = _retype(obj.get("config")) | changed
            for layer in obj.get("layers") or []:
                changed = _retype(layer) | changed
        if not changed:
            return None
        annotations = obj.get("annotations")
        kept = annotations if isinstance(annotations, dict) else {}
        obj["annotations"] = {**kept, ORIGINAL: manifest.digest}
        data = json.dumps(obj, separators=(",", ":")).encode()
        digest = str(Digest.of(data))
        blobs[digest] = data
        desc = done[manifest.digest] = Descriptor(str(obj["mediaType"]), digest, len(data))
        return desc

    root = by_digest.get(top.digest)
    new = convert(root) if root is not None else None
    if new is None:
        return OciView(top, top)
    return OciView(replace(new, platform=top.platform), top, blobs)
