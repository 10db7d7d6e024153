"""lockman.model.manifest: which manifests are accepted, what is read from them, and which error
class each refusal is. Pure: bytes in, a Manifest or an error out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lockman.errors import (
    DescriptorMismatch,
    DigestMismatch,
    SizeMismatch,
    UnsupportedMediaType,
    VerificationError,
)
from lockman.model.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    Platform,
    check_descriptor,
    check_digest,
    compute_digest,
    parse_manifest,
    sha256_digest,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1, "size": 10}
LAYER = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 20}


def image(**extra: Any) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG, "layers": [LAYER], **extra}


def child(platform: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": D1, "size": 100, **extra}
    if platform is not None:
        d["platform"] = platform
    return d


def index(*children: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(children), **extra}


def parse(obj: Any, content_type: str | None = None) -> Manifest:
    raw = json.dumps(obj).encode()
    return parse_manifest(raw, content_type, sha256_digest(raw))


# -- media types accepted ------------------------------------------------------------------------
@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_image_manifest_types_are_read_with_config_and_layers(media_type: str) -> None:
    m = parse({**image(), "mediaType": media_type}, media_type)
    assert m.media_type == media_type and not m.is_index
    assert m.config == Descriptor(CONFIG["mediaType"], D1, 10)
    assert m.layers == (Descriptor(LAYER["mediaType"], D2, 20),)
    assert m.manifests == ()


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_index_types_are_read_with_their_children(media_type: str) -> None:
    m = parse(
        {**index(child({"os": "linux", "architecture": "arm64", "variant": "v8"})), "mediaType": media_type}
    )
    assert m.is_index and m.media_type == media_type
    assert m.manifests == (Descriptor(OCI_MANIFEST, D1, 100, Platform("linux", "arm64", "v8")),)
    assert m.config is None and m.layers == ()


def test_raw_bytes_and_digest_are_kept_exactly() -> None:
    raw = b'{"schemaVersion":2,   "mediaType":"%s","manifests":[]}' % OCI_INDEX.encode()
    m = parse_manifest(raw, None, "sha256:" + "f" * 64)
    assert m.raw is raw and m.digest == "sha256:" + "f" * 64  # never re-serialised or re-hashed


def test_media_type_from_content_type_when_the_body_has_none() -> None:
    body = image()
    del body["mediaType"]
    assert parse(body, f"{DOCKER_MANIFEST}; charset=utf-8").media_type == DOCKER_MANIFEST


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"schemaVersion": 2, "manifests": []}, OCI_INDEX),
        ({"schemaVersion": 2, "config": CONFIG}, OCI_MANIFEST),
    ],
)
def test_untyped_body_without_content_type_is_recognised_by_its_shape(
    body: dict[str, Any], expected: str
) -> None:
    assert parse(body, None).media_type == expected
    assert parse(body, " ; charset=utf-8").media_type == expected  # an empty type is no type


# -- media types refused -------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", [DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED])
def test_docker_schema1_by_content_type_is_unsupported(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        parse(image(), content_type)
    assert caught.value.subject is None and caught.value.kind == "unsupported-media-type"  # the caller names it


def test_docker_schema1_by_schema_version_is_unsupported_whatever_the_header() -> None:
    with pytest.raises(UnsupportedMediaType):
        parse({"schemaVersion": 1, "name": "app", "tag": "v1", "fsLayers": []}, OCI_MANIFEST)


@pytest.mark.parametrize(
    "media_type", ["application/vnd.oci.image.config.v1+json", "application/json", "text/html"]
)
def test_unknown_media_type_in_the_body_is_unsupported(media_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        parse({**image(), "mediaType": media_type})


def test_body_without_type_or_shape_is_unsupported() -> None:
    with pytest.raises(UnsupportedMediaType):
        parse({"schemaVersion": 2, "layers": []}, "text/plain")


def test_body_type_disagreeing_with_content_type_is_a_descriptor_mismatch() -> None:
    with pytest.raises(DescriptorMismatch):
        parse(image(), DOCKER_MANIFEST)
    with pytest.raises(DescriptorMismatch):
        parse(index(), OCI_MANIFEST)


def test_non_manifest_content_type_does_not_override_the_body() -> None:
    assert parse(image(), "application/octet-stream").media_type == OCI_MANIFEST


@pytest.mark.parametrize("raw", [b"not json", b"\xff\xfe", b"[]", b'"manifest"', b"null"])
def test_not_a_json_object_is_a_verification_error(raw: bytes) -> None:
    with pytest.raises(VerificationError) as caught:
        parse_manifest(raw, OCI_MANIFEST, sha256_digest(raw))
    assert type(caught.value) is VerificationError and caught.value.subject is None


def test_non_string_media_type_is_refused() -> None:
    with pytest.raises(VerificationError, match="mediaType is not a string"):
        parse({**image(), "mediaType": 7})


def test_index_without_a_manifests_list_is_refused() -> None:
    with pytest.raises(VerificationError, match="no manifests list"):
        parse({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": {"a": 1}})


def test_layers_that_are_not_a_list_are_refused() -> None:
    with pytest.raises(VerificationError, match="layers is not a list"):
        parse(image(layers={"0": LAYER}))


# -- descriptor validation -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        "not an object",
        {"digest": D1, "size": 1},  # no mediaType
        {"mediaType": OCI_MANIFEST, "size": 1},  # no digest
        {"mediaType": OCI_MANIFEST, "digest": D1},  # no size
        {"mediaType": OCI_MANIFEST, "digest": D1, "size": -1},
        {"mediaType": OCI_MANIFEST, "digest": D1, "size": True},
        {"mediaType": OCI_MANIFEST, "digest": D1, "size": 1.5},
        {"mediaType": OCI_MANIFEST, "digest": "sha256:abc", "size": 1},
        {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "G" * 64, "size": 1},
        {"mediaType": "no-slash", "digest": D1, "size": 1},
        {"mediaType": "application/x\nInjected: 1", "digest": D1, "size": 1},
        {"mediaType": "application/\x1b[31mred", "digest": D1, "size": 1},
        {**child(), "artifactType": "not a media type"},
    ],
)
def test_malformed_child_descriptor_is_refused_and_named(bad: Any) -> None:
    with pytest.raises(VerificationError) as caught:
        parse(index(child(), bad))
    assert (caught.value.subject, caught.value.where) == (None, "manifests[1]")


def test_malformed_config_and_layer_descriptors_name_their_place() -> None:
    with pytest.raises(VerificationError) as caught:
        parse(image(config={**CONFIG, "size": -5}))
    assert (caught.value.subject, caught.value.where) == (None, "config")
    with pytest.raises(VerificationError) as caught:
        parse(image(layers=[LAYER, {**LAYER, "digest": "md5:x"}]))
    assert (caught.value.subject, caught.value.where) == (None, "layers[1]")


@pytest.mark.parametrize(
    "platform",
    [
        {"os": "linux\n", "architecture": "amd64"},
        {"os": "linux", "architecture": "amd 64"},
        {"os": "linux", "architecture": "amd64", "variant": "v8\x1b"},
        {"os": "linux", "architecture": "amd64", "variant": 8},
        {"os": "", "architecture": "amd64"},
    ],
)
def test_platform_words_outside_their_grammar_are_refused(platform: dict[str, Any]) -> None:
    with pytest.raises(VerificationError, match="platform"):
        parse(index(child(platform)))


def test_platform_with_empty_variant_has_none() -> None:
    m = parse(index(child({"os": "linux", "architecture": "amd64", "variant": ""})))
    assert m.manifests[0].platform == Platform("linux", "amd64", None)


def test_incomplete_platform_object_is_no_platform() -> None:
    m = parse(index(child({"os": "linux"}), child({"architecture": "amd64"})))
    assert [d.platform for d in m.manifests] == [None, None]


def test_annotations_are_kept_as_strings_and_junk_annotations_dropped() -> None:
    m = parse(index(child(annotations={"a": "b", "n": 1}), child(annotations=["x"])))
    assert m.manifests[0].annotations == {"a": "b", "n": "1"}
    assert m.manifests[1].annotations == {}


# -- index children ------------------------------------------------------------------------------
def test_platform_children_skip_attestations_and_platformless_entries() -> None:
    amd = child({"os": "linux", "architecture": "amd64"})
    arm = {**child({"os": "linux", "architecture": "arm64"}), "digest": D2}
    unknown = child({"os": "unknown", "architecture": "unknown"})
    annotated = child(
        {"os": "linux", "architecture": "amd64"},
        annotations={"vnd.docker.reference.type": "attestation-manifest"},
    )
    m = parse(index(amd, unknown, arm, annotated, child()))
    assert [str(d.platform) for d in m.platform_children()] == ["linux/amd64", "linux/arm64"]
    assert [d.is_attestation for d in m.manifests] == [False, True, False, True, False]


# -- subject and artifactType (OCI 1.1) ----------------------------------------------------------
def test_subject_and_artifact_type_are_read() -> None:
    subject = {"mediaType": OCI_MANIFEST, "digest": D2, "size": 321}
    m = parse(image(subject=subject, artifactType="application/vnd.dev.cosign.artifact.sig.v1+json"))
    assert m.subject == Descriptor(OCI_MANIFEST, D2, 321)
    assert m.artifact_type == "application/vnd.dev.cosign.artifact.sig.v1+json"
    child_type = parse(index(child(artifactType="application/spdx+json"))).manifests[0].artifact_type
    assert child_type == "application/spdx+json"


def test_no_subject_is_none_and_a_bad_subject_is_refused() -> None:
    m = parse(image())
    assert m.subject is None and m.artifact_type is None
    with pytest.raises(VerificationError) as caught:
        parse(image(subject={"mediaType": OCI_MANIFEST, "digest": "sha256:short", "size": 1}))
    assert (caught.value.subject, caught.value.where) == (None, "subject")


def test_subject_on_an_index_is_read_too() -> None:
    m = parse(index(subject={"mediaType": OCI_MANIFEST, "digest": D2, "size": 1}))
    assert m.subject is not None and m.subject.digest == D2


# -- digests and descriptors ---------------------------------------------------------------------
def test_compute_digest_names_its_algorithm() -> None:
    assert sha256_digest(b"abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert compute_digest(b"abc", "sha512").startswith("sha512:ddaf35a1")


def test_check_digest_passes_and_fails_with_digest_mismatch() -> None:
    check_digest(b"abc", sha256_digest(b"abc"))
    check_digest(b"abc", compute_digest(b"abc", "sha512"))
    with pytest.raises(DigestMismatch) as caught:
        check_digest(b"abd", sha256_digest(b"abc"))
    assert caught.value.subject is None
    assert sha256_digest(b"abd") in str(caught.value)


def test_check_descriptor_media_type_and_size() -> None:
    raw = json.dumps(image()).encode()
    m = parse_manifest(raw, None, sha256_digest(raw))
    check_descriptor(Descriptor(OCI_MANIFEST, m.digest, len(raw)), m)
    check_descriptor(Descriptor(OCI_MANIFEST, m.digest, 0), m)  # size unknown
    check_descriptor(Descriptor("application/vnd.example+json", m.digest, len(raw)), m)
    with pytest.raises(DescriptorMismatch) as caught:
        check_descriptor(Descriptor(OCI_INDEX, m.digest, len(raw)), m)
    assert not isinstance(caught.value, SizeMismatch)
    with pytest.raises(SizeMismatch):
        check_descriptor(Descriptor(OCI_MANIFEST, m.digest, len(raw) + 1), m)


# -- Platform ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [("linux/amd64", Platform("linux", "amd64")), ("linux/arm/v7", Platform("linux", "arm", "v7"))],
)
def test_platform_parse_and_str_round_trip(text: str, expected: Platform) -> None:
    assert Platform.parse(text) == expected and str(expected) == text


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "linux/arm/v7/x", ""])
def test_platform_parse_refuses_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        Platform.parse(text)
