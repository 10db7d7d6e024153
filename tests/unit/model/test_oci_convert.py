"""OCI conversions of Docker-format manifests (what a layout names for skopeo, podman, umoci)."""

from __future__ import annotations

import hashlib
import json

from lockman.model.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    parse_manifest,
)
from lockman.model.oci_convert import ORIGINAL, oci_view

CFG = "sha256:" + "c" * 64
LAYER = "sha256:" + "1" * 64


def parsed(obj: dict) -> Manifest:
    raw = json.dumps(obj, indent=3).encode()
    return parse_manifest(raw, None, "sha256:" + hashlib.sha256(raw).hexdigest())


def image(media_type: str, cfg_type: str, layer_type: str) -> Manifest:
    return parsed(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": cfg_type, "digest": CFG, "size": 10},
            "layers": [{"mediaType": layer_type, "digest": LAYER, "size": 20, "urls": ["https://x"]}],
        }
    )


def top(m: Manifest) -> Descriptor:
    return Descriptor(m.media_type, m.digest, len(m.raw))


def docker_image() -> Manifest:
    return image(
        DOCKER_MANIFEST,
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    )


def test_oci_image_is_named_as_it_is() -> None:
    m = image(
        OCI_MANIFEST,
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    )
    view = oci_view(top(m), [m])
    assert not view.converted and view.top == top(m) and view.blobs == {}


def test_docker_image_converted_with_only_media_types_changed() -> None:
    m = docker_image()
    view = oci_view(top(m), [m])
    assert view.converted and view.original == top(m)
    data = view.blobs[view.top.digest]
    assert view.top.digest == "sha256:" + hashlib.sha256(data).hexdigest() and view.top.size == len(data)
    obj = json.loads(data)
    assert obj["mediaType"] == view.top.media_type == OCI_MANIFEST
    assert obj["config"] == {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": CFG,
        "size": 10,
    }
    assert obj["layers"] == [
        {
            "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "digest": LAYER,
            "size": 20,
            "urls": ["https://x"],
        }
    ]
    assert obj["annotations"] == {ORIGINAL: m.digest}
    assert oci_view(top(m), [m]) == view  # the same bytes every run


def test_docker_list_children_converted_and_renamed() -> None:
    child = docker_image()
    oci_child = image(OCI_MANIFEST, "application/vnd.oci.image.config.v1+json", "x/y")
    missing = "sha256:" + "9" * 64  # a child the walk did not fetch (another platform): kept
    lst = parsed(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST,
            "manifests": [
                {
                    "mediaType": DOCKER_MANIFEST,
                    "digest": child.digest,
                    "size": len(child.raw),
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
                {"mediaType": OCI_MANIFEST, "digest": oci_child.digest, "size": len(oci_child.raw)},
                {"mediaType": DOCKER_MANIFEST, "digest": missing, "size": 5},
            ],
        }
    )
    view = oci_view(top(lst), [child, oci_child, lst])
    assert view.top.media_type == OCI_INDEX
    assert len(view.blobs) == 2  # the list and its Docker child; the OCI child is untouched
    idx = json.loads(view.blobs[view.top.digest])
    first, second, third = idx["manifests"]
    assert first["mediaType"] == OCI_MANIFEST and first["platform"] == {
        "os": "linux",
        "architecture": "amd64",
    }
    assert json.loads(view.blobs[first["digest"]])["annotations"] == {ORIGINAL: child.digest}
    assert second == {"mediaType": OCI_MANIFEST, "digest": oci_child.digest, "size": len(oci_child.raw)}
    assert third == {"mediaType": DOCKER_MANIFEST, "digest": missing, "size": 5}
    assert idx["annotations"] == {ORIGINAL: lst.digest}


def test_oci_index_with_a_docker_child_is_converted_too() -> None:
    child = docker_image()
    idx = parsed(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": child.digest, "size": len(child.raw)}],
            "annotations": {"org.opencontainers.image.created": "2026"},
        }
    )
    view = oci_view(top(idx), [child, idx])
    assert view.converted
    obj = json.loads(view.blobs[view.top.digest])
    assert obj["annotations"] == {"org.opencontainers.image.created": "2026", ORIGINAL: idx.digest}
    assert obj["manifests"][0]["mediaType"] == OCI_MANIFEST
