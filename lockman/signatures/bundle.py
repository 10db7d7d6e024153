"""Sigstore bundles: cosign v3's default, sigstore-python's and GitHub's attestations.

The registry layer finds the bundle (OCI referrer with ``artifactType`` = the bundle media type,
or the ``sha256-<hex>`` fallback tag) and hands us its JSON bytes with the subject digest. We check:

1. the content: a DSSE envelope around an in-toto statement whose subject has the digest (and,
   if asked, one of the accepted predicate types), or a message signature over the artifact
   whose SHA-256 is the digest; the signature, by the policy key or the bundle's certificate;
2. RFC 3161 timestamps, if any: every one must verify against the trusted root's TSAs;
3. unless ``ignore_tlog``: a tlog entry from a trusted log whose body records this signature.
   Media type rules (as sigstore-python applies them): v0.1 needs the inclusion promise (SET),
   the proof is optional; v0.2 and v0.3 need the inclusion proof with its checkpoint (Rekor v2
   entries have nothing else). Entry kinds: ``hashedrekord`` 0.0.1/0.0.2, ``dsse`` 0.0.1,
   ``intoto`` 0.0.2;
4. keyless: at least one verified time (a SET's integrated time or a TSA timestamp); the chain,
   SCT and validity are checked at every one of them, then the identity policy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cryptography import x509

from lockman import safejson
from lockman.errors import VerificationError
from lockman.model.digest import Digest
from lockman.signatures._common import check_image_digest, leaf_key, signer_result
from lockman.signatures.fulcio import load_der_certificate
from lockman.signatures.keys import (
    PublicKey,
    decode_b64,
    digest_signature_valid,
    key_fingerprint,
    signature_valid,
)
from lockman.signatures.policy import Policy
from lockman.signatures.rekor import (
    LogEntry,
    TlogVerification,
    check_dsse_body,
    check_hashedrekord_body,
    check_hashedrekord_v002_body,
    check_intoto_body,
    parse_bundle_tlog_entry,
    verify_entry,
)
from lockman.signatures.result import SignatureResult

BUNDLE_VERSIONS = {
    "application/vnd.dev.sigstore.bundle.v0.3+json": (0, 3),
    "application/vnd.dev.sigstore.bundle+json;version=0.3": (0, 3),
    "application/vnd.dev.sigstore.bundle+json;version=0.2": (0, 2),
    "application/vnd.dev.sigstore.bundle+json;version=0.1": (0, 1),
}
BUNDLE_MEDIA_TYPES = tuple(BUNDLE_VERSIONS)
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT_TYPES = ("https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1")
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
"""Predicate type of ``cosign sign`` in bundle format; attestations use others."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what the envelope signature actually signs."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _material(
    doc: dict[str, Any], version: tuple[int, int]
) -> tuple[x509.Certificate | None, list[x509.Certificate]]:
    vm = doc.get("verificationMaterial")
    if not isinstance(vm, dict):
        raise VerificationError("bundle has no verificationMaterial")
    if len({"certificate", "x509CertificateChain", "publicKey"} & set(vm)) > 1:
        raise VerificationError("bundle verificationMaterial names more than one signer (cert, chain, key)")
    if "certificate" in vm:
        raw = decode_b64(vm["certificate"]["rawBytes"], "bundle certificate")
        return load_der_certificate(raw, "bundle certificate"), []
    if "x509CertificateChain" in vm:
        certs = [
            load_der_certificate(decode_b64(c["rawBytes"], "bundle chain"), "bundle chain")
            for c in vm["x509CertificateChain"]["certificates"]
        ]
        if not certs:
            raise VerificationError("bundle certificate chain is empty")
        if version >= (0, 3):
            raise VerificationError("bundle v0.3 must carry a single certificate, not a chain")
        if any(c.issuer == c.subject for c in certs[1:]):
            # the root must come from the trusted root, never from the bundle
            raise VerificationError("bundle certificate chain contains a root certificate")
        return certs[0], certs[1:]
    if "publicKey" in vm:
        return None, []
    raise VerificationError("bundle verificationMaterial has no certificate or public key")


def _statement_subject_matches(payload: bytes, image_digest: str) -> str:
    """Check the in-toto subject; return the predicate type."""
    try:
        statement = safejson.loads(payload)
        stype = statement["_type"]
        subjects = statement["subject"]
        predicate_type = str(statement.get("predicateType", ""))
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"DSSE payload is not an in-toto statement ({exc!r})") from exc
    if stype not in IN_TOTO_STATEMENT_TYPES:
        raise VerificationError(f"in-toto statement type {stype!r} is not supported")
    want = Digest.parse(image_digest).hex
    found = []
    for s in subjects if isinstance(subjects, list) else []:
        digests = s.get("digest") if isinstance(s, dict) else None
        digest = digests.get("sha256") if isinstance(digests, dict) else None
        if digest == want:
            return predicate_type
        if digest:
            found.append(f"sha256:{digest}")
    raise VerificationError(
        f"statement subject {', '.join(found) or '(no sha256 subject)'} != {image_digest}"
    )


