"""Test helpers: read the cosign fixtures, and forge a private Sigstore (CA, CT log, Rekor).

The forged pieces follow the real formats byte for byte, so the verifier's code paths for SETs,
SCTs, chains and DSSE run against algorithms the real fixtures lack (P-384, RSA, Ed25519).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Union

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from lockman.signatures.cosign import (
    ANNOTATION_BUNDLE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_CHAIN,
    ANNOTATION_SIGNATURE,
    SIMPLE_SIGNING_MEDIA_TYPE,
    SignatureLayer,
)
from lockman.signatures.keys import key_id
from lockman.signatures.trust import CertificateAuthority, LogKey, TrustedRoot
from tests.support.paths import ROOT as REPO

TESTDATA = REPO / "testdata" / "cosign"
SIGSTORE_JSON_PREFIX = b"\x00sigstore-json\n"

PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]  # noqa: UP007


# ---------------------------------------------------------------- fixtures on disk


def read_signature_file(path: Path) -> SignatureLayer:
    """Parse a containers/image ``signature-N`` file into the layer cosign would store."""
    raw = path.read_bytes()
    assert raw.startswith(SIGSTORE_JSON_PREFIX), path
    doc = json.loads(raw[len(SIGSTORE_JSON_PREFIX) :])
    return SignatureLayer(
        media_type=doc["mimeType"],
        payload=base64.b64decode(doc["payload"]),
        annotations=doc.get("annotations", {}),
    )


def fixture_layers(name: str) -> list[SignatureLayer]:
    """All ``signature-N`` of a ``dir-img-*`` fixture, in N order."""
    files = sorted((TESTDATA / name).glob("signature-*"), key=lambda p: int(p.name.split("-")[1]))
    return [read_signature_file(p) for p in files]


def fixture_digest(name: str) -> str:
    """sha256 of a fixture's exact ``manifest.json`` bytes."""
    return "sha256:" + hashlib.sha256((TESTDATA / name / "manifest.json").read_bytes()).hexdigest()


def fixture_bytes(name: str) -> bytes:
    return (TESTDATA / name).read_bytes()


# ---------------------------------------------------------------- keys and signing


def new_key(alg: str) -> PrivateKey:
    """A fresh private key: ``p256``, ``p384``, ``rsa`` or ``ed25519``."""
    if alg == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if alg == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(alg)


