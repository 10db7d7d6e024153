"""Whether an SBOM's attestation verified, for images a signature policy covers.

`update` and `diff --insight` read SBOMs to say which packages changed; reading needs no
signature, but where the project demands signatures the report says whether the SBOM itself
came signed by the same signer: a Sigstore bundle attached as an OCI referrer, or a classic
cosign attestation (a DSSE layer of the ``sha256-<hex>.att`` manifest).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lockman.errors import VerificationError
from lockman.model.insight import SbomSignature, clip, sbom_kind
from lockman.signatures import Policy, PolicySet, SignatureLayer, SignatureResult, verify_bundle
from lockman.signatures.attestation import verify_attestation_layer


@dataclass(frozen=True)
class SbomVerifier:
    """Verdicts on an image's SBOM attestations under its signature policy."""

    policy: Policy

    def __call__(self, digest: str, bundle: bytes) -> SbomSignature:
        """A Sigstore bundle about ``digest``."""
        return self._verdict(lambda: verify_bundle(digest, bundle, self.policy))

    def cosign_att(
        self, digest: str, media_type: str, envelope: bytes, annotations: Mapping[str, str]
    ) -> SbomSignature:
        """One layer of ``digest``'s ``.att`` manifest: its DSSE envelope and annotations."""
        layer = SignatureLayer(media_type, envelope, annotations)
        return self._verdict(lambda: verify_attestation_layer(digest, layer, self.policy))

    @staticmethod
    def _verdict(check: Callable[[], SignatureResult]) -> SbomSignature:
        try:
            result = check()
        except VerificationError as e:
            return SbomSignature(False, clip(str(e)))
        if sbom_kind(result.predicate_type) is None:
            return SbomSignature(False, f"attested predicate {clip(result.predicate_type, 80)!r} is no SBOM")
        return SbomSignature(True, f"signed by {result.signer}")


def sbom_verifier(policies: PolicySet | None, image: str) -> SbomVerifier | None:
    """A checker under ``image``'s policy, or None when no policy covers the image."""
    policy = policies.policy_for(image) if policies is not None else None
    return SbomVerifier(policy) if policy is not None else None
