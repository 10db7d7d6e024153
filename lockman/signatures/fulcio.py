"""Keyless signing certificates (Fulcio): chain, time, usage, identity, embedded SCT.

The chain is built and checked by cryptography's ``x509.verification`` (RFC 5280 path building
with backtracking, the Web PKI profile's extension, name-constraint and algorithm rules), set up
as sigstore-python 4.5 does: since cryptography 45 ``PolicyBuilder.extension_policies`` lets the
client verifier accept Fulcio's codeSigning EKU. We add what the library cannot know: the
trusted root's Fulcio CAs, each tried on its own with its validity window, at the signing time
(a Rekor SET's ``integratedTime`` or an RFC 3161 time), and lockman's own words for the common
failures (:class:`ChainError`).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.certificate_transparency import LogEntryType, SignedCertificateTimestamp
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier
from cryptography.x509.verification import ClientVerifier, Criticality, ExtensionPolicy, PolicyBuilder, Store
from cryptography.x509.verification import VerificationError as X509VerificationError

from lockman.errors import VerificationError
from lockman.signatures.keys import key_id, signature_valid
from lockman.signatures.trust import CertificateAuthority, TrustedRoot

OID_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
"""Fulcio OIDC issuer, deprecated form: the extension value is the raw string bytes."""
OID_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
"""Fulcio OIDC issuer, current form: the extension value is a DER UTF8String."""
OID_OTHERNAME_SAN = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
"""Fulcio's otherName SAN (username identities), a DER UTF8String."""

_MAX_CHAIN = 8


def _parsed(cert: x509.Certificate) -> x509.Certificate:
    """cryptography parses extensions lazily: a malformed one must fail here, not in a later check."""
    _ = cert.extensions
    return cert


def load_certificate(pem: str | bytes, what: str = "certificate") -> x509.Certificate:
    """Parse exactly one PEM certificate from signature material (VerificationError if bad)."""
    certs = load_certificates(pem, what)
    if len(certs) != 1:
        raise VerificationError(f"{what}: expected one PEM certificate, found {len(certs)}")
    return certs[0]


def load_certificates(pem: str | bytes, what: str = "certificate chain") -> list[x509.Certificate]:
    """Parse zero or more concatenated PEM certificates (VerificationError if malformed)."""
    data = pem.encode() if isinstance(pem, str) else pem
    if not data.strip():
        return []
    try:
        return [_parsed(c) for c in x509.load_pem_x509_certificates(data)]
    except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is no ValueError
        raise VerificationError(f"{what}: not PEM certificates ({exc})") from exc


def load_der_certificate(der: bytes, what: str = "certificate") -> x509.Certificate:
    """Parse a DER certificate from a bundle (VerificationError if malformed)."""
    try:
        return _parsed(x509.load_der_x509_certificate(der))
    except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is no ValueError
        raise VerificationError(f"{what}: not a DER certificate ({exc})") from exc


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "<empty subject>"