def sign(key: PrivateKey, data: bytes, hash_alg: hashes.HashAlgorithm | None = None) -> bytes:
    """Sign as cosign/sigstore-go would for this key type (``hash_alg`` overrides ECDSA's)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        default = hashes.SHA384() if key.curve.name == "secp384r1" else hashes.SHA256()
        return key.sign(data, ec.ECDSA(hash_alg or default))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data)


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def simple_signing_payload(digest: str, reference: str = "registry.test/app") -> bytes:
    """A cosign simple-signing payload, with cosign's key order and compact separators."""
    doc = {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


# ---------------------------------------------------------------- a private Rekor


@dataclass
class FakeRekor:
    """Signs SETs like Rekor: ECDSA P-256 over RFC 8785 JSON of the entry payload."""

    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    next_index: int = 1000

    @property
    def log_id(self) -> bytes:
        return key_id(self.key.public_key())

    def log_key(self) -> LogKey:
        return LogKey(log_id=self.log_id, key=self.key.public_key())

    def payload(self, body: dict[str, Any], integrated_time: int) -> dict[str, Any]:
        self.next_index += 1
        return {
            "body": b64(json.dumps(body, separators=(",", ":")).encode()),
            "integratedTime": integrated_time,
            "logID": self.log_id.hex(),
            "logIndex": self.next_index,
        }

    def set_for(self, payload: dict[str, Any]) -> bytes:
        return self.key.sign(rfc8785.dumps(payload), ec.ECDSA(hashes.SHA256()))

    def cosign_annotation(self, body: dict[str, Any], integrated_time: int) -> str:
        payload = self.payload(body, integrated_time)
        return json.dumps({"SignedEntryTimestamp": b64(self.set_for(payload)), "Payload": payload})

    def checkpoint(self, tree_size: int, root_hash: bytes, origin: str = "rekor.lockman.test") -> str:
        """A signed note as Rekor writes it: origin, size, root; signature line with the key hint."""
        text = f"{origin}\n{tree_size}\n{b64(root_hash)}\n"
        sig = self.key.sign(text.encode(), ec.ECDSA(hashes.SHA256()))
        return f"{text}\n\u2014 {origin} {b64(self.log_id[:4] + sig)}\n"

    def inclusion_proof(self, body_b64: str, sibling: bytes = b"other entry") -> dict[str, Any]:
        """Bundle ``inclusionProof`` for the body as leaf 0 of a two-leaf tree, with checkpoint."""
        leaf = hashlib.sha256(b"\x00" + base64.b64decode(body_b64)).digest()
        other = hashlib.sha256(b"\x00" + sibling).digest()
        root = hashlib.sha256(b"\x01" + leaf + other).digest()
        return {
            "logIndex": "0",
            "rootHash": b64(root),
            "treeSize": "2",
            "hashes": [b64(other)],
            "checkpoint": {"envelope": self.checkpoint(2, root)},
        }

    def bundle_entry(self, body: dict[str, Any], integrated_time: int, kind: str) -> dict[str, Any]:
        payload = self.payload(body, integrated_time)
        return {
            "logIndex": str(payload["logIndex"]),
            "logId": {"keyId": b64(self.log_id)},
            "kindVersion": {"kind": kind, "version": "0.0.1"},
            "integratedTime": str(integrated_time),
            "inclusionPromise": {"signedEntryTimestamp": b64(self.set_for(payload))},
            "canonicalizedBody": payload["body"],
        }


def hashedrekord_body(signature: bytes, verifier_pem: bytes, payload: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}},
            "signature": {"content": b64(signature), "publicKey": {"content": b64(verifier_pem)}},
        },
    }


def dsse_body(payload: bytes, signatures: list[bytes], verifier_pem: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": "00" * 32},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            "signatures": [{"signature": b64(s), "verifier": b64(verifier_pem)} for s in signatures],
        },
    }


# ---------------------------------------------------------------- a private Fulcio + CT log

