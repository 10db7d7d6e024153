"""Rekor transparency log evidence, checked offline.

- SET (signed entry timestamp / inclusion promise): ECDSA by the Rekor key whose log id is
  ``logID``, over the RFC 8785 canonical JSON of
  ``{"body", "integratedTime", "logID", "logIndex"}``. It proves Rekor accepted the entry at
  ``integratedTime``, the time keyless certificates are checked at.
- Inclusion proof (RFC 6962 Merkle audit path) plus its signed checkpoint (see
  :mod:`lockman.signatures.checkpoint`). It proves the entry is in the log but does not
  authenticate ``integratedTime``: Rekor v2 entries have only this, so their time comes from an
  RFC 3161 timestamp (:mod:`lockman.signatures.timestamp`).
- The entry body must describe *our* signature: ``hashedrekord`` 0.0.1 (signature, key or
  certificate, sha256 of the payload), ``hashedrekord`` 0.0.2 (Rekor v2: digest, signature,
  DER verifier; for DSSE the digest is of the PAE), ``dsse`` 0.0.1 (payload hash, signatures +
  verifier) or ``intoto`` 0.0.2 (cosign attestations: the envelope with double-base64 signatures).

No online lookup is ever made: without a SET or proof the tlog requirement simply fails.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from lockman import safejson
from lockman.errors import InputError, VerificationError
from lockman.signatures.checkpoint import verify_checkpoint
from lockman.signatures.keys import (
    PublicKey,
    decode_b64,
    load_public_key,
    signature_valid,
    spki_der,
)
from lockman.signatures.trust import TrustedRoot


@dataclass(frozen=True)
class InclusionProof:
    """RFC 6962 audit path for ``log_index`` (index within the shard) in a tree of ``tree_size``."""

    log_index: int
    tree_size: int
    root_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str


@dataclass(frozen=True)
class LogEntry:
    """One Rekor entry as a signature carries it (cosign annotation or bundle tlog entry)."""

    body: bytes
    """The canonicalized entry body, decoded from base64 (JSON)."""
    body_b64: str
    """The body exactly as base64 text, because the SET signs that text, not the bytes."""
    integrated_time: int
    log_index: int
    log_id: bytes
    signed_entry_timestamp: bytes | None = None
    inclusion_proof: InclusionProof | None = None
    kind: str = ""
    """``kindVersion.kind`` as the bundle states it (empty for cosign's annotation)."""
    version: str = ""

    @property
    def integrated_datetime(self) -> datetime:
        """``integratedTime`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.integrated_time, tz=UTC)


@dataclass(frozen=True)
class TlogVerification:
    """Which evidence verified, for reporting."""

    log_index: int
    log_id: str
    integrated_time: int
    set_verified: bool
    inclusion_proof_verified: bool


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise VerificationError(f"{what} is not an integer")
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: JSON's 1e999 is infinity
        raise VerificationError(f"{what} is not an integer") from exc


DATETIME_SECONDS = (-62135596800, 253402300799)
"""Unix seconds of 0001-01-01 and 9999-12-31T23:59:59Z, the range a datetime holds."""


def _time(value: Any, what: str) -> int:
    """An ``integratedTime``: Unix seconds that a datetime can hold (checked before any SET)."""
    when = _int(value, what)
    if not DATETIME_SECONDS[0] <= when <= DATETIME_SECONDS[1]:
        raise VerificationError(f"{what} is out of range")
    return when


def parse_cosign_bundle(annotation: str) -> LogEntry:
    """Parse the ``dev.sigstore.cosign/bundle`` annotation (SET + payload)."""
    try:
        doc = safejson.loads(annotation)
        payload = doc["Payload"]
        return LogEntry(
            body=decode_b64(payload["body"], "Rekor bundle body"),
            body_b64=str(payload["body"]),
            integrated_time=_time(payload["integratedTime"], "Rekor bundle integratedTime"),
            log_index=_int(payload["logIndex"], "Rekor bundle logIndex"),
            log_id=bytes.fromhex(payload["logID"]),
            signed_entry_timestamp=decode_b64(doc["SignedEntryTimestamp"], "SignedEntryTimestamp"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"malformed Rekor bundle annotation ({exc!r})") from exc


def parse_bundle_tlog_entry(entry: dict[str, Any]) -> LogEntry:
    """Parse one ``verificationMaterial.tlogEntries[]`` item of a Sigstore bundle."""
    try:
        body_b64 = str(entry["canonicalizedBody"])
        promise = entry.get("inclusionPromise") or {}
        set_b64 = promise.get("signedEntryTimestamp")
        proof = None
        if entry.get("inclusionProof"):
            p = entry["inclusionProof"]
            proof = InclusionProof(
                log_index=_int(p["logIndex"], "inclusionProof.logIndex"),
                tree_size=_int(p["treeSize"], "inclusionProof.treeSize"),
                root_hash=decode_b64(p["rootHash"], "inclusionProof.rootHash"),
                hashes=tuple(decode_b64(h, "inclusionProof.hashes") for h in p.get("hashes", [])),
                checkpoint=str((p.get("checkpoint") or {}).get("envelope", "")),
            )
        kind_version = entry.get("kindVersion") or {}
        parsed = LogEntry(
            body=decode_b64(body_b64, "tlog entry canonicalizedBody"),
            body_b64=body_b64,
            integrated_time=_time(entry.get("integratedTime", 0), "tlog entry integratedTime"),
            log_index=_int(entry["logIndex"], "tlog entry logIndex"),
            log_id=decode_b64(entry["logId"]["keyId"], "tlog entry logId"),
            signed_entry_timestamp=decode_b64(set_b64, "signedEntryTimestamp") if set_b64 else None,
            inclusion_proof=proof,
            kind=str(kind_version.get("kind", "")),
            version=str(kind_version.get("version", "")),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise VerificationError(f"malformed tlog entry ({exc!r})") from exc
    if parsed.log_index < 0 or parsed.integrated_time < 0:
        raise VerificationError("tlog entry has a negative log index or integrated time")
    if proof is not None and (proof.log_index < 0 or proof.tree_size < 0):
        raise VerificationError("tlog entry inclusion proof has a negative index or size")
    return parsed


def set_payload(entry: LogEntry) -> bytes:
    """The bytes a SET signs: RFC 8785 JSON of body, integratedTime, logID (hex), logIndex."""
    try:
        return rfc8785.dumps(
            {
                "body": entry.body_b64,
                "integratedTime": entry.integrated_time,
                "logID": entry.log_id.hex(),
                "logIndex": entry.log_index,
            }
        )
    except rfc8785.CanonicalizationError as exc:  # a number past 2**53: no SET can sign it
        raise VerificationError(f"tlog entry cannot be canonicalized for its SET ({exc})") from None


def _cert_spki(cert: x509.Certificate) -> bytes | None:
    """The certificate's key as SPKI DER; None when its algorithm cannot be read (lazily parsed)."""
    try:
        return spki_der(cert.public_key())  # type: ignore[arg-type]
    except (ValueError, UnsupportedAlgorithm):
        return None


def verify_set(entry: LogEntry, trusted_root: TrustedRoot) -> None:
    """Check the SET with the trusted Rekor key named by the entry's log id."""
    if entry.signed_entry_timestamp is None:
        raise VerificationError("tlog entry has no signed entry timestamp")
    keys = trusted_root.tlog_keys(entry.log_id)
    if not keys:
        raise VerificationError(f"tlog entry from unknown Rekor log {entry.log_id.hex()}")
    data = set_payload(entry)
    when = entry.integrated_datetime
    for log in keys:
        if not log.validity.contains(when):
            continue
        if signature_valid(log.key, entry.signed_entry_timestamp, data):
            return
        raise VerificationError(
            f"Rekor SET does not verify with log key {entry.log_id.hex()} (entry {entry.log_index})"
        )
    raise VerificationError(f"Rekor log key {entry.log_id.hex()} not valid at {when.isoformat()}")


def _hash_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _hash_children(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root_from_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: recompute the root from a leaf's audit path."""
    if not 0 <= index < size:
        raise VerificationError(f"inclusion proof index {index} outside tree of size {size}")
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    if len(proof) != inner + border:
        raise VerificationError(f"inclusion proof has {len(proof)} hashes, expected {inner + border}")
    node = _hash_leaf(leaf)
    for i, h in enumerate(proof[:inner]):
        node = _hash_children(node, h) if (index >> i) & 1 == 0 else _hash_children(h, node)
    for h in proof[inner:]:
        node = _hash_children(h, node)
    return node


def verify_inclusion_proof(entry: LogEntry, trusted_root: TrustedRoot) -> None:
    """Check the entry's Merkle inclusion proof and its signed checkpoint."""
    proof = entry.inclusion_proof
    if proof is None:
        raise VerificationError("tlog entry has no inclusion proof")
    root = merkle_root_from_proof(entry.body, proof.log_index, proof.tree_size, proof.hashes)
    if root != proof.root_hash:
        raise VerificationError("inclusion proof does not lead to the stated root hash")
    verify_checkpoint(
        proof.checkpoint,
        log_id=entry.log_id,
        tree_size=proof.tree_size,
        root_hash=proof.root_hash,
        trusted_root=trusted_root,
    )


def verify_entry(
    entry: LogEntry, trusted_root: TrustedRoot, *, require_set: bool = False, require_proof: bool = False
) -> TlogVerification:
    """Verify what evidence the entry carries; at least one kind must be present and pass.

    ``require_set``: the caller needs a trusted ``integratedTime`` (keyless without a TSA), which
    only a SET provides. ``require_proof``: bundles v0.2+ must carry an inclusion proof with a
    checkpoint (Rekor v2 entries have nothing else).
    """
    set_ok = proof_ok = False
    if entry.signed_entry_timestamp is not None:
        verify_set(entry, trusted_root)
        set_ok = True
    elif require_set:
        raise VerificationError("tlog entry has no inclusion promise (SET) to prove its time")
    if entry.inclusion_proof is not None:
        verify_inclusion_proof(entry, trusted_root)
        proof_ok = True
    elif require_proof:
        raise VerificationError("tlog entry has no inclusion proof (required from bundle v0.2 on)")
    if not (set_ok or proof_ok):
        raise VerificationError("tlog entry has neither an inclusion promise nor an inclusion proof")
    return TlogVerification(
        log_index=entry.log_index,
        log_id=entry.log_id.hex(),
        integrated_time=entry.integrated_time,
        set_verified=set_ok,
        inclusion_proof_verified=proof_ok,
    )


def _body(entry: LogEntry) -> dict[str, Any]:
    try:
        body = safejson.loads(entry.body)
    except ValueError as exc:
        raise VerificationError("tlog entry body is not JSON") from exc
    if not isinstance(body, dict):
        raise VerificationError("tlog entry body is not a JSON object")
    return body


def _same_verifier(pem_b64: str, key: PublicKey, cert: x509.Certificate | None) -> bool:
    """Does the body's base64 PEM (key or certificate) name our signer?"""
    pem = decode_b64(pem_b64, "tlog entry public key")
    if b"BEGIN CERTIFICATE" in pem:
        try:
            body_cert = x509.load_pem_x509_certificate(pem)
        except (ValueError, x509.InvalidVersion):
            return False
        if cert is not None:
            return body_cert == cert
        return _cert_spki(body_cert) == spki_der(key)
    if cert is not None:
        return False  # keyless: the log must record the certificate, not a bare key
    try:
        return spki_der(load_public_key(pem, "tlog entry public key")) == spki_der(key)
    except InputError:
        return False


def _body_of_kind(entry: LogEntry, kind: str, version: str) -> dict[str, Any]:
    """The entry's body, refused unless it is of this kind and API version."""
    body = _body(entry)
    got = (body.get("kind"), body.get("apiVersion"))
    if got != (kind, version):
        raise VerificationError(f"tlog entry kind {got[0]} {got[1]} is not {kind} {version}")
    return body


def check_hashedrekord_body(
    entry: LogEntry,
    *,
    signature: bytes,
    payload: bytes | None,
    key: PublicKey,
    cert: x509.Certificate | None = None,
    payload_sha256: bytes | None = None,
) -> None:
    """The entry must record this signature, this signer and sha256(payload).

    ``payload_sha256`` stands in for ``payload`` when only the digest is known (a bundle's
    message signature over an artifact named by its digest).
    """
    body = _body_of_kind(entry, "hashedrekord", "0.0.1")
    try:
        spec = body["spec"]
        data_hash = spec["data"]["hash"]
        body_sig = decode_b64(spec["signature"]["content"], "tlog entry signature")
        body_key = spec["signature"]["publicKey"]["content"]
    except (KeyError, TypeError) as exc:
        raise VerificationError(f"tlog entry body malformed ({exc!r})") from exc
    if data_hash.get("algorithm") != "sha256":
        raise VerificationError(f"tlog entry hash algorithm {data_hash.get('algorithm')} is not sha256")
    want = payload_sha256 if payload_sha256 is not None else hashlib.sha256(payload or b"").digest()
    if data_hash.get("value") != want.hex():
        raise VerificationError("tlog entry records a different payload hash")
    if body_sig != signature:
        raise VerificationError("tlog entry records a different signature")
    if not _same_verifier(body_key, key, cert):
        raise VerificationError("tlog entry records a different public key or certificate")


def check_dsse_body(
    entry: LogEntry,
    *,
    payload: bytes,
    signatures: Sequence[bytes],
    key: PublicKey,
    cert: x509.Certificate | None = None,
) -> None:
    """The entry must record sha256 of the DSSE payload and exactly the envelope's signatures.

    The envelope hash is not recomputed: Rekor hashes its own re-serialisation of the envelope,
    which we cannot reproduce byte for byte (sigstore-python skips it for the same reason).
    """
    body = _body_of_kind(entry, "dsse", "0.0.1")
    try:
        spec = body["spec"]
        payload_hash = spec["payloadHash"]
        recorded = [
            (decode_b64(s["signature"], "tlog entry signature"), s["verifier"]) for s in spec["signatures"]
        ]
    except (KeyError, TypeError) as exc:
        raise VerificationError(f"tlog entry body malformed ({exc!r})") from exc
    if (
        payload_hash.get("algorithm") != "sha256"
        or payload_hash.get("value") != hashlib.sha256(payload).hexdigest()
    ):
        raise VerificationError("tlog entry records a different DSSE payload hash")
    if sorted(sig for sig, _ in recorded) != sorted(signatures):
        raise VerificationError("tlog entry records different DSSE signatures")
    if not all(_same_verifier(v, key, cert) for _, v in recorded):
        raise VerificationError("tlog entry records a different public key or certificate")


def _v2_verifier_matches(verifier: Any, key: PublicKey, cert: x509.Certificate | None) -> bool:
    """Rekor v2 records the verifier as DER: the certificate (keyless) or the SPKI (keyed)."""
    if not isinstance(verifier, dict):
        return False
    if "x509Certificate" in verifier:
        der = decode_b64(verifier["x509Certificate"].get("rawBytes", ""), "tlog entry certificate")
        if cert is not None:
            return der == cert.public_bytes(serialization.Encoding.DER)
        try:
            body_cert = x509.load_der_x509_certificate(der)
        except (ValueError, x509.InvalidVersion):
            return False
        return _cert_spki(body_cert) == spki_der(key)
    if "publicKey" in verifier and cert is None:
        der = decode_b64(verifier["publicKey"].get("rawBytes", ""), "tlog entry public key")
        return der == spki_der(key)
    return False


def check_hashedrekord_v002_body(
    entry: LogEntry,
    *,
    signature: bytes,
    digest: bytes,
    key: PublicKey,
    cert: x509.Certificate | None = None,
) -> None:
    """Rekor v2 ``hashedrekord`` 0.0.2: this SHA-256 ``digest``, this signature, this signer.

    For a DSSE envelope the digest is of PAE(payloadType, payload) and the signature is the
    envelope's only one (rekor-v2 spec §6.1.4).
    """
    body = _body_of_kind(entry, "hashedrekord", "0.0.2")
    try:
        spec = body["spec"]["hashedRekordV002"]
        data = spec["data"]
        body_sig = decode_b64(spec["signature"]["content"], "tlog entry signature")
        verifier = spec["signature"]["verifier"]
        body_digest = decode_b64(data["digest"], "tlog entry digest")
    except (KeyError, TypeError) as exc:
        raise VerificationError(f"tlog entry body malformed ({exc!r})") from exc
    if data.get("algorithm") != "SHA2_256":
        raise VerificationError(f"tlog entry hash algorithm {data.get('algorithm')} is not SHA2_256")
    if body_digest != digest:
        raise VerificationError("tlog entry records a different payload hash")
    if body_sig != signature:
        raise VerificationError("tlog entry records a different signature")
    if not _v2_verifier_matches(verifier, key, cert):
        raise VerificationError("tlog entry records a different public key or certificate")


def check_intoto_body(
    entry: LogEntry,
    *,
    payload_type: str,
    payload: bytes,
    signatures: Sequence[bytes],
    key: PublicKey,
    cert: x509.Certificate | None = None,
) -> None:
    """``intoto`` 0.0.2 (cosign attestations): Rekor keeps the envelope with each base64 field
    base64-encoded once more; payload hash, payload, type, signatures and signer must all match.
    """
    body = _body_of_kind(entry, "intoto", "0.0.2")
    try:
        content = body["spec"]["content"]
        env = content["envelope"]
        payload_hash = content["payloadHash"]
        recorded = [
            (decode_b64(decode_b64(s["sig"], "tlog entry signature"), "tlog entry signature"), s["publicKey"])
            for s in env["signatures"]
        ]
        body_payload = env.get("payload")
        body_type = env.get("payloadType")
    except (KeyError, TypeError) as exc:
        raise VerificationError(f"tlog entry body malformed ({exc!r})") from exc
    if (
        payload_hash.get("algorithm") != "sha256"
        or payload_hash.get("value") != hashlib.sha256(payload).hexdigest()
    ):
        raise VerificationError("tlog entry records a different DSSE payload hash")
    recorded_payload = (
        decode_b64(decode_b64(body_payload, "tlog payload"), "tlog payload") if body_payload else payload
    )
    if recorded_payload != payload:
        raise VerificationError("tlog entry records a different DSSE payload")
    if body_type != payload_type:
        raise VerificationError("tlog entry records a different DSSE payload type")
    if sorted(sig for sig, _ in recorded) != sorted(signatures):
        raise VerificationError("tlog entry records different DSSE signatures")
    if not all(_same_verifier(v, key, cert) for _, v in recorded):
        raise VerificationError("tlog entry records a different public key or certificate")


def check_intoto_v001_body(
    entry: LogEntry,
    *,
    envelope: bytes,
    payload: bytes,
    key: PublicKey,
    cert: x509.Certificate | None = None,
) -> None:
    """``intoto`` 0.0.1 (older cosign attestations): Rekor keeps no signature, only sha256 of the
    envelope exactly as uploaded (which is the ``.att`` layer blob) and the signer, so the
    envelope hash is what binds the entry to this signature.
    """
    body = _body_of_kind(entry, "intoto", "0.0.1")
    try:
        spec = body["spec"]
        content = spec["content"]
        envelope_hash = content["hash"]
        payload_hash = content.get("payloadHash")
        verifier = spec["publicKey"]
    except (KeyError, TypeError) as exc:
        raise VerificationError(f"tlog entry body malformed ({exc!r})") from exc
    if (
        not isinstance(envelope_hash, dict)
        or envelope_hash.get("algorithm") != "sha256"
        or envelope_hash.get("value") != hashlib.sha256(envelope).hexdigest()
    ):
        raise VerificationError("tlog entry records a different DSSE envelope")
    if payload_hash is not None and (
        not isinstance(payload_hash, dict)
        or payload_hash.get("algorithm") != "sha256"
        or payload_hash.get("value") != hashlib.sha256(payload).hexdigest()
    ):
        raise VerificationError("tlog entry records a different DSSE payload hash")
    if not isinstance(verifier, str) or not _same_verifier(verifier, key, cert):
        raise VerificationError("tlog entry records a different public key or certificate")
