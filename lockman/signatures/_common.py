"""Steps shared by ``.sig`` layers and bundles once the signed bytes are known."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from lockman.errors import InputError, VerificationError
from lockman.signatures.fulcio import VerifiedCertificate, verify_certificate
from lockman.signatures.keys import PublicKey, key_fingerprint
from lockman.signatures.policy import KeylessPolicy, Policy
from lockman.signatures.rekor import TlogVerification
from lockman.signatures.result import SignatureResult

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def check_image_digest(image_digest: str) -> str:
    """The image digest we verify against must itself be well formed (caller error if not)."""
    if not _DIGEST.fullmatch(image_digest):
        raise InputError(f"image digest {image_digest!r} is not sha256:<64 lowercase hex>")
    return image_digest


def leaf_key(cert: x509.Certificate) -> PublicKey:
    """The signing key inside a Fulcio leaf, restricted to the algorithms we verify."""
    try:
        key = cert.public_key()  # parsed lazily: an unknown algorithm OID fails only here
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise VerificationError(f"certificate key cannot be read ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise VerificationError(f"certificate key type {type(key).__name__} is not supported")
    return key


def check_keyless(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    policy: KeylessPolicy,
    signed_time: datetime | None,
) -> tuple[VerifiedCertificate, str, str]:
    """Chain + SCT at the tlog time (now if the tlog was ignored), then identity and issuer.

    Without a tlog time cosign also checks at the current time, so short-lived Fulcio
    certificates then fail as expired: that is the honest answer, not a bug.
    """
    when = signed_time or datetime.now(UTC)
    verified = verify_certificate(leaf, intermediates, policy.root(), when, ignore_sct=policy.ignore_sct)
    identity, issuer = policy.match_identity(leaf)
    return verified, identity, issuer


def signer_result(
    *,
    kind: str,
    index: int,
    key: PublicKey,
    leaf: x509.Certificate | None,
    chain: Sequence[x509.Certificate],
    policy: Policy,
    signed_time: datetime | None,
    tlog: TlogVerification | None,
    predicate_type: str | None = None,
    more_times: Sequence[datetime] = (),
) -> SignatureResult:
    """Who signed, once the signature verified: the key, or the Fulcio leaf's checked identity.

    ``more_times``: further verified times (e.g. TSA timestamps next to a SET); the certificate
    must be valid at every one, as in cosign and sigstore-python.
    """
    fingerprint = key_fingerprint(key)
    if leaf is None:
        return SignatureResult(
            kind=kind,
            index=index,
            signer=f"key {fingerprint}",
            key_fingerprint=fingerprint,
            tlog=tlog,
            predicate_type=predicate_type,
        )
    assert isinstance(policy, KeylessPolicy)  # a leaf is only ever taken under a keyless policy
    verified, identity, issuer = check_keyless(leaf, chain, policy, signed_time)
    for when in more_times:
        verify_certificate(leaf, chain, policy.root(), when, ignore_sct=True)
    return SignatureResult(
        kind=kind,
        index=index,
        signer=f"{identity} (issuer {issuer})",
        key_fingerprint=fingerprint,
        certificate_identity=identity,
        certificate_issuer=issuer,
        tlog=tlog,
        sct_log_id=verified.sct_log_id,
        predicate_type=predicate_type,
    )