OID_SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
OID_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OID_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def _der_utf8(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 128
    return bytes([0x0C, len(raw)]) + raw


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lockman.test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass
class FakeFulcio:
    """A root + intermediate CA, a CT log, and leaf issuance with an embedded precert SCT."""

    root_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP384R1())
    )
    inter_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP384R1())
    )
    ct_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def __post_init__(self) -> None:
        self.reissue()

    def reissue(self, root: dict[str, Any] | None = None, intermediate: dict[str, Any] | None = None) -> None:
        """(Re)build root and intermediate, each with ``ca_cert`` keyword overrides (forged CAs)."""
        self.root = ca_cert("test-root", self.root_key, None, self.root_key, **(root or {}))
        self.intermediate = ca_cert(
            "test-intermediate", self.inter_key, self.root, self.root_key,
            **{"path_length": 0, **(intermediate or {})},
        )

    @property
    def ct_log_id(self) -> bytes:
        return key_id(self.ct_key.public_key())

    def leaf(
        self,
        subject_key: PrivateKey,
        identity: str = "signer@lockman.test",
        issuer: str = "https://issuer.lockman.test",
        not_before: datetime = T0 - timedelta(minutes=5),
        lifetime: timedelta = timedelta(minutes=10),
        eku: ObjectIdentifier = ExtendedKeyUsageOID.CODE_SIGNING,
        with_sct: bool = True,
        issuer_v1: str | None = None,
        issuer_v2_der: bytes | None = None,
        omit: tuple[str, ...] = (),
        ca: bool | None = None,
        sct_hash: int = 4,
        extensions: tuple[tuple[str, bytes], ...] = (),
    ) -> x509.Certificate:
        """Issue a Fulcio-shaped leaf (email SAN, issuer OIDs, codeSigning, precert SCT).

        Forgeries: ``omit`` any of ``"eku"``, ``"issuer_v1"``, ``"issuer_v2"``; ``issuer_v2_der``
        as raw extension bytes; ``ca`` adds basicConstraints; ``sct_hash`` is the SCT's TLS hash id.
        """
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.intermediate.subject)
            .public_key(subject_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_before + lifetime)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(identity)]
                    if "://" in identity
                    else [x509.RFC822Name(identity)]
                ),
                critical=True,
            )
        )
        builder = builder.add_extension(_aki(self.inter_key), critical=False)
        if "eku" not in omit:
            builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        if ca is not None:
            builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        if "issuer_v1" not in omit:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(OID_ISSUER_V1, (issuer_v1 or issuer).encode()), critical=False
            )
        if "issuer_v2" not in omit:
            raw = _der_utf8(issuer) if issuer_v2_der is None else issuer_v2_der
            builder = builder.add_extension(x509.UnrecognizedExtension(OID_ISSUER_V2, raw), critical=False)
        for oid, value in extensions:  # e.g. Fulcio's GitHub workflow claims
            builder = builder.add_extension(
                x509.UnrecognizedExtension(ObjectIdentifier(oid), value), critical=False
            )
        if not with_sct:
            return builder.sign(self.inter_key, hashes.SHA384())
        precert = builder.sign(self.inter_key, hashes.SHA384())
        sct = self._sct(precert.tbs_certificate_bytes, not_before, sct_hash)
        tls_list = struct.pack("!H", len(sct)) + sct
        tls_list = struct.pack("!H", len(tls_list)) + tls_list
        ext_value = (
            bytes([0x04, len(tls_list)]) + tls_list
            if len(tls_list) < 128
            else (bytes([0x04, 0x81, len(tls_list)]) + tls_list)
        )
        return builder.add_extension(
            x509.UnrecognizedExtension(OID_SCT_LIST, ext_value), critical=False
        ).sign(self.inter_key, hashes.SHA384())

    def _sct(self, tbs: bytes, when: datetime, hash_id: int = 4) -> bytes:
        millis = int(when.timestamp() * 1000)
        issuer_hash = key_id(self.inter_key.public_key())
        signed = (
            struct.pack("!BBQH", 0, 0, millis, 1)
            + issuer_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + struct.pack("!H", 0)
        )
        alg: hashes.HashAlgorithm = hashes.SHA256() if hash_id == 4 else hashes.SHA384()
        sig = self.ct_key.sign(signed, ec.ECDSA(alg))
        return (
            bytes([0])
            + self.ct_log_id
            + struct.pack("!Q", millis)
            + struct.pack("!H", 0)
            + bytes([hash_id, 3])
            + struct.pack("!H", len(sig))
            + sig
        )

    def trusted_root(self, rekor: FakeRekor | None = None, chain: str = "both") -> TrustedRoot:
        """Trust the root (``chain="root"``) or intermediate+root (``"both"``), CT log, Rekor."""
        certs = (self.root,) if chain == "root" else (self.intermediate, self.root)
        return TrustedRoot(
            tlogs=(rekor.log_key(),) if rekor else (),
            certificate_authorities=(CertificateAuthority(chain=certs),),
            ctlogs=(LogKey(log_id=self.ct_log_id, key=self.ct_key.public_key()),),
            source="test root",
        )


