"""SbomVerifier: whether an image's SBOM came signed by the signer its policy demands, over
both routes an SBOM attestation takes (a Sigstore bundle referrer, a classic ``.att`` layer)."""

from __future__ import annotations

import re

from lockman.enforce.attestation import sbom_verifier
from lockman.signatures import PolicySet, build_policy
from lockman.signatures.policy import PolicyRule
from tests.support.signing_helpers import attestation_layer, make_bundle, new_key

D = "sha256:" + "a" * 64
CYCLONEDX = "https://cyclonedx.org/bom"


def test_sbom_bundle_verdict_under_a_policy() -> None:
    priv, other = new_key("p256"), new_key("p256")
    policy = build_policy(key=priv.public_key(), ignore_tlog=True)
    policies = PolicySet((PolicyRule(("rust",), policy),))
    assert sbom_verifier(policies, "other:1") is None  # no rule covers it: no verdict at all
    assert sbom_verifier(None, "rust:1") is None  # no policy at all
    verify = sbom_verifier(policies, "rust:1")
    assert verify is not None
    sbom = make_bundle(priv, D, None, predicate_type=CYCLONEDX, predicate={"bomFormat": "CycloneDX"})
    good = verify(D, sbom)
    assert good.verified and re.fullmatch(r"signed by key sha256:[0-9a-f]{64}", good.detail)
    forged = make_bundle(other, D, None, predicate_type=CYCLONEDX)
    bad = verify(D, forged)
    assert not bad.verified and "DSSE signature does not verify" in bad.detail
    sig = verify(D, make_bundle(priv, D, None))  # a plain signature bundle is no SBOM attestation
    assert not sig.verified
    assert sig.detail == "attested predicate 'https://sigstore.dev/cosign/sign/v1' is no SBOM"


def test_sbom_att_layer_verdict_under_a_policy() -> None:
    priv, other = new_key("p256"), new_key("p256")
    policies = PolicySet((PolicyRule(("rust",), build_policy(key=priv.public_key(), ignore_tlog=True)),))
    verify = sbom_verifier(policies, "rust:1")
    assert verify is not None

    def att(key: object, predicate_type: str = CYCLONEDX) -> tuple[str, bytes, dict[str, str]]:
        layer = attestation_layer(key, D, None, predicate_type, predicate={"bomFormat": "CycloneDX"})  # type: ignore[arg-type]
        return layer.media_type, layer.payload, dict(layer.annotations)

    assert verify.cosign_att(D, *att(priv)).verified
    forged = verify.cosign_att(D, *att(other))
    assert not forged.verified and "DSSE signature does not verify" in forged.detail
    slsa = verify.cosign_att(D, *att(priv, "https://slsa.dev/provenance/v1"))
    assert not slsa.verified and slsa.detail == "attested predicate 'https://slsa.dev/provenance/v1' is no SBOM"
    other_image = verify.cosign_att("sha256:" + "b" * 64, *att(priv))
    assert not other_image.verified and other_image.detail == f"statement subject {D} != sha256:{'b' * 64}"