class ChainError(VerificationError):
    """A Fulcio chain that does not verify, with ``reason`` saying which common failure it is
    (see :data:`CHAIN_REASONS`), so callers and tests branch on it, never on the text."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


CHAIN_REASONS = {
    "leaf-not-valid": "the signing certificate is expired or not yet valid at the signing time",
    "ca-outside-window": "the trusted root's window for the CA does not contain the signing time",
    "foreign-issuer": "no certificate of the CA (or the given intermediates) names the issuer",
    "ca-not-valid": "an issuing CA certificate is expired or not yet valid at the signing time",
    "rejected": "cryptography's path validation refused every path (its message says why)",
}


def _valid_at(cert: x509.Certificate, when: datetime) -> bool:
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def _not_valid(cert: x509.Certificate, when: datetime, what: str, reason: str) -> ChainError:
    return ChainError(
        f"{what} ({_subject(cert)}) not valid at {when.isoformat()}: valid "
        f"{cert.not_valid_before_utc.isoformat()} to {cert.not_valid_after_utc.isoformat()}",
        reason=reason,
    )


def _client_verifier(anchors: Sequence[x509.Certificate], when: datetime) -> ClientVerifier:
    """cryptography's RFC 5280 path validation with the Web PKI profile, as sigstore-python 4.5
    sets it up (``Verifier._verify_chain_at_time``): Fulcio leaves are codeSigning, not
    clientAuth, so only the EKU rule is relaxed; every other default stays (unknown critical
    extensions, name constraints, basic constraints and path length, key usage, the allowed
    signature algorithms, validity of each certificate at ``when``)."""
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    return (
        PolicyBuilder()
        .store(Store(list(anchors)))
        .time(when)
        .max_chain_depth(_MAX_CHAIN)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Name and signature link (only to word a refusal: the library decides)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _diagnose(
    leaf: x509.Certificate, pool: Sequence[x509.Certificate], when: datetime, refusal: str
) -> ChainError:
    """The common failures in lockman's words; anything else in cryptography's."""
    issuers = [c for c in pool if _issued_by(leaf, c)]
    if not issuers:
        why = f"no trusted issuer found for {_subject(leaf)} (issuer {leaf.issuer.rfc4514_string()})"
        return ChainError(why, reason="foreign-issuer")
    if not any(_valid_at(c, when) for c in issuers):
        return _not_valid(issuers[0], when, "CA certificate", "ca-not-valid")
    return ChainError(f"path validation failed for {_subject(leaf)}: {refusal}", reason="rejected")


def _path_to(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    ca: CertificateAuthority,
    when: datetime,
) -> list[x509.Certificate]:
    """A path from ``leaf`` to a certificate of ``ca`` (each one a trust anchor, as in
    sigstore-python's ``Store(get_fulcio_certs())``); the path, leaf first."""
    try:
        return list(_client_verifier(ca.chain, when).verify(leaf, list(intermediates)).chain)
    except (X509VerificationError, x509.UnsupportedGeneralNameType) as exc:
        raise _diagnose(leaf, [*ca.chain, *intermediates], when, str(exc)) from None


def verify_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    trusted_root: TrustedRoot,
    when: datetime,
) -> list[x509.Certificate]:
    """Check that ``leaf`` chains to a Fulcio CA of ``trusted_root`` at time ``when``.

    ``intermediates`` are untrusted helpers (the chain annotation); only the trusted root's CA
    certificates anchor, and only CAs whose trusted-root window contains ``when``. Returns the
    path, leaf first. Raises :class:`ChainError` with the reason from the most promising CA if
    none works.
    """
    if not _valid_at(leaf, when):
        raise _not_valid(leaf, when, "signing certificate", "leaf-not-valid")
    if not trusted_root.certificate_authorities:
        raise VerificationError(f"{trusted_root.source} has no Fulcio certificate authorities")
    reasons: list[ChainError] = []
    for ca in trusted_root.certificate_authorities:
        if not ca.validity.contains(when):
            name = ca.uri or _subject(ca.chain[-1])
            why = f"CA {name} not valid at {when.isoformat()}"
            reasons.append(ChainError(why, reason="ca-outside-window"))
            continue
        try:
            return _path_to(leaf, intermediates, ca, when)
        except ChainError as exc:
            reasons.append(exc)
    # Prefer the reason that got furthest: one not about a foreign issuer.
    best = next((r for r in reasons if r.reason != "foreign-issuer"), reasons[0])
    raise ChainError(f"certificate chain: {best.message}", reason=best.reason)


def check_code_signing(leaf: x509.Certificate) -> None:
    """Fulcio leaves must be for code signing (EKU codeSigning)."""
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise VerificationError("signing certificate has no extended key usage") from exc
    if ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        raise VerificationError("signing certificate is not for code signing (EKU)")
    try:
        bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return
    if bc.ca:
        raise VerificationError("signing certificate is a CA certificate")


