"""The verdict a successful verification returns, shared by ``.sig`` layers and bundles."""

from __future__ import annotations

from dataclasses import dataclass

from lockman.signatures.rekor import TlogVerification


@dataclass(frozen=True)
class SignatureResult:
    """Which signature verified, and who made it.

    ``signer`` is ready to print: ``key sha256:…`` or ``<identity> (issuer <issuer>)``.
    """

    kind: str
    """``"cosign-signature"`` (a ``.sig`` layer), ``"cosign-attestation"`` (an ``.att`` layer)
    or ``"sigstore-bundle"``."""
    index: int
    """Layer index in the ``.sig`` / ``.att`` manifest (0 for a bundle)."""
    signer: str
    key_fingerprint: str
    """``sha256:<hex>`` of the verifying public key's SPKI (the Fulcio leaf's key if keyless)."""
    certificate_identity: str | None = None
    certificate_issuer: str | None = None
    tlog: TlogVerification | None = None
    """None when the transparency log was not required (``ignore_tlog``)."""
    sct_log_id: str | None = None
    predicate_type: str | None = None
    """For bundles and ``.att`` layers: the in-toto predicate type the DSSE statement carried."""
    timestamps: tuple[str, ...] = ()
    """Verified RFC 3161 times (ISO 8601, UTC), e.g. the time source of a Rekor v2 entry."""
