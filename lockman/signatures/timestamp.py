"""RFC 3161 signed timestamps: a trusted TSA vouches that a signature existed at a time.

Rekor v2 entries carry no integrated time, so a keyless signature's time comes from a TSA
token in ``verificationMaterial.timestampVerificationData.rfc3161Timestamps``. The CMS/ASN.1
work (message imprint, TSA chain, ESSCertID, signature) is done by ``rfc3161-client``, the
library sigstore-python uses; it is imported lazily because only bundles with timestamps need it.
We add what the library cannot know: which TSAs the trusted root names, and their validity
windows (a closed interval, as the Sigstore spec defines ``TimeRange``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from lockman.errors import VerificationError
from lockman.signatures.trust import TrustedRoot

MAX_TIMESTAMPS = 32
"""More tokens than this is an attack on verification time, not a real bundle."""


class UnverifiedTimestamp(VerificationError):
    """A well-formed token that no trusted TSA vouches for over these bytes, or outside the
    TSA's window: ignored where other evidence may suffice (:func:`verify_timestamps`)."""


@dataclass(frozen=True)
class VerifiedTimestamp:
    """A time a trusted TSA signed, and which TSA (its URI or subject) did."""

    time: datetime
    authority: str


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def verify_timestamp(token: bytes, signature: bytes, trusted_root: TrustedRoot) -> VerifiedTimestamp:
    """Verify one DER ``TimeStampResponse`` over ``signature`` against the root's TSAs.

    The TSA chain is checked at the token's own time (``genTime``), so a token stays valid after
    the TSA certificate expires, as long as it was issued inside both the certificate's and
    the trusted root's validity window.
    """
    import rfc3161_client  # lazy: only timestamped bundles pay for it

    try:
        response = rfc3161_client.decode_timestamp_response(token)
        gen_time = _aware(response.tst_info.gen_time)  # decoded lazily: a bad TSTInfo fails here
    except (ValueError, rfc3161_client.VerificationError) as exc:
        raise VerificationError(f"RFC 3161 timestamp is malformed ({exc})") from exc
    if not trusted_root.timestamp_authorities:
        raise VerificationError("bundle has an RFC 3161 timestamp but the trusted root has no TSA")
    reasons = []
    for tsa in trusted_root.timestamp_authorities:
        name = tsa.uri or tsa.chain[0].subject.rfc4514_string()
        if len(tsa.chain) < 2:
            reasons.append(f"{name}: chain has no root")
            continue
        builder = rfc3161_client.VerifierBuilder(
            tsa_certificate=tsa.chain[0],
            intermediates=list(tsa.chain[1:-1]),
            roots=[tsa.chain[-1]],
        )
        try:
            builder.build().verify_message(response, signature)
        except (rfc3161_client.VerificationError, ValueError) as exc:
            reasons.append(f"{name}: {exc}")
            continue
        if not tsa.validity.contains(gen_time):
            reasons.append(f"{name}: time {gen_time.isoformat()} outside its trusted window {tsa.validity}")
            continue
        return VerifiedTimestamp(time=gen_time, authority=name)
    raise UnverifiedTimestamp("RFC 3161 timestamp not verified by a trusted TSA (" + "; ".join(reasons) + ")")


@dataclass(frozen=True)
class TimestampCheck:
    """The tokens that verified, and why each of the others did not (they are ignored)."""

    verified: tuple[VerifiedTimestamp, ...]
    ignored: tuple[str, ...]


def verify_timestamps(tokens: Sequence[bytes], signature: bytes, trusted_root: TrustedRoot) -> TimestampCheck:
    """Check every token over ``signature``; keep those that verify, ignore the others.

    The reference verifiers' rule (sigstore-python ``Verifier._verify_timestamp_authority``,
    sigstore-go ``VerifySignedTimestamp``): a token from an unknown TSA or over other bytes is
    no evidence, but no harm either; the caller then requires enough verified times. Refused
    outright, as there: more than :data:`MAX_TIMESTAMPS` tokens, a repeated token, tokens with a
    trusted root that names no TSA, and a token that is not a timestamp response at all (a
    malformed bundle, which sigstore-python refuses when parsing it).
    """
    if len(tokens) > MAX_TIMESTAMPS:
        raise VerificationError(f"bundle has {len(tokens)} timestamps; at most {MAX_TIMESTAMPS} accepted")
    if len(set(tokens)) != len(tokens):
        raise VerificationError("bundle repeats an RFC 3161 timestamp")
    verified: list[VerifiedTimestamp] = []
    ignored: list[str] = []
    for token in tokens:
        try:
            verified.append(verify_timestamp(token, signature, trusted_root))
        except UnverifiedTimestamp as exc:
            ignored.append(str(exc))
    return TimestampCheck(tuple(verified), tuple(ignored))
