"""Whether an SBOM's attestation verified, for images a signature policy covers.

`update` and `diff --insight` read SBOMs to say which packages changed; reading needs no
signature, but where the project demands signatures the report says whether the SBOM itself
came signed by the same signer (a Sigstore bundle attached as an OCI referrer).
"""

from __future__ import annotations

from collections.abc import Callable

from lockman.errors import VerificationError
from lockman.model.insight import SbomSignature, clip, sbom_kind
from lockman.signatures import PolicySet, verify_bundle

SbomVerifier = Callable[[str, bytes], SbomSignature]


def sbom_verifier(policies: PolicySet | None, image: str) -> SbomVerifier | None:
    """A bundle checker under ``image``'s policy, or None when no policy covers the image."""
    policy = policies.policy_for(image) if policies is not None else None
    if policy is None:
        return None

    def verify(digest: str, bundle: bytes) -> SbomSignature:
        try:
            result = verify_bundle(digest, bundle, policy)
        except VerificationError as e:
            return SbomSignature(False, clip(str(e)))
        if sbom_kind(result.predicate_type) is None:
            return SbomSignature(False, f"attested predicate {clip(result.predicate_type, 80)!r} is no SBOM")
        return SbomSignature(True, f"signed by {result.signer}")

    return verify
