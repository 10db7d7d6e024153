"""Sigstore bundle v0.3 (DSSE) verification: the real cosign bundle and forged ones."""

from __future__ import annotations

import base64
import json

import pytest

from lockman.errors import VerificationError
from lockman.signatures import COSIGN_SIGN_PREDICATE, Policy, TrustedRoot, verify_bundle
from lockman.signatures.bundle import pae
from tests.signing_helpers import FakeFulcio, FakeRekor, fixture_bytes, make_bundle, new_key

# Subject of the in-toto statement in oci-attestation.sigstore.json.
DIGEST = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
GITHUB = "https://github.com/login/oauth"
CODY = Policy(certificate_identity="cody@soyland.com", certificate_oidc_issuer=GITHUB)


def real() -> bytes:
    return fixture_bytes("oci-attestation.sigstore.json")


def edited(fn) -> bytes:
    doc = json.loads(real())
    fn(doc)
    return json.dumps(doc).encode()


def test_pae() -> None:
    assert pae("t", b"ab") == b"DSSEv1 1 t 2 ab"


def test_real_bundle_verifies_with_public_good_root() -> None:
    result = verify_bundle(DIGEST, real(), CODY)
    assert result.kind == "sigstore-bundle"
    assert result.signer == f"cody@soyland.com (issuer {GITHUB})"
    assert result.predicate_type == "https://cosign.sigstore.dev/attestation/v1"
    assert result.tlog is not None and result.tlog.set_verified and result.tlog.inclusion_proof_verified
    assert result.sct_log_id == "dd3d306ac6c7113263191e1c99673702a24a5eb8de3cadff878a72802f29ee8e"


def test_real_bundle_wrong_digest_identity_issuer_predicate() -> None:
    with pytest.raises(VerificationError, match=rf"statement subject {DIGEST} != sha256:0000"):
        verify_bundle("sha256:" + "00" * 32, real(), CODY)
    with pytest.raises(VerificationError, match=r"does not match 'mitr@redhat.com'"):
        verify_bundle(
            DIGEST,
            real(),
            Policy(certificate_identity="mitr@redhat.com", certificate_oidc_issuer=GITHUB),
        )
    with pytest.raises(VerificationError, match=r"does not match 'https://accounts"):
        verify_bundle(
            DIGEST,
            real(),
            Policy(
                certificate_identity="cody@soyland.com",
                certificate_oidc_issuer_regexp="https://accounts.*",
            ),
        )
    with pytest.raises(VerificationError, match=r"predicate type .* is not one of"):
        verify_bundle(DIGEST, real(), CODY, predicate_types={COSIGN_SIGN_PREDICATE})


def test_real_bundle_tampering() -> None:
    def flip_sig(doc: dict) -> None:
        sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
        sig[12] ^= 0x80
        doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(sig).decode()

    with pytest.raises(VerificationError, match=r"DSSE signature does not verify with key"):
        verify_bundle(DIGEST, edited(flip_sig), CODY)

    def alter_set(doc: dict) -> None:
        doc["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = "1740770292"

    with pytest.raises(VerificationError, match=r"tlog: Rekor SET does not verify"):
        verify_bundle(DIGEST, edited(alter_set), CODY)

    def drop_tlog(doc: dict) -> None:
        doc["verificationMaterial"]["tlogEntries"] = []

    with pytest.raises(VerificationError, match=r"no tlog entry"):
        verify_bundle(DIGEST, edited(drop_tlog), CODY)
    # Without the tlog there is no trusted time: the 10-minute cert is checked now, and fails.
    with pytest.raises(VerificationError, match=r"not valid at"):
        verify_bundle(
            DIGEST,
            edited(drop_tlog),
            Policy(
                certificate_identity="cody@soyland.com",
                certificate_oidc_issuer=GITHUB,
                ignore_tlog=True,
            ),
        )

    def message_signature(doc: dict) -> None:
        doc["messageSignature"] = doc.pop("dsseEnvelope")

    with pytest.raises(VerificationError, match=r"messageSignature is not supported"):
        verify_bundle(DIGEST, edited(message_signature), CODY)

    def media_type(doc: dict) -> None:
        doc["mediaType"] = "application/json"

    with pytest.raises(VerificationError, match=r"media type 'application/json'"):
        verify_bundle(DIGEST, edited(media_type), CODY)


def test_real_bundle_wrong_key_policy() -> None:
    with pytest.raises(VerificationError, match=r"DSSE signature does not verify"):
        verify_bundle(DIGEST, real(), Policy(key=new_key("p256").public_key()))


FRESH_DIGEST = "sha256:" + "c3" * 32


@pytest.mark.parametrize("alg", ["p256", "p384", "rsa", "ed25519"])
def test_fresh_bundles_keyed_and_keyless(alg: str) -> None:
    priv, rekor, fulcio = new_key(alg), FakeRekor(), FakeFulcio()
    root = fulcio.trusted_root(rekor)
    keyed = Policy(key=priv.public_key(), trusted_root=root)
    result = verify_bundle(
        FRESH_DIGEST, make_bundle(priv, FRESH_DIGEST, rekor), keyed, {COSIGN_SIGN_PREDICATE}
    )
    assert result.signer.startswith("key sha256:") and result.tlog is not None
    leaf = fulcio.leaf(priv, identity="https://github.com/o/r/.github/workflows/release.yml@refs/tags/v1")
    keyless = Policy(
        certificate_identity_regexp=r"https://github\.com/o/r/\.github/workflows/.*",
        certificate_oidc_issuer="https://issuer.lockman.test",
        trusted_root=root,
    )
    result = verify_bundle(FRESH_DIGEST, make_bundle(priv, FRESH_DIGEST, rekor, leaf), keyless)
    assert result.certificate_identity and result.certificate_identity.endswith("@refs/tags/v1")


def test_fresh_bundle_untrusted_rekor_and_no_tlog() -> None:
    priv, rekor = new_key("p256"), FakeRekor()
    policy = Policy(key=priv.public_key(), trusted_root=TrustedRoot(tlogs=(FakeRekor().log_key(),)))
    with pytest.raises(VerificationError, match=r"tlog: tlog entry from unknown Rekor log"):
        verify_bundle(FRESH_DIGEST, make_bundle(priv, FRESH_DIGEST, rekor), policy)
    relaxed = Policy(key=priv.public_key(), ignore_tlog=True)
    assert verify_bundle(FRESH_DIGEST, make_bundle(priv, FRESH_DIGEST, None), relaxed).tlog is None
