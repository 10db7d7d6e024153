"""Sigstore bundles: cosign v3's default, sigstore-python's and GitHub's attestations.

The registry layer finds the bundle (OCI referrer with ``artifactType`` = the bundle media type,
or the ``sha256-<hex>`` fallback tag) and hands us its JSON bytes with the subject digest. We
parse them into a :class:`Bundle` first (malformed input is refused there), then check:

1. the content: a DSSE envelope around an in-toto statement whose subject has the digest (and,
   if asked, one of the accepted predicate types), or a message signature over the artifact
   whose SHA-256 is the digest; the signature, by the policy key or the bundle's certificate;
2. RFC 3161 timestamps, if any: those that verify against the trusted root's TSAs give times,
   the others are ignored (sigstore-python's and sigstore-go's rule); with tokens, at least
   :data:`VERIFIED_TIME_THRESHOLD` verified times (tokens or a SET) are required;
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
from typing import Any, NoReturn

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
from lockman.signatures.policy import KeyPolicy, Policy
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
VERIFIED_TIME_THRESHOLD = 1
"""Verified times (RFC 3161 tokens that verify, a Rekor v1 SET) a bundle with RFC 3161 tokens
must give, as sigstore-python's ``VERIFIED_TIME_THRESHOLD``: tokens that do not verify are
ignored, so without this a bundle of only bad tokens would be checked at the current time."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what the envelope signature actually signs."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True)
class SigningCertificate:
    """``certificate`` (v0.3), or ``x509CertificateChain`` (v0.1/v0.2): the leaf, then
    intermediates. Never a root: that must come from the trusted root, not from the bundle."""

    leaf: x509.Certificate
    intermediates: tuple[x509.Certificate, ...] = ()


@dataclass(frozen=True)
class PublicKeyHint:
    """``publicKey``: the signer is a key the verifier already holds; the hint is not trusted."""


@dataclass(frozen=True)
class RefusedEntry:
    """A ``tlogEntries[]`` item that cannot serve as evidence (malformed, or not allowed for the
    bundle's version). Kept, not fatal: another entry may verify, and with ``ignore_tlog`` no
    entry is ever looked at, as in cosign."""

    reason: str


@dataclass(frozen=True)
class VerificationMaterial:
    """Who signed, and the evidence of when and that it was logged."""

    signer: SigningCertificate | PublicKeyHint
    tlog_entries: tuple[LogEntry | RefusedEntry, ...]
    timestamps: tuple[bytes, ...]
    """RFC 3161 tokens (DER), each over the signature."""


@dataclass(frozen=True)
class MessageSignature:
    """A signature over the artifact's SHA-256 (``messageSignature``)."""

    signature: bytes
    digest: bytes | None
    """``messageDigest``, which may only be SHA2_256; None when absent."""


@dataclass(frozen=True)
class DsseEnvelope:
    """A DSSE envelope with exactly one signature (as sigstore-python and sigstore-go require:
    the RFC 3161 timestamps and a hashedrekord entry vouch for one signature, so with several an
    old timestamped one could lend its time to another made after the certificate expired)."""

    payload_type: str
    payload: bytes
    signature: bytes

    def pae(self) -> bytes:
        """The bytes the signature signs."""
        return pae(self.payload_type, self.payload)