def _der_utf8(value: bytes) -> str:
    """Decode a DER UTF8String (tag 0x0C), the only shape Fulcio's newer extensions use."""
    if len(value) < 2 or value[0] != 0x0C:
        raise VerificationError("certificate extension is not a DER UTF8String")
    length = value[1]
    offset = 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4:  # a cut-off length field fails the total-length check below
            raise VerificationError("certificate extension has a bad DER length")
        length = int.from_bytes(value[2 : 2 + n], "big")
        offset = 2 + n
    if len(value) != offset + length:
        raise VerificationError("certificate extension has a bad DER length")
    try:
        return value[offset:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VerificationError("certificate extension is not UTF-8") from exc


def _extension_bytes(cert: x509.Certificate, oid: ObjectIdentifier) -> bytes | None:
    try:
        ext = cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None
    value = ext.value
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def certificate_issuer(cert: x509.Certificate) -> str | None:
    """The OIDC issuer Fulcio recorded; both encodings must agree if both are present."""
    v1 = _extension_bytes(cert, OID_ISSUER_V1)
    v2 = _extension_bytes(cert, OID_ISSUER_V2)
    issuer_v1 = v1.decode("utf-8", "replace") if v1 is not None else None
    issuer_v2 = _der_utf8(v2) if v2 is not None else None
    if issuer_v1 is not None and issuer_v2 is not None and issuer_v1 != issuer_v2:
        raise VerificationError(
            f"certificate issuer extensions disagree: {issuer_v1!r} (.1.1) != {issuer_v2!r} (.1.8)"
        )
    return issuer_v2 if issuer_v2 is not None else issuer_v1


def certificate_identities(cert: x509.Certificate) -> list[str]:
    """Every SAN as a string: emails, URIs, DNS names, IPs, and Fulcio otherName usernames."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out: list[str] = []
    out += san.get_values_for_type(x509.RFC822Name)
    out += san.get_values_for_type(x509.UniformResourceIdentifier)
    out += san.get_values_for_type(x509.DNSName)
    out += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == OID_OTHERNAME_SAN:
            out.append(_der_utf8(other.value))
    return out


def _sct_signed_data(
    sct: SignedCertificateTimestamp, leaf: x509.Certificate, issuer_key_hash: bytes
) -> bytes:
    """RFC 6962 §3.2 ``digitally-signed`` struct for an SCT.

    For a precertificate entry the signed entry is the issuer key hash plus the leaf's TBS with
    the SCT list extension removed (``tbs_precertificate_bytes`` rebuilds exactly that).
    """
    if sct.entry_type == LogEntryType.PRE_CERTIFICATE:
        tbs = leaf.tbs_precertificate_bytes
        entry = issuer_key_hash + len(tbs).to_bytes(3, "big") + tbs
    else:
        der = leaf.public_bytes(serialization.Encoding.DER)
        entry = len(der).to_bytes(3, "big") + der
    millis = int(sct.timestamp.replace(tzinfo=UTC).timestamp() * 1000)
    ext = sct.extension_bytes
    return (
        struct.pack("!BBQH", sct.version.value, 0, millis, sct.entry_type.value)
        + entry
        + struct.pack("!H", len(ext))
        + ext
    )


def verify_sct(leaf: x509.Certificate, issuer: x509.Certificate, trusted_root: TrustedRoot) -> str:
    """Check the leaf's embedded SCTs; one must verify under a trusted CT log key.

    Returns the hex log id of the CT log whose SCT verified.
    """
    try:
        scts = list(
            leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
        )
    except x509.ExtensionNotFound as exc:
        raise VerificationError("signing certificate has no embedded SCT") from exc
    issuer_key_hash = key_id(issuer.public_key())  # type: ignore[arg-type]
    reasons = []
    for sct in scts:
        keys = trusted_root.ctlog_keys(sct.log_id)
        if not keys:
            reasons.append(f"SCT from unknown CT log {sct.log_id.hex()}")
            continue
        if not isinstance(sct.signature_hash_algorithm, hashes.SHA256):
            reasons.append("SCT hash algorithm is not SHA-256")
            continue
        data = _sct_signed_data(sct, leaf, issuer_key_hash)
        when = sct.timestamp.replace(tzinfo=UTC)
        for log in keys:
            if not log.validity.contains(when):
                reasons.append(f"CT log {sct.log_id.hex()} key not valid at {when.isoformat()}")
            elif signature_valid(log.key, sct.signature, data, hashes.SHA256()):
                return str(sct.log_id.hex())
            else:
                reasons.append(f"SCT signature does not verify with CT log {sct.log_id.hex()}")
    raise VerificationError("; ".join(reasons) or "signing certificate has an empty SCT list")


@dataclass(frozen=True)
class VerifiedCertificate:
    """What a checked Fulcio certificate tells us about its signer."""

    path: tuple[x509.Certificate, ...]
    identities: tuple[str, ...]
    issuer: str | None
    sct_log_id: str | None


def verify_certificate(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    trusted_root: TrustedRoot,
    when: datetime,
    *,
    ignore_sct: bool = False,
) -> VerifiedCertificate:
    """Chain, validity at ``when``, codeSigning EKU and (unless ``ignore_sct``) the SCT.

    Identity matching is the policy's job (``Policy.match_identity``); this only extracts it.
    """
    check_code_signing(leaf)  # first: lockman's words for a leaf that is no Fulcio leaf at all
    path = verify_chain(leaf, intermediates, trusted_root, when)
    sct_log = None
    if not ignore_sct:
        if len(path) < 2:
            raise VerificationError("cannot check SCT: signing certificate has no issuer in path")
        sct_log = verify_sct(leaf, path[1], trusted_root)
    return VerifiedCertificate(
        path=tuple(path),
        identities=tuple(certificate_identities(leaf)),
        issuer=certificate_issuer(leaf),
        sct_log_id=sct_log,
    )