@dataclass(frozen=True)
class _Content:
    """What was signed: the bytes the signature covers, and how a log entry must record it."""

    signature: bytes
    payload_type: str | None
    payload: bytes | None
    """DSSE only (None for a message signature)."""
    digest: bytes
    """sha256 of the message (message signature) or of the PAE (DSSE, for hashedrekord 0.0.2)."""
    predicate_type: str | None


def _message_content(doc: dict[str, Any], image_digest: str, key: PublicKey) -> _Content:
    try:
        ms = doc["messageSignature"]
        signature = decode_b64(ms["signature"], "message signature")
        hint = ms.get("messageDigest")
    except (KeyError, TypeError, AttributeError) as exc:
        raise VerificationError(f"malformed bundle ({exc!r})") from exc
    digest = bytes.fromhex(Digest.parse(image_digest).hex)
    if isinstance(hint, dict):
        if hint.get("algorithm") != "SHA2_256":
            raise VerificationError(f"message digest algorithm {hint.get('algorithm')!r} is not SHA2_256")
        if decode_b64(hint.get("digest", ""), "message digest") != digest:
            raise VerificationError(f"bundle message digest is not {image_digest}")
    if not digest_signature_valid(key, signature, digest):
        raise VerificationError(f"message signature does not verify with key {key_fingerprint(key)}")
    return _Content(signature, None, None, digest, None)


def _dsse_content(doc: dict[str, Any], image_digest: str, key: PublicKey) -> _Content:
    try:
        env = doc["dsseEnvelope"]
        payload_type = str(env["payloadType"])
        payload = decode_b64(env["payload"], "DSSE payload")
        signatures = [decode_b64(s["sig"], "DSSE signature") for s in env["signatures"]]
    except (KeyError, TypeError, AttributeError) as exc:
        raise VerificationError(f"malformed bundle ({exc!r})") from exc
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise VerificationError(f"DSSE payload type {payload_type!r} is not in-toto")
    # Exactly one signature, as sigstore-python and sigstore-go require: the RFC 3161 timestamps
    # and the hashedrekord entry vouch for one signature, so with several an old timestamped one
    # could lend its time to another made after the certificate expired.
    if len(signatures) != 1:
        raise VerificationError(f"DSSE envelope must have exactly one signature, not {len(signatures)}")
    signed = pae(payload_type, payload)
    if not signature_valid(key, signatures[0], signed):
        raise VerificationError(f"DSSE signature does not verify with key {key_fingerprint(key)}")
    predicate_type = _statement_subject_matches(payload, image_digest)
    return _Content(signatures[0], payload_type, payload, hashlib.sha256(signed).digest(), predicate_type)


def _check_body(entry: LogEntry, content: _Content, key: PublicKey, leaf: x509.Certificate | None) -> None:
    """The entry must record this signature; which kinds are allowed depends on the content."""
    kind, version = entry.kind, entry.version  # the body checks below re-check the body's own
    if content.payload is None:
        if (kind, version) == ("hashedrekord", "0.0.2"):
            check_hashedrekord_v002_body(
                entry, signature=content.signature, digest=content.digest, key=key, cert=leaf
            )
            return
        check_hashedrekord_body(
            entry,
            signature=content.signature,
            payload=None,
            key=key,
            cert=leaf,
            payload_sha256=content.digest,
        )
        return
    if (kind, version) == ("hashedrekord", "0.0.2"):
        check_hashedrekord_v002_body(
            entry, signature=content.signature, digest=content.digest, key=key, cert=leaf
        )
    elif (kind, version) == ("intoto", "0.0.2"):
        check_intoto_body(
            entry,
            payload_type=content.payload_type or "",
            payload=content.payload,
            signatures=[content.signature],
            key=key,
            cert=leaf,
        )
    elif (kind, version) in (("dsse", "0.0.1"), ("", "")):
        check_dsse_body(entry, payload=content.payload, signatures=[content.signature], key=key, cert=leaf)
    else:
        raise VerificationError(f"tlog entry kind {kind} {version} cannot record a DSSE envelope")