@dataclass(frozen=True)
class Bundle:
    """A Sigstore bundle, parsed before anything is verified (as sigstore-python's
    ``Bundle.from_json``): verification then works on these objects, never on JSON."""

    media_type: str
    version: tuple[int, int]
    material: VerificationMaterial
    content: MessageSignature | DsseEnvelope

    @classmethod
    def parse(cls, data: bytes | dict[str, Any]) -> Bundle:
        """Parse bundle JSON (bytes) or its decoded object; malformed input is a VerificationError."""
        doc = data if isinstance(data, dict) else _json_object(data)
        media_type = doc.get("mediaType")
        version = BUNDLE_VERSIONS.get(media_type) if isinstance(media_type, str) else None
        if version is None:
            raise VerificationError(f"bundle media type {media_type!r} is not supported")
        if ("dsseEnvelope" in doc) == ("messageSignature" in doc):
            raise VerificationError("bundle must hold exactly one of dsseEnvelope and messageSignature")
        assert isinstance(media_type, str)  # for mypy: version was found by it
        material = _material(doc, version)
        content = _dsse(doc["dsseEnvelope"]) if "dsseEnvelope" in doc else _message(doc["messageSignature"])
        return cls(media_type, version, material, content)


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        doc = safejson.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError(f"bundle is not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise VerificationError("bundle is not a JSON object")
    return doc


def _material(doc: dict[str, Any], version: tuple[int, int]) -> VerificationMaterial:
    vm = doc.get("verificationMaterial")
    if not isinstance(vm, dict):
        raise VerificationError("bundle has no verificationMaterial")
    try:
        signer = _signer(vm, version)
        raw_entries = vm.get("tlogEntries", [])
        if not isinstance(raw_entries, list):
            raise TypeError("tlogEntries is not a list")
        timestamps = _timestamps(vm)
    except (KeyError, TypeError, AttributeError) as exc:
        raise VerificationError(f"malformed bundle ({exc!r})") from exc
    return VerificationMaterial(signer, tuple(_tlog_entry(e, version) for e in raw_entries), timestamps)


def _signer(vm: dict[str, Any], version: tuple[int, int]) -> SigningCertificate | PublicKeyHint:
    if len({"certificate", "x509CertificateChain", "publicKey"} & set(vm)) > 1:
        raise VerificationError("bundle verificationMaterial names more than one signer (cert, chain, key)")
    if "certificate" in vm:
        raw = decode_b64(vm["certificate"]["rawBytes"], "bundle certificate")
        return SigningCertificate(load_der_certificate(raw, "bundle certificate"))
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
            raise VerificationError("bundle certificate chain contains a root certificate")
        return SigningCertificate(certs[0], tuple(certs[1:]))
    if "publicKey" in vm:
        return PublicKeyHint()
    raise VerificationError("bundle verificationMaterial has no certificate or public key")


def _timestamps(vm: dict[str, Any]) -> tuple[bytes, ...]:
    tvd = vm.get("timestampVerificationData") or {}
    if not isinstance(tvd, dict):
        raise VerificationError("malformed timestampVerificationData")
    tokens = tvd.get("rfc3161Timestamps") or []
    if not isinstance(tokens, list):
        raise VerificationError("malformed rfc3161Timestamps")
    try:
        return tuple(decode_b64(t["signedTimestamp"], "RFC 3161 timestamp") for t in tokens)
    except (KeyError, TypeError) as exc:
        raise VerificationError(f"malformed RFC 3161 timestamp ({exc!r})") from exc


def _tlog_entry(raw: Any, version: tuple[int, int]) -> LogEntry | RefusedEntry:
    """One entry, with the media type's rules (as sigstore-python applies them): v0.1 needs the
    inclusion promise (SET) and ignores a proof without checkpoint; from v0.2 the proof is
    required (checked when verifying, since only then is it known whether the tlog counts)."""
    try:
        entry = parse_bundle_tlog_entry(raw)
    except VerificationError as exc:
        return RefusedEntry(str(exc))
    if version == (0, 1):
        if entry.signed_entry_timestamp is None:
            return RefusedEntry("bundle v0.1 tlog entry has no inclusion promise (SET)")
        if entry.inclusion_proof is not None and not entry.inclusion_proof.checkpoint:
            return replace(entry, inclusion_proof=None)  # useless without its checkpoint
    return entry


def _message(ms: Any) -> MessageSignature:
    try:
        signature = decode_b64(ms["signature"], "message signature")
        hint = ms.get("messageDigest")
    except (KeyError, TypeError, AttributeError) as exc:
        raise VerificationError(f"malformed bundle ({exc!r})") from exc
    if not isinstance(hint, dict):
        return MessageSignature(signature, None)
    if hint.get("algorithm") != "SHA2_256":
        raise VerificationError(f"message digest algorithm {hint.get('algorithm')!r} is not SHA2_256")
    return MessageSignature(signature, decode_b64(hint.get("digest", ""), "message digest"))


def _dsse(env: Any) -> DsseEnvelope:
    try:
        payload_type = str(env["payloadType"])
        payload = decode_b64(env["payload"], "DSSE payload")
        signatures = [decode_b64(s["sig"], "DSSE signature") for s in env["signatures"]]
    except (KeyError, TypeError, AttributeError) as exc:
        raise VerificationError(f"malformed bundle ({exc!r})") from exc
    if len(signatures) != 1:
        raise VerificationError(f"DSSE envelope must have exactly one signature, not {len(signatures)}")
    return DsseEnvelope(payload_type, payload, signatures[0])


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


def _signing_key(
    signer: SigningCertificate | PublicKeyHint, policy: Policy
) -> tuple[PublicKey, SigningCertificate | None]:
    """The key the signature must verify with, and the certificate to check (keyless only)."""
    if isinstance(policy, KeyPolicy):
        return policy.key, None  # cosign --key ignores any certificate
    if isinstance(signer, PublicKeyHint):
        raise VerificationError("bundle has only a public key hint; keyless policy needs a cert")
    return leaf_key(signer.leaf), signer


def _verify_content(
    content: MessageSignature | DsseEnvelope,
    image_digest: str,
    key: PublicKey,
    predicate_types: Collection[str] | None,
) -> str | None:
    """The signature over the subject ``image_digest``; return the statement's predicate type."""
    if isinstance(content, MessageSignature):
        if predicate_types is not None and COSIGN_SIGN_PREDICATE not in predicate_types:
            raise VerificationError(
                f"bundle is a plain message signature, not an attestation of {sorted(predicate_types)}"
            )
        digest = _signed_digest(content, image_digest)
        if content.digest is not None and content.digest != digest:
            raise VerificationError(f"bundle message digest is not {image_digest}")
        if not digest_signature_valid(key, content.signature, digest):
            raise VerificationError(f"message signature does not verify with key {key_fingerprint(key)}")
        return None
    if content.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise VerificationError(f"DSSE payload type {content.payload_type!r} is not in-toto")
    if not signature_valid(key, content.signature, content.pae()):
        raise VerificationError(f"DSSE signature does not verify with key {key_fingerprint(key)}")
    predicate_type = _statement_subject_matches(content.payload, image_digest)
    if predicate_types is not None and predicate_type not in predicate_types:
        raise VerificationError(f"predicate type {predicate_type!r} is not one of {sorted(predicate_types)}")
    return predicate_type


def _signed_digest(content: MessageSignature | DsseEnvelope, image_digest: str) -> bytes:
    """SHA-256 of what was signed: the artifact (message signature) or the PAE (DSSE)."""
    if isinstance(content, MessageSignature):
        return bytes.fromhex(Digest.parse(image_digest).hex)
    return hashlib.sha256(content.pae()).digest()


def _check_body(
    entry: LogEntry,
    content: MessageSignature | DsseEnvelope,
    digest: bytes,
    key: PublicKey,
    leaf: x509.Certificate | None,
) -> None:
    """The entry must record this signature; which kinds may depends on the content."""
    kind = (entry.kind, entry.version)  # the body checks below re-check the body's own
    signature = content.signature
    if kind == ("hashedrekord", "0.0.2"):
        check_hashedrekord_v002_body(entry, signature=signature, digest=digest, key=key, cert=leaf)
    elif isinstance(content, MessageSignature):
        check_hashedrekord_body(
            entry, signature=signature, payload=None, key=key, cert=leaf, payload_sha256=digest
        )
    elif kind == ("intoto", "0.0.2"):
        check_intoto_body(
            entry,
            payload_type=content.payload_type,
            payload=content.payload,
            signatures=[signature],
            key=key,
            cert=leaf,
        )
    elif kind in (("dsse", "0.0.1"), ("", "")):
        check_dsse_body(entry, payload=content.payload, signatures=[signature], key=key, cert=leaf)
    else:
        raise VerificationError(f"tlog entry kind {kind[0]} {kind[1]} cannot record a DSSE envelope")


def _verify_tlog(
    bundle: Bundle,
    digest: bytes,
    key: PublicKey,
    leaf: x509.Certificate | None,
    policy: Policy,
    need_set: bool,
) -> tuple[TlogVerification, LogEntry]:
    """The first entry from a trusted log that records this signature, with its evidence.

    ``need_set``: keyless without a TSA time, where only a SET gives the verified time the
    certificate is checked at, so an entry without one is refused (and the next one tried).
    """
    if not bundle.material.tlog_entries:
        raise VerificationError("bundle has no tlog entry (transparency log required)")
    reasons = []
    for entry in bundle.material.tlog_entries:
        try:
            if isinstance(entry, RefusedEntry):
                raise VerificationError(entry.reason)
            tlog = verify_entry(
                entry, policy.root(), require_set=need_set, require_proof=bundle.version >= (0, 2)
            )
            _check_body(entry, bundle.content, digest, key, leaf)
        except VerificationError as exc:
            reasons.append(str(exc))
            continue
        return tlog, entry
    raise VerificationError("tlog: " + "; ".join(reasons))


def _too_few_times(count: int, ignored: tuple[str, ...]) -> NoReturn:
    why = "; ".join(ignored)
    raise VerificationError(f"not enough verified times ({count} < {VERIFIED_TIME_THRESHOLD}): {why}")


def verify_bundle(
    image_digest: str,
    bundle_bytes: bytes | Bundle,
    policy: Policy,
    predicate_types: Collection[str] | None = None,
) -> SignatureResult:
    """Verify a Sigstore bundle (JSON bytes, or already parsed) for the subject ``image_digest``
    under ``policy``.

    ``predicate_types``: accept only DSSE statements with one of these predicate types (e.g.
    ``{COSIGN_SIGN_PREDICATE}`` to ignore attestations); a message signature counts as a plain
    signature, i.e. only where ``COSIGN_SIGN_PREDICATE`` is accepted. None accepts any.
    """
    check_image_digest(image_digest)
    bundle = bundle_bytes if isinstance(bundle_bytes, Bundle) else Bundle.parse(bundle_bytes)
    key, cert = _signing_key(bundle.material.signer, policy)
    leaf, chain = (cert.leaf, cert.intermediates) if cert is not None else (None, ())
    predicate_type = _verify_content(bundle.content, image_digest, key, predicate_types)

    times: list[datetime] = []
    ignored: tuple[str, ...] = ()
    if bundle.material.timestamps:
        from lockman.signatures.timestamp import verify_timestamps

        # Over the one signature that verified above: a token over other bytes lends no time.
        check = verify_timestamps(list(bundle.material.timestamps), bundle.content.signature, policy.root())
        times += [t.time for t in check.verified]
        ignored = check.ignored
    tsa_times = tuple(t.isoformat() for t in times)

    entries = () if policy.ignore_tlog else bundle.material.tlog_entries
    may_set = any(isinstance(e, LogEntry) and e.signed_entry_timestamp is not None for e in entries)
    if ignored and len(times) + may_set < VERIFIED_TIME_THRESHOLD:
        _too_few_times(len(times), ignored)  # said before the log is read: no SET can make up for it

    tlog: TlogVerification | None = None
    if not policy.ignore_tlog:
        digest = _signed_digest(bundle.content, image_digest)
        tlog, entry = _verify_tlog(bundle, digest, key, leaf, policy, need_set=leaf is not None and not times)
        if tlog.set_verified:
            times.append(entry.integrated_datetime)
    if ignored and len(times) < VERIFIED_TIME_THRESHOLD:
        _too_few_times(len(times), ignored)

    result = signer_result(
        kind="sigstore-bundle",
        index=0,
        key=key,
        leaf=leaf,
        chain=chain,
        policy=policy,
        signed_time=times[0] if times else None,
        tlog=tlog,
        predicate_type=predicate_type,
        more_times=times[1:],
    )
    return replace(result, timestamps=tsa_times)
