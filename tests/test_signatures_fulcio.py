"""Fulcio chains, validity windows, EKU, identities, issuer OIDs and SCTs."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from lockman.errors import VerificationError
from lockman.signatures.fulcio import (
    certificate_identities,
    certificate_issuer,
    load_certificate,
    load_certificates,
    load_der_certificate,
    verify_certificate,
    verify_chain,
)
from lockman.signatures.trust import TrustedRoot, ValidityWindow, default_trusted_root
from tests.signing_helpers import T0, FakeFulcio, fixture_bytes, new_key

SIGNED_AT = datetime.fromtimestamp(1670870899, tz=UTC)  # rekor-set integratedTime


def loose_leaf():
    return load_certificate(fixture_bytes("fulcio-cert")), load_certificates(fixture_bytes("fulcio-chain"))


def test_loose_cert_verifies_with_default_root_including_sct() -> None:
    leaf, chain = loose_leaf()
    v = verify_certificate(leaf, chain, default_trusted_root(), SIGNED_AT)
    assert v.identities == ("mitr@redhat.com",)
    assert v.issuer == "https://github.com/login/oauth"
    assert v.sct_log_id == "dd3d306ac6c7113263191e1c99673702a24a5eb8de3cadff878a72802f29ee8e"
    assert len(v.path) == 2  # leaf -> intermediate, which the trusted root holds


def test_loose_cert_with_loose_fulcio_root() -> None:
    leaf, chain = loose_leaf()
    root = TrustedRoot.from_pems(fulcio_certs=[fixture_bytes("fulcio_v1.crt.pem")])
    v = verify_certificate(leaf, chain, root, SIGNED_AT, ignore_sct=True)
    assert len(v.path) == 3 and v.sct_log_id is None
    with pytest.raises(VerificationError, match=r"SCT from unknown CT log dd3d306a"):
        verify_certificate(leaf, chain, root, SIGNED_AT)
    with pytest.raises(VerificationError, match=r"no trusted issuer"):
        verify_chain(leaf, [], root, SIGNED_AT)  # intermediate missing


@pytest.mark.parametrize("delta", [timedelta(hours=-1), timedelta(hours=1)])
def test_time_outside_leaf_validity(delta: timedelta) -> None:
    leaf, chain = loose_leaf()
    with pytest.raises(VerificationError, match=r"signing certificate .* not valid at"):
        verify_chain(leaf, chain, default_trusted_root(), SIGNED_AT + delta)


def test_time_outside_ca_window() -> None:
    leaf, chain = loose_leaf()
    root = default_trusted_root()
    closed = tuple(
        replace(ca, validity=ValidityWindow(end=SIGNED_AT - timedelta(days=1)))
        for ca in root.certificate_authorities
    )
    with pytest.raises(VerificationError, match=r"CA .* not valid at 2022-12-12"):
        verify_chain(leaf, chain, replace(root, certificate_authorities=closed), SIGNED_AT)


def test_bundle_cert_issuer_oids_agree() -> None:
    doc = json.loads(fixture_bytes("oci-attestation.sigstore.json"))
    leaf = load_der_certificate(base64.b64decode(doc["verificationMaterial"]["certificate"]["rawBytes"]))
    assert certificate_issuer(leaf) == "https://github.com/login/oauth"
    assert certificate_identities(leaf) == ["cody@soyland.com"]


def test_disagreeing_issuer_oids_rejected() -> None:
    fulcio = FakeFulcio()
    leaf = fulcio.leaf(new_key("p256"), issuer="https://a.test", issuer_v1="https://b.test")
    with pytest.raises(VerificationError, match=r"issuer extensions disagree"):
        certificate_issuer(leaf)


def test_fresh_chain_sct_and_eku() -> None:
    fulcio = FakeFulcio()
    root = fulcio.trusted_root()
    good = fulcio.leaf(
        new_key("ed25519"),
        identity="https://github.com/org/repo/.github/workflows/x.yml@refs/heads/main",
    )
    v = verify_certificate(good, [], root, T0)
    assert v.identities[0].startswith("https://github.com/org/repo/")
    assert v.sct_log_id == fulcio.ct_log_id.hex()
    client = fulcio.leaf(new_key("p256"), eku=ExtendedKeyUsageOID.CLIENT_AUTH)
    with pytest.raises(VerificationError, match=r"not for code signing"):
        verify_certificate(client, [], root, T0)
    no_sct = fulcio.leaf(new_key("p256"), with_sct=False)
    with pytest.raises(VerificationError, match=r"no embedded SCT"):
        verify_certificate(no_sct, [], root, T0)
    assert verify_certificate(no_sct, [], root, T0, ignore_sct=True).sct_log_id is None


def test_forged_sct_rejected() -> None:
    fulcio = FakeFulcio()
    leaf = fulcio.leaf(new_key("p256"))
    impostor = FakeFulcio()
    # Same CT log id, different key: the SCT signature must not verify.
    root = fulcio.trusted_root()
    fake_ct = replace(root.ctlogs[0], key=impostor.ct_key.public_key())
    with pytest.raises(VerificationError, match=r"SCT signature does not verify"):
        verify_certificate(leaf, [], replace(root, ctlogs=(fake_ct,)), T0)


def test_chain_to_foreign_ca_rejected() -> None:
    leaf = FakeFulcio().leaf(new_key("p256"))
    with pytest.raises(VerificationError, match=r"no trusted issuer"):
        verify_chain(leaf, [], FakeFulcio().trusted_root(), T0)
    with pytest.raises(VerificationError, match=r"no Fulcio certificate authorities"):
        verify_chain(leaf, [], TrustedRoot(), T0)
