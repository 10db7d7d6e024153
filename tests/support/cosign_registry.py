"""Lay cosign signatures and Sigstore bundles out in a real docker-registry, as cosign does.

- ``store_manifest``: the ``dir:`` fixtures have a manifest but no blobs, so the registry would
  refuse a push; write it straight into distribution's filesystem storage instead (the layout
  of ``registry/storage/paths.go``: blob data under ``blobs/``, per-repository revision and tag
  links under ``repositories/<name>/_manifests/``). The registry has no cache configured, so it
  serves what is on disk.
- ``push_signatures``: the ``sha256-<hex>.sig`` OCI manifest, one layer per signature (blob =
  payload, descriptor annotations = the signature's annotations), pushed over HTTP.
- ``push_attestations``: the same layout at ``sha256-<hex>.att``, one DSSE envelope per layer.
- ``attach_bundle``: a Sigstore bundle as an OCI 1.1 referrer manifest, listed in the
  ``sha256-<hex>`` fallback index (docker-registry 2.8 has no referrers API).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from lockman.signatures.cosign import SignatureLayer, signature_tag
from tests.support.registry import OCI_INDEX, OCI_MANIFEST, Registry, sha256
from tests.support.signing_helpers import TESTDATA, FakeFulcio, FakeRekor

BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
COSIGN_CONFIG = b'{"architecture":"","created":"0001-01-01T00:00:00Z","os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}'


def _link(path: Path, digest: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(digest)


def store_manifest(registry: Registry, repo: str, tag: str, manifest: bytes) -> str:
    """Write ``manifest`` into the registry's storage under ``repo:tag``; return its digest."""
    digest = sha256(manifest)
    hex_ = digest.split(":")[1]
    v2 = registry.root / "data" / "docker" / "registry" / "v2"
    blob = v2 / "blobs" / "sha256" / hex_[:2] / hex_ / "data"
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(manifest)
    manifests = v2 / "repositories" / repo / "_manifests"
    _link(manifests / "revisions" / "sha256" / hex_ / "link", digest)
    _link(manifests / "tags" / tag / "current" / "link", digest)
    _link(manifests / "tags" / tag / "index" / "sha256" / hex_ / "link", digest)
    return digest


def store_fixture(registry: Registry, repo: str, tag: str, fixture: str) -> str:
    return store_manifest(registry, repo, tag, (TESTDATA / fixture / "manifest.json").read_bytes())


def push_signatures(
    registry: Registry, repo: str, digest: str, layers: list[SignatureLayer], tag: str | None = None
) -> str:
    """Push the ``.sig`` manifest for ``digest`` (or under ``tag``, e.g. the ``.att`` one),
    replacing any; return its digest."""
    config_digest = registry.push_blob(repo, COSIGN_CONFIG)
    descs = []
    for layer in layers:
        d = registry.push_blob(repo, layer.payload)
        desc = {"mediaType": layer.media_type, "size": len(layer.payload), "digest": d}
        if layer.annotations:
            desc["annotations"] = dict(layer.annotations)
        descs.append(desc)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "size": len(COSIGN_CONFIG),
                "digest": config_digest,
            },
            "layers": descs,
        }
    ).encode()
    return registry.push_manifest(repo, tag or signature_tag(digest), manifest, OCI_MANIFEST)


def push_attestations(registry: Registry, repo: str, digest: str, layers: list[SignatureLayer]) -> str:
    """Push the ``.att`` manifest ``cosign attest`` writes for ``digest``; return its digest."""
    from lockman.signatures.attestation import attestation_tag

    return push_signatures(registry, repo, digest, layers, attestation_tag(digest))


def referrer_manifest(registry: Registry, repo: str, subject: dict, bundle: bytes) -> tuple[bytes, str]:
    """Push a bundle referrer manifest for ``subject`` (a descriptor); return (bytes, digest)."""
    empty = registry.push_blob(repo, b"{}")
    layer = registry.push_blob(repo, bundle)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": BUNDLE_TYPE,
            "config": {"mediaType": EMPTY_TYPE, "size": 2, "digest": empty},
            "layers": [{"mediaType": BUNDLE_TYPE, "size": len(bundle), "digest": layer}],
            "subject": subject,
            "annotations": {"dev.sigstore.bundle.content": "dsse-envelope"},
        }
    ).encode()
    digest = registry.push_manifest(repo, sha256(manifest), manifest, OCI_MANIFEST)
    return manifest, digest


def referrers_index(entries: list[tuple[bytes, str]]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "size": len(m), "digest": d, "artifactType": BUNDLE_TYPE}
                for m, d in entries
            ],
        }
    ).encode()


def attach_bundles(
    registry: Registry, repo: str, digest: str, media_type: str, size: int, bundles: list[bytes]
) -> bytes:
    """Attach bundles to ``digest`` and write the ``sha256-<hex>`` fallback index; return it."""
    subject = {"mediaType": media_type, "size": size, "digest": digest}
    entries = [referrer_manifest(registry, repo, subject, b) for b in bundles]
    index = referrers_index(entries)
    registry.push_manifest(repo, digest.replace(":", "-"), index, OCI_INDEX)
    return index


# ---------------------------------------------------------------- trust material on disk


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def trusted_root_json(rekor: FakeRekor | None = None, fulcio: FakeFulcio | None = None) -> bytes:
    """A Sigstore ``trusted_root.json`` trusting the forged Rekor, Fulcio CA and CT log."""
    start = {"start": "2020-01-01T00:00:00Z"}
    doc: dict = {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [],
        "certificateAuthorities": [],
        "ctlogs": [],
    }
    if rekor is not None:
        doc["tlogs"].append(
            {
                "baseUrl": "https://rekor.lockman.test",
                "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": _b64(_spki(rekor.key.public_key())), "validFor": start},
                "logId": {"keyId": _b64(rekor.log_id)},
            }
        )
    if fulcio is not None:
        chain = [fulcio.intermediate, fulcio.root]
        doc["certificateAuthorities"].append(
            {
                "uri": "https://fulcio.lockman.test",
                "certChain": {
                    "certificates": [
                        {"rawBytes": _b64(c.public_bytes(serialization.Encoding.DER))} for c in chain
                    ]
                },
                "validFor": start,
            }
        )
        doc["ctlogs"].append(
            {
                "baseUrl": "https://ctfe.lockman.test",
                "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": _b64(_spki(fulcio.ct_key.public_key())), "validFor": start},
                "logId": {"keyId": _b64(fulcio.ct_log_id)},
            }
        )
    return json.dumps(doc, indent=2).encode()
