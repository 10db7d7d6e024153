"""Sigstore bundles (cosign v3's default): DSSE envelope around an in-toto statement.

The registry layer finds the bundle (OCI referrer with ``artifactType`` = the bundle media type,
or the ``sha256-<hex>`` fallback tag) and hands us its JSON bytes. We check:

1. the DSSE signature over PAE(payloadType, payload), by the policy key or the bundle's Fulcio
   certificate;
2. the payload is an in-toto statement with a subject whose sha256 equals the image digest
   (and, if asked, one of the accepted predicate types);
3. unless ``ignore_tlog``: a tlog entry from a trusted Rekor log, with a valid inclusion
   promise and/or inclusion proof + checkpoint, whose ``dsse`` body records this envelope's
   payload hash, signatures and signer;
4. keyless: chain, SCT and identity as for ``.sig`` signatures, at the SET's integrated time.

Not supported (rejected with a reason, never silently passed): ``messageSignature`` bundles,
RFC 3161 timestamps as the time source (so Rekor v2 entries, which lack a SET, cannot vouch for
a keyless certificate's time), and Rekor v2 checkpoint key hints.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from cryptography import x509

from lockman import safejson
from lockman.errors import VerificationError
from lockman.signatures._common import check_image_digest, leaf_key, signer_result
from lockman.signatures.fulcio import load_der_certificate
from lockman.signatures.keys import decode_b64, key_fingerprint, signature_valid
from lockman.signatures.policy import Policy
from lockman.signatures.rekor import (
    TlogVerification,
    check_dsse_body,
    parse_bundle_tlog_entry,
    verify_entry,
)
from lockman.signatures.result import SignatureResult

BUNDLE_MEDIA_TYPES = (
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
)
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT_TYPES = ("https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1")
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
"""Predicate type of ``cosign sign`` in bundle format; attestations use others."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what the envelope signature actually signs."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _material(doc: dict[str, Any]) -> tuple[x509.Certificate | None, list[x509.Certificate]]:
    vm = doc.get("verificationMaterial")
    if not isinstance(vm, dict):
        raise VerificationError("bundle has no verificationMaterial")
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
    want = image_digest.split(":", 1)[1]
    found = []
    for s in subjects if isinstance(subjects, list) else []:
        digest = s.get("digest", {}).get("sha256") if isinstance(s, dict) else None
        if digest == want:
            return predicate_type
        if digest:
            found.append(f"sha256:{digest}")
    raise VerificationError(
        f"statement subject {', '.join(found) or '(no sha256 subject)'} != {image_digest}"
    )


def verify_bundle(
    image_digest: str,
    bundle_bytes: bytes,
    policy: Policy,
    predicate_types: Collection[str] | None = None,
) -> SignatureResult:
    """Verify a Sigstore bundle for ``image_digest`` under ``policy``.

    ``predicate_types``: accept only statements with one of these predicate types (e.g.
    ``{COSIGN_SIGN_PREDICATE}`` to ignore attestations); None accepts any.
    """
    check_image_digest(image_digest)
    try:
        doc = safejson.loads(bundle_bytes)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError(f"bundle is not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise VerificationError("bundle is not a JSON object")
    media_type = doc.get("mediaType")
    if media_type not in BUNDLE_MEDIA_TYPES:
        raise VerificationError(f"bundle media type {media_type!r} is not supported")
    if "dsseEnvelope" not in doc:
        raise VerificationError("bundle has no DSSE envelope (messageSignature is not supported)")

    try:
        leaf, chain = _material(doc)
        env = doc["dsseEnvelope"]
        payload_type = str(env["payloadType"])
        payload = decode_b64(env["payload"], "DSSE payload")
        signatures = [decode_b64(s["sig"], "DSSE signature") for s in env["signatures"]]
        raw_entries = doc["verificationMaterial"].get("tlogEntries", [])
    except (KeyError, TypeError, AttributeError) as exc:
        raise VerificationError(f"malformed bundle ({exc!r})") from exc

    if policy.key is not None:
        key = policy.key
        leaf, chain = None, []  # cosign --key ignores any certificate
    elif leaf is None:
        raise VerificationError("bundle has only a public key hint; keyless policy needs a cert")
    else:
        key = leaf_key(leaf)

    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise VerificationError(f"DSSE payload type {payload_type!r} is not in-toto")
    signed = pae(payload_type, payload)
    if not signatures:
        raise VerificationError("DSSE envelope has no signatures")
    if not any(signature_valid(key, s, signed) for s in signatures):
        raise VerificationError(f"DSSE signature does not verify with key {key_fingerprint(key)}")

    predicate_type = _statement_subject_matches(payload, image_digest)
    if predicate_types is not None and predicate_type not in predicate_types:
        raise VerificationError(f"predicate type {predicate_type!r} is not one of {sorted(predicate_types)}")

    tlog: TlogVerification | None = None
    signed_time = None
    if not policy.ignore_tlog:
        if not raw_entries:
            raise VerificationError("bundle has no tlog entry (transparency log required)")
        reasons = []
        for raw in raw_entries:
            try:
                entry = parse_bundle_tlog_entry(raw)
                tlog = verify_entry(entry, policy.root(), require_set=leaf is not None)
                check_dsse_body(entry, payload=payload, signatures=signatures, key=key, cert=leaf)
            except VerificationError as exc:
                reasons.append(str(exc))
                tlog = None
                continue
            signed_time = entry.integrated_datetime if tlog.set_verified else None
            break
        if tlog is None:
            raise VerificationError("tlog: " + "; ".join(reasons))

    return signer_result(
        kind="sigstore-bundle",
        index=0,
        key=key,
        leaf=leaf,
        chain=chain,
        policy=policy,
        signed_time=signed_time,
        tlog=tlog,
        predicate_type=predicate_type,
    )