def _timestamps(doc: dict[str, Any]) -> list[bytes]:
    tvd = doc["verificationMaterial"].get("timestampVerificationData") or {}
    if not isinstance(tvd, dict):
        raise VerificationError("malformed timestampVerificationData")
    tokens = tvd.get("rfc3161Timestamps") or []
    if not isinstance(tokens, list):
        raise VerificationError("malformed rfc3161Timestamps")
    try:
        return [decode_b64(t["signedTimestamp"], "RFC 3161 timestamp") for t in tokens]
    except (KeyError, TypeError) as exc:
        raise VerificationError(f"malformed RFC 3161 timestamp ({exc!r})") from exc


def verify_bundle(
    image_digest: str,
    bundle_bytes: bytes,
    policy: Policy,
    predicate_types: Collection[str] | None = None,
) -> SignatureResult:
    """Verify a Sigstore bundle for the subject ``image_digest`` under ``policy``.

    ``predicate_types``: accept only DSSE statements with one of these predicate types (e.g.
    ``{COSIGN_SIGN_PREDICATE}`` to ignore attestations); a message signature counts as a plain
    signature, i.e. only where ``COSIGN_SIGN_PREDICATE`` is accepted. None accepts any.
    """
    check_image_digest(image_digest)
    try:
        doc = safejson.loads(bundle_bytes)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError(f"bundle is not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise VerificationError("bundle is not a JSON object")
    media_type = doc.get("mediaType")
    version = BUNDLE_VERSIONS.get(media_type) if isinstance(media_type, str) else None
    if version is None:
        raise VerificationError(f"bundle media type {media_type!r} is not supported")
    if ("dsseEnvelope" in doc) == ("messageSignature" in doc):
        raise VerificationError("bundle must hold exactly one of dsseEnvelope and messageSignature")

    try:
        leaf, chain = _material(doc, version)
        raw_entries = doc["verificationMaterial"].get("tlogEntries", [])
        if not isinstance(raw_entries, list):
            raise TypeError("tlogEntries is not a list")
        tokens = _timestamps(doc)
    except (KeyError, TypeError, AttributeError) as exc:
        raise VerificationError(f"malformed bundle ({exc!r})") from exc

    if policy.key is not None:
        key = policy.key
        leaf, chain = None, []  # cosign --key ignores any certificate
    elif leaf is None:
        raise VerificationError("bundle has only a public key hint; keyless policy needs a cert")
    else:
        key = leaf_key(leaf)

    if "dsseEnvelope" in doc:
        content = _dsse_content(doc, image_digest, key)
        if predicate_types is not None and content.predicate_type not in predicate_types:
            raise VerificationError(
                f"predicate type {content.predicate_type!r} is not one of {sorted(predicate_types)}"
            )
    else:
        if predicate_types is not None and COSIGN_SIGN_PREDICATE not in predicate_types:
            raise VerificationError(
                f"bundle is a plain message signature, not an attestation of {sorted(predicate_types)}"
            )
        content = _message_content(doc, image_digest, key)

    times: list[datetime] = []
    if tokens:
        from lockman.signatures.timestamp import verify_timestamps

        times += [t.time for t in verify_timestamps(tokens, content.signature, policy.root())]
    tsa_times = tuple(t.isoformat() for t in times)

    tlog: TlogVerification | None = None
    if not policy.ignore_tlog:
        if not raw_entries:
            raise VerificationError("bundle has no tlog entry (transparency log required)")
        reasons = []
        for raw in raw_entries:
            try:
                entry = parse_bundle_tlog_entry(raw)
                if version == (0, 1) and entry.signed_entry_timestamp is None:
                    raise VerificationError("bundle v0.1 tlog entry has no inclusion promise (SET)")
                proof = entry.inclusion_proof
                if version == (0, 1) and proof is not None and not proof.checkpoint:
                    entry = _without_proof(entry)  # v0.1 proofs may lack a checkpoint: useless, ignored
                # Keyless without a TSA time: only a SET gives the verified time the certificate
                # is checked at, so an entry without one is refused here (and the next one tried).
                tlog = verify_entry(
                    entry,
                    policy.root(),
                    require_set=leaf is not None and not times,
                    require_proof=version >= (0, 2),
                )
                _check_body(entry, content, key, leaf)
            except VerificationError as exc:
                reasons.append(str(exc))
                tlog = None
                continue
            if tlog.set_verified:
                times.append(entry.integrated_datetime)
            break
        if tlog is None:
            raise VerificationError("tlog: " + "; ".join(reasons))

    result = signer_result(
        kind="sigstore-bundle",
        index=0,
        key=key,
        leaf=leaf,
        chain=chain,
        policy=policy,
        signed_time=times[0] if times else None,
        tlog=tlog,
        predicate_type=content.predicate_type,
        more_times=times[1:],
    )
    return replace(result, timestamps=tsa_times)


def _without_proof(entry: LogEntry) -> LogEntry:
    return replace(entry, inclusion_proof=None)
