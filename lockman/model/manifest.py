"""Manifests: media types, descriptors, platforms, and digest checks. Pure: no I/O.

Digests are always computed over the exact bytes received; JSON is parsed only to read
descriptors and is never re-serialised. Errors name the place inside the manifest
(``where="manifests[3]"``) but not the image: the caller that fetched it adds that with
:meth:`~lockman.errors.LockmanError.with_subject`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lockman import safejson
from lockman.errors import (
    DescriptorMismatch,
    SizeMismatch,
    UnsupportedMediaType,
    VerificationError,
)
from lockman.model.digest import Digest
from lockman.model.reference import is_digest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_TYPES = INDEX_TYPES | IMAGE_TYPES
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})

# Index types first: leaving them out makes some registries answer with one platform's
# manifest, whose digest is not what `docker pull` uses (go-containerregistry#271).
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # containerd's limit

# Registry-supplied words end up in lockfiles, terminals and PR bodies, so each is held to its
# grammar. Media types: RFC 6838 ``type/subtype`` restricted names (the OCI spec requires it).
# Platform os, architecture and variant: the OCI spec takes GOOS/GOARCH values, so a token of
# letters, digits and ``._+-``. Anything else (a newline, an escape, a lone surrogate) is refused.
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
MEDIA_TYPE_RE = re.compile(rf"{_RESTRICTED_NAME}/{_RESTRICTED_NAME}")
PLATFORM_WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def _media_type(value: str, where: str, field_name: str = "mediaType") -> str:
    if not MEDIA_TYPE_RE.fullmatch(value):
        raise VerificationError(f"{field_name} {value[:80]!r} is not a valid media type", where=where)
    return value


def _platform(p: dict[str, Any], where: str) -> Platform:
    words = {k: p.get(k) for k in ("os", "architecture", "variant")}
    for key, value in words.items():
        if value is None or (key == "variant" and value == ""):
            continue
        if not isinstance(value, str) or not PLATFORM_WORD_RE.fullmatch(value):
            raise VerificationError(f"platform {key} {str(value)[:80]!r} is not a valid value", where=where)
    return Platform(p["os"], p["architecture"], words["variant"] or None)


def sha256_digest(data: bytes) -> str:
    return Digest.of(data)


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    return Digest.of(data, algorithm)


def check_digest(data: bytes, expected: str) -> None:
    """Raise :class:`VerificationError` unless ``data`` hashes to ``expected``."""
    Digest.parse(expected).check(data)


def check_descriptor(descriptor: Descriptor, manifest: Manifest) -> None:
    """The manifest fetched for a descriptor must be what the descriptor says it is.

    A registry (or an index) that labels content one way and serves another is not trusted:
    media type and size (when known) must agree, the digest was already checked on fetch.
    """
    if descriptor.media_type in MANIFEST_TYPES and descriptor.media_type != manifest.media_type:
        raise DescriptorMismatch(
            f"descriptor says {descriptor.media_type} but the manifest {manifest.digest} "
            f"is {manifest.media_type}"
        )
    if descriptor.size and descriptor.size != len(manifest.raw):
        raise SizeMismatch(
            f"descriptor says {descriptor.size} bytes but the manifest {manifest.digest} "
            f"has {len(manifest.raw)}"
        )


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]`` as docker's ``--platform`` takes it."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"invalid platform {text!r}: expected os/arch[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    artifact_type: str | None = None

    @property
    def is_attestation(self) -> bool:
        """Buildkit attestations: `unknown/unknown` platform or the reference-type annotation."""
        if self.annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            return True
        p = self.platform
        return p is not None and p.os == "unknown" and p.architecture == "unknown"


@dataclass(frozen=True)
class Manifest:
    """A manifest or index with the exact bytes it was parsed from."""

    media_type: str
    digest: str
    raw: bytes
    manifests: tuple[Descriptor, ...] = ()
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def platform_children(self) -> list[Descriptor]:
        """Children that name a real platform (attestations and platform-less entries skipped)."""
        return [d for d in self.manifests if d.platform is not None and not d.is_attestation]


def _descriptor(obj: Any, where: str) -> Descriptor:
    if not isinstance(obj, dict):
        raise VerificationError("descriptor is not an object", where=where)
    media_type, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
    if not isinstance(media_type, str) or not isinstance(digest, str):
        raise VerificationError("descriptor lacks mediaType or digest", where=where)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise VerificationError("descriptor has an invalid size", where=where)
    if not is_digest(digest):
        raise VerificationError(f"descriptor has an invalid digest {digest[:80]!r}", where=where)
    _media_type(media_type, where)
    platform = None
    p = obj.get("platform")
    if isinstance(p, dict) and isinstance(p.get("os"), str) and isinstance(p.get("architecture"), str):
        platform = _platform(p, where)
    annotations = obj.get("annotations") or {}
    if not isinstance(annotations, dict):
        annotations = {}
    artifact_type = obj.get("artifactType")
    if isinstance(artifact_type, str):
        _media_type(artifact_type, where, "artifactType")
    return Descriptor(
        media_type,
        digest,
        size,
        platform,
        {str(k): str(v) for k, v in annotations.items()},
        artifact_type if isinstance(artifact_type, str) else None,
    )


def parse_manifest(raw: bytes, content_type: str | None, digest: str) -> Manifest:
    """Parse manifest bytes whose digest has already been checked.

    The media type comes from the body's ``mediaType`` when present, else from the
    ``Content-Type`` header; when both name a manifest type they must agree, because a
    registry that labels content one way and serves another is not to be trusted.
    """
    content_type = (content_type or "").split(";")[0].strip() or None
    try:
        obj = safejson.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise VerificationError("manifest is not valid JSON") from None
    if not isinstance(obj, dict):
        raise VerificationError("manifest is not a JSON object")
    if obj.get("schemaVersion") == 1 or content_type in SCHEMA1_TYPES:
        raise UnsupportedMediaType(
            "Docker schema 1 manifests are not supported (deprecated and unverifiable); "
            "push the image again with a current client"
        )
    body_type = obj.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise VerificationError("manifest mediaType is not a string")
    if body_type and content_type in MANIFEST_TYPES and body_type != content_type:
        raise DescriptorMismatch(f"registry says Content-Type {content_type} but the manifest is {body_type}")
    media_type = body_type or content_type
    if media_type not in MANIFEST_TYPES:
        if media_type is None and "manifests" in obj:
            media_type = OCI_INDEX
        elif media_type is None and "config" in obj:
            media_type = OCI_MANIFEST
        else:
            raise UnsupportedMediaType(f"unsupported manifest media type {media_type!r}")
    artifact_type = obj.get("artifactType")
    subject = obj.get("subject")
    common: dict[str, Any] = {
        "media_type": media_type,
        "digest": digest,
        "raw": raw,
        "subject": _descriptor(subject, "subject") if subject is not None else None,
        "artifact_type": artifact_type if isinstance(artifact_type, str) else None,
    }
    if media_type in INDEX_TYPES:
        children = obj.get("manifests")
        if not isinstance(children, list):
            raise VerificationError("index has no manifests list")
        return Manifest(
            **common,
            manifests=tuple(_descriptor(c, f"manifests[{i}]") for i, c in enumerate(children)),
        )
    config = obj.get("config")
    layers = obj.get("layers", [])
    if not isinstance(layers, list):
        raise VerificationError("manifest layers is not a list")
    return Manifest(
        **common,
        config=_descriptor(config, "config") if config is not None else None,
        layers=tuple(_descriptor(c, f"layers[{i}]") for i, c in enumerate(layers)),
    )