def ca_cert(
    cn: str,
    key: PrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: PrivateKey,
    *,
    ca: bool | None = True,
    path_length: int | None = None,
    key_cert_sign: bool | None = True,
    not_before: datetime = T0 - timedelta(days=365),
    not_after: datetime = T0 + timedelta(days=365),
) -> x509.Certificate:
    """A CA certificate, or a forged one: ``ca=False`` (or None: no basicConstraints at all),
    ``key_cert_sign=False`` (None: no keyUsage), a short ``path_length``, a narrow validity."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.subject if issuer is not None else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    # Key identifiers as real Fulcio CAs carry them (the Web PKI profile requires the AKI below a root).
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if issuer is not None:
        builder = builder.add_extension(_aki(issuer_key), critical=False)
    if ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
    if key_cert_sign is not None:
        builder = builder.add_extension(_ca_usage(key_cert_sign), critical=True)
    return builder.sign(issuer_key, hashes.SHA384())  # type: ignore[arg-type]


def _aki(issuer_key: PrivateKey) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())  # type: ignore[arg-type]


def _ca_usage(key_cert_sign: bool = True) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def keyed_layer(
    key: PrivateKey,
    digest: str,
    rekor: FakeRekor | None,
    integrated_time: int = int(T0.timestamp()),
) -> SignatureLayer:
    """A ``.sig`` layer signed with ``key``, with a SET from ``rekor`` if given."""
    payload = simple_signing_payload(digest)
    sig = sign(key, payload)
    annotations = {ANNOTATION_SIGNATURE: b64(sig)}
    if rekor is not None:
        body = hashedrekord_body(sig, public_pem(key), payload)
        annotations[ANNOTATION_BUNDLE] = rekor.cosign_annotation(body, integrated_time)
    return SignatureLayer(SIMPLE_SIGNING_MEDIA_TYPE, payload, annotations)


def keyless_layer(
    key: PrivateKey,
    leaf: x509.Certificate,
    fulcio: FakeFulcio,
    digest: str,
    rekor: FakeRekor,
    integrated_time: int = int(T0.timestamp()),
) -> SignatureLayer:
    """A ``.sig`` layer signed by a Fulcio leaf, with chain and SET annotations."""
    payload = simple_signing_payload(digest)
    sig = sign(key, payload)
    body = hashedrekord_body(sig, cert_pem(leaf), payload)
    return SignatureLayer(
        SIMPLE_SIGNING_MEDIA_TYPE,
        payload,
        {
            ANNOTATION_SIGNATURE: b64(sig),
            ANNOTATION_CERTIFICATE: cert_pem(leaf).decode(),
            ANNOTATION_CHAIN: (cert_pem(fulcio.intermediate) + cert_pem(fulcio.root)).decode(),
            ANNOTATION_BUNDLE: rekor.cosign_annotation(body, integrated_time),
        },
    )


def make_bundle(
    key: PrivateKey,
    digest: str,
    rekor: FakeRekor | None,
    leaf: x509.Certificate | None = None,
    predicate_type: str = "https://sigstore.dev/cosign/sign/v1",
    integrated_time: int = int(T0.timestamp()),
    predicate: dict[str, Any] | None = None,
) -> bytes:
    """A Sigstore bundle v0.3 with a DSSE in-toto statement about ``digest``."""
    from lockman.signatures.bundle import pae

    payload = in_toto_statement(digest, predicate_type, predicate)
    sig = sign(key, pae("application/vnd.in-toto+json", payload))
    if leaf is not None:
        material: dict[str, Any] = {
            "certificate": {"rawBytes": b64(leaf.public_bytes(serialization.Encoding.DER))}
        }
        verifier = cert_pem(leaf)
    else:
        material = {"publicKey": {"hint": "test"}}
        verifier = public_pem(key)
    if rekor is not None:
        entry = rekor.bundle_entry(dsse_body(payload, [sig], verifier), integrated_time, "dsse")
        entry["inclusionProof"] = rekor.inclusion_proof(entry["canonicalizedBody"])  # v0.2+ needs it
        material["tlogEntries"] = [entry]
    doc = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": material,
        "dsseEnvelope": {
            "payload": b64(payload),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": b64(sig)}],
        },
    }
    return json.dumps(doc).encode()


def in_toto_statement(digest: str, predicate_type: str, predicate: dict[str, Any] | None = None) -> bytes:
    """An in-toto v1 statement about the image ``digest``."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "registry.test/app", "digest": {"sha256": digest.split(":")[1]}}],
        "predicateType": predicate_type,
        "predicate": predicate or {},
    }
    return json.dumps(statement).encode()


def intoto_body(envelope: bytes, verifier_pem: bytes, version: str = "0.0.2") -> dict[str, Any]:
    """Rekor's canonical ``intoto`` body for a DSSE ``envelope`` as cosign uploads it.

    0.0.2 keeps the envelope with payload and signatures base64-encoded once more; 0.0.1 keeps
    only the hashes of the envelope and payload, and the signer.
    """
    env = json.loads(envelope)
    payload = base64.b64decode(env["payload"])
    hashes_ = {
        "hash": {"algorithm": "sha256", "value": hashlib.sha256(envelope).hexdigest()},
        "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
    }
    if version == "0.0.1":
        return {"apiVersion": "0.0.1", "kind": "intoto", "spec": {"content": hashes_, "publicKey": b64(verifier_pem)}}
    logged = {
        "payloadType": env["payloadType"],
        "payload": b64(env["payload"].encode()),
        "signatures": [{"sig": b64(s["sig"].encode()), "publicKey": b64(verifier_pem)} for s in env["signatures"]],
    }
    return {"apiVersion": "0.0.2", "kind": "intoto", "spec": {"content": {"envelope": logged, **hashes_}}}


def attestation_layer(
    key: PrivateKey,
    digest: str,
    rekor: FakeRekor | None,
    predicate_type: str = "https://slsa.dev/provenance/v1",
    *,
    leaf: x509.Certificate | None = None,
    fulcio: FakeFulcio | None = None,
    predicate: dict[str, Any] | None = None,
    intoto_version: str = "0.0.2",
    integrated_time: int = int(T0.timestamp()),
) -> SignatureLayer:
    """A ``.att`` layer as ``cosign attest`` writes it: a DSSE envelope blob signed with ``key``
    (by the Fulcio ``leaf`` if given), the empty signature annotation, a SET for an ``intoto``
    entry from ``rekor`` if given, and keyless the certificate and chain."""
    from lockman.signatures.attestation import DSSE_MEDIA_TYPE
    from lockman.signatures.bundle import pae

    payload = in_toto_statement(digest, predicate_type, predicate)
    sig = sign(key, pae("application/vnd.in-toto+json", payload))
    envelope = json.dumps(
        {"payloadType": "application/vnd.in-toto+json", "payload": b64(payload), "signatures": [{"keyid": "", "sig": b64(sig)}]},
        separators=(",", ":"),
    ).encode()
    annotations = {ANNOTATION_SIGNATURE: "", "predicateType": predicate_type}
    verifier = public_pem(key) if leaf is None else cert_pem(leaf)
    if leaf is not None:
        assert fulcio is not None
        annotations[ANNOTATION_CERTIFICATE] = cert_pem(leaf).decode()
        annotations[ANNOTATION_CHAIN] = (cert_pem(fulcio.intermediate) + cert_pem(fulcio.root)).decode()
    if rekor is not None:
        body = intoto_body(envelope, verifier, intoto_version)
        annotations[ANNOTATION_BUNDLE] = rekor.cosign_annotation(body, integrated_time)
    return SignatureLayer(DSSE_MEDIA_TYPE, envelope, annotations)


def edit_envelope(layer: SignatureLayer, edit: Callable[[dict], None]) -> SignatureLayer:
    """The layer with its DSSE envelope changed by ``edit`` (re-serialised compactly)."""
    env = json.loads(layer.payload)
    edit(env)
    return replace(layer, payload=json.dumps(env, separators=(",", ":")).encode())


def flip_sig(env: dict) -> None:
    """Flip one bit of the envelope's first signature."""
    raw = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    raw[-3] ^= 1
    env["signatures"][0]["sig"] = b64(bytes(raw))


def bundle_from(layer: SignatureLayer, donor: SignatureLayer) -> SignatureLayer:
    """``layer`` carrying ``donor``'s Rekor bundle annotation."""
    return replace(layer, annotations={**layer.annotations, ANNOTATION_BUNDLE: donor.annotations[ANNOTATION_BUNDLE]})
