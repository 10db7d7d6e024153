"""Fulcio chains, validity windows, EKU, identities, issuer OIDs and SCTs."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from lockman.errors import VerificationError
from lockman.signatures.fulcio import (
    CHAIN_REASONS,
    ChainError,
    certificate_identities,
    certificate_issuer,
    load_certificate,
    load_certificates,
    load_der_certificate,
    verify_certificate,
    verify_chain,
    verify_sct,
)
from lockman.signatures.trust import CertificateAuthority, TrustedRoot, ValidityWindow, default_trusted_root
from tests.support.signing_helpers import T0, FakeFulcio, ca_cert, cert_pem, fixture_bytes, new_key

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


def test_the_reason_that_got_furthest_wins_over_a_foreign_ca() -> None:
    """Several CAs: 'no trusted issuer' from a foreign one is the least telling reason."""
    fulcio = FakeFulcio()
    leaf = fulcio.leaf(new_key("p256"))
    (ours,) = fulcio.trusted_root().certificate_authorities
    (foreign,) = FakeFulcio().trusted_root().certificate_authorities
    closed = replace(ours, validity=ValidityWindow(end=T0 - timedelta(days=1)))
    for order in ((foreign, closed), (closed, foreign)):
        root = replace(fulcio.trusted_root(), certificate_authorities=order)
        with pytest.raises(VerificationError, match=r"^certificate chain: CA .* not valid at"):
            verify_chain(leaf, [], root, T0)


# ---------------------------------------------------------------- forged chains: each check's refusal
# Each test builds the certificate an attacker would use if that one check were missing.


def _chain_through_untrusted_intermediate(fulcio: FakeFulcio) -> tuple:
    """Leaf + the (possibly forged) intermediate as an untrusted helper; only the root is trusted."""
    leaf = fulcio.leaf(new_key("p256"))
    return leaf, [fulcio.intermediate], fulcio.trusted_root(chain="root")


@pytest.mark.parametrize(
    ("intermediate", "refusal"),
    [
        ({"ca": False}, r"basicConstraints.cA must be asserted in a CA certificate"),
        ({"ca": None}, r"CA certificate has no basicConstraints"),  # no basicConstraints at all
        ({"key_cert_sign": False}, r"keyUsage.keyCertSign must be asserted in a CA certificate"),
        # no keyUsage (cryptography 48 names the OID "2.5.29.15: ", 51 "keyUsage (2.5.29.15): ")
        ({"key_cert_sign": None}, r"2\.5\.29\.15\)?: Certificate is missing required extension"),
        ({"not_after": T0 - timedelta(minutes=6)}, r"CA certificate .*test-intermediate.* not valid at"),
        ({"not_before": T0 + timedelta(minutes=1)}, r"CA certificate .*test-intermediate.* not valid at"),
    ],
)
def test_forged_intermediate_refused(intermediate: dict, refusal: str) -> None:
    fulcio = FakeFulcio()
    fulcio.reissue(intermediate=intermediate)
    leaf, helpers, root = _chain_through_untrusted_intermediate(fulcio)
    with pytest.raises(VerificationError, match=refusal):
        verify_chain(leaf, helpers, root, T0)


def test_root_path_length_exceeded() -> None:
    fulcio = FakeFulcio()
    fulcio.reissue(root={"path_length": 0})  # root may sign leaves only, not another CA
    leaf, helpers, root = _chain_through_untrusted_intermediate(fulcio)
    with pytest.raises(VerificationError, match=r"path length constraint violated"):
        verify_chain(leaf, helpers, root, T0)
    fulcio.reissue(root={"path_length": 1})
    leaf, helpers, root = _chain_through_untrusted_intermediate(fulcio)
    assert [c.subject for c in verify_chain(leaf, helpers, root, T0)[1:]] == [
        fulcio.intermediate.subject,
        fulcio.root.subject,
    ]


def test_impostor_intermediate_with_trusted_name_refused() -> None:
    """Same subject as the trusted intermediate, own key: the signature link must not hold."""
    fulcio, impostor = FakeFulcio(), FakeFulcio()
    leaf = impostor.leaf(new_key("p256"))
    with pytest.raises(ChainError, match=r"^certificate chain: path validation failed") as refused:
        verify_chain(leaf, [impostor.intermediate, impostor.root], fulcio.trusted_root(chain="root"), T0)
    assert refused.value.reason == "rejected"


def test_issuer_name_must_match_as_well_as_signature() -> None:
    """A certificate signed by the intermediate's key but naming another issuer is not its child."""
    fulcio = FakeFulcio()
    renamed = ca_cert("renamed-intermediate", fulcio.inter_key, fulcio.root, fulcio.root_key, path_length=0)
    leaf = fulcio.leaf(new_key("p256"))  # issuer name: test-intermediate
    root = TrustedRoot(certificate_authorities=(CertificateAuthority(chain=(renamed, fulcio.root)),))
    with pytest.raises(VerificationError, match=r"no trusted issuer found"):
        verify_chain(leaf, [], root, T0)


def test_overlong_chain_refused() -> None:
    """Nine untrusted CAs between leaf and root: the walk stops instead of following them."""
    fulcio = FakeFulcio()
    keys = [new_key("p256") for _ in range(9)]
    parent, parent_key, helpers = fulcio.root, fulcio.root_key, []
    for i, key in enumerate(keys):
        name = "test-intermediate" if i == len(keys) - 1 else f"ca-{i}"
        parent = ca_cert(name, key, parent, parent_key)
        parent_key = key
        helpers.append(parent)
    fulcio.inter_key = keys[-1]  # the leaf is issued by the last CA of the ladder
    leaf = fulcio.leaf(new_key("p256"))
    with pytest.raises(VerificationError, match=r"chain construction exceeds max depth"):
        verify_chain(leaf, helpers, fulcio.trusted_root(chain="root"), T0)


@pytest.mark.parametrize(
    ("leaf_kw", "refusal"),
    [
        ({"omit": ("eku",)}, r"signing certificate has no extended key usage"),
        ({"ca": True}, r"signing certificate is a CA certificate"),
    ],
)
def test_forged_leaf_usage_refused(leaf_kw: dict, refusal: str) -> None:
    fulcio = FakeFulcio()
    leaf = fulcio.leaf(new_key("p256"), **leaf_kw)
    with pytest.raises(VerificationError, match=refusal):
        verify_certificate(leaf, [], fulcio.trusted_root(), T0)


def test_leaf_with_ca_false_is_fine() -> None:
    fulcio = FakeFulcio()
    leaf = fulcio.leaf(new_key("p256"), ca=False)
    assert verify_certificate(leaf, [], fulcio.trusted_root(), T0).issuer == "https://issuer.lockman.test"


def test_leaf_trusted_as_its_own_ca_cannot_prove_an_sct() -> None:
    """A trusted root listing the leaf itself: there is no issuer to check the SCT against."""
    fulcio = FakeFulcio()
    leaf = fulcio.leaf(new_key("p256"))
    root = replace(fulcio.trusted_root(), certificate_authorities=(CertificateAuthority(chain=(leaf,)),))
    with pytest.raises(VerificationError, match=r"cannot check SCT: .* no issuer in path"):
        verify_certificate(leaf, [], root, T0)


def test_sct_with_sha384_refused() -> None:
    fulcio = FakeFulcio()
    leaf = fulcio.leaf(new_key("p256"), sct_hash=5)
    with pytest.raises(VerificationError, match=r"^SCT hash algorithm is not SHA-256$"):
        verify_certificate(leaf, [], fulcio.trusted_root(), T0)


def test_sct_log_key_outside_its_window_refused() -> None:
    fulcio = FakeFulcio()
    leaf = fulcio.leaf(new_key("p256"))
    root = fulcio.trusted_root()
    retired = replace(root.ctlogs[0], validity=ValidityWindow(end=T0 - timedelta(days=1)))
    with pytest.raises(VerificationError, match=r"^CT log [0-9a-f]+ key not valid at"):
        verify_certificate(leaf, [], replace(root, ctlogs=(retired,)), T0)


def test_issuer_from_either_extension_alone() -> None:
    """Fulcio certificates carry .1.1, .1.8 or both; each alone names the issuer."""
    fulcio = FakeFulcio()
    only_v2 = fulcio.leaf(new_key("p256"), issuer="https://v2.test", omit=("issuer_v1",), with_sct=False)
    assert certificate_issuer(only_v2) == "https://v2.test"
    only_v1 = fulcio.leaf(new_key("p256"), issuer="https://v1.test", omit=("issuer_v2",), with_sct=False)
    assert certificate_issuer(only_v1) == "https://v1.test"
    neither = fulcio.leaf(new_key("p256"), omit=("issuer_v1", "issuer_v2"), with_sct=False)
    assert certificate_issuer(neither) is None
    long_form = "https://" + "x" * 200 + ".test"
    raw = bytes([0x0C, 0x81, len(long_form)]) + long_form.encode()
    long_leaf = fulcio.leaf(new_key("p256"), issuer_v1=long_form, issuer_v2_der=raw, with_sct=False)
    assert certificate_issuer(long_leaf) == long_form


@pytest.mark.parametrize(
    ("raw", "refusal"),
    [
        (b"", r"not a DER UTF8String"),
        (b"\x0c", r"not a DER UTF8String"),
        (b"\x04\x03abc", r"not a DER UTF8String"),  # OCTET STRING, not UTF8String
        (b"\x0c\x80", r"bad DER length"),  # indefinite length
        (b"\x0c\x85\x00\x00\x00\x00\x03abc", r"bad DER length"),  # 5 length bytes
        (b"\x0c\x82\x01", r"bad DER length"),  # length bytes cut off
        (b"\x0c\x05abc", r"bad DER length"),  # shorter than it says
        (b"\x0c\x02abc", r"bad DER length"),  # trailing bytes
        (b"\x0c\x02\xff\xfe", r"not UTF-8"),
    ],
)
def test_malformed_issuer_v2_refused(raw: bytes, refusal: str) -> None:
    leaf = FakeFulcio().leaf(new_key("p256"), omit=("issuer_v1",), issuer_v2_der=raw, with_sct=False)
    with pytest.raises(VerificationError, match=refusal):
        certificate_issuer(leaf)


def test_load_certificate_wants_exactly_one() -> None:
    fulcio = FakeFulcio()
    two = cert_pem(fulcio.root) + cert_pem(fulcio.intermediate)
    with pytest.raises(VerificationError, match=r"signing certificate: expected one PEM certificate, found 2"):
        load_certificate(two, "signing certificate")
    with pytest.raises(VerificationError, match=r"expected one PEM certificate, found 0"):
        load_certificate(b"  \n")
    with pytest.raises(VerificationError, match=r"chain: not PEM certificates"):
        load_certificates(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "chain")
    with pytest.raises(VerificationError, match=r"bundle certificate: not a DER certificate"):
        load_der_certificate(b"\x30\x03\x02\x01\x00", "bundle certificate")


def test_sct_from_unknown_log_reported_as_such() -> None:
    """An SCT no trusted CT log can vouch for is named for that, whatever else is odd about it."""
    fulcio = FakeFulcio()
    leaf = fulcio.leaf(new_key("p256"), sct_hash=5)
    with pytest.raises(VerificationError, match=r"^SCT from unknown CT log [0-9a-f]{64}$"):
        verify_sct(leaf, fulcio.intermediate, FakeFulcio().trusted_root())


# ---------------------------------------------------------------- path validation by cryptography
# What the hand-written walk got wrong: it never refused an unknown critical extension, a name
# outside the CA's name constraints or a forbidden signature algorithm, and took the first issuer
# that verified without backtracking. cryptography's x509.verification does all four.


def _leaf_builder(issuer: x509.Certificate, issuer_key, san: x509.GeneralName) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer.subject)
        .public_key(new_key("p256").public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(T0 - timedelta(minutes=5))
        .not_valid_after(T0 + timedelta(minutes=5))
        .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )


def test_unknown_critical_extension_refused() -> None:
    """RFC 5280 §4.2: a certificate with a critical extension the verifier does not know is refused."""
    fulcio = FakeFulcio()
    builder = _leaf_builder(fulcio.intermediate, fulcio.inter_key, x509.RFC822Name("a@lockman.test"))
    assert len(verify_chain(builder.sign(fulcio.inter_key, hashes.SHA384()), [], fulcio.trusted_root(), T0)) == 2
    odd = builder.add_extension(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"), True)
    with pytest.raises(ChainError, match=r"unaccounted-for critical extensions") as refused:
        verify_chain(odd.sign(fulcio.inter_key, hashes.SHA384()), [], fulcio.trusted_root(), T0)
    assert refused.value.reason == "rejected"


@pytest.mark.parametrize(
    ("constraints", "san", "refusal"),
    [
        (x509.NameConstraints([x509.DNSName("lockman.test")], None), x509.DNSName("evil.test"), "no permitted name constraints matched SAN"),
        (x509.NameConstraints(None, [x509.DNSName("evil.test")]), x509.DNSName("evil.test"), "excluded name constraint matched SAN"),
        (x509.NameConstraints([x509.RFC822Name("lockman.test")], None), x509.RFC822Name("a@evil.test"), "no permitted name constraints matched SAN"),
    ],
)
def test_name_outside_the_cas_name_constraints_refused(constraints, san, refusal: str) -> None:
    """An intermediate constrained to some names cannot vouch for others (RFC 5280 §4.2.1.10)."""
    fulcio = FakeFulcio()
    key = new_key("p384")
    constrained = (
        x509.CertificateBuilder()
        .subject_name(fulcio.intermediate.subject)
        .issuer_name(fulcio.root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(T0 - timedelta(days=1))
        .not_valid_after(T0 + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(fulcio.intermediate.extensions.get_extension_for_class(x509.KeyUsage).value, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(fulcio.root_key.public_key()), critical=False)
        .add_extension(constraints, critical=True)
        .sign(fulcio.root_key, hashes.SHA384())
    )
    root = fulcio.trusted_root(chain="root")
    fits = x509.RFC822Name("a@lockman.test") if isinstance(san, x509.RFC822Name) else x509.DNSName("a.lockman.test")
    assert len(verify_chain(_leaf_builder(constrained, key, fits).sign(key, hashes.SHA384()), [constrained], root, T0)) == 3
    with pytest.raises(ChainError, match=refusal) as refused:
        verify_chain(_leaf_builder(constrained, key, san).sign(key, hashes.SHA384()), [constrained], root, T0)
    assert refused.value.reason == "rejected"


def test_path_found_by_backtracking_past_a_dead_end() -> None:
    """Two intermediates with the same name and key (a re-issued CA): the first one tried was
    issued by an untrusted root, the second by the trusted one. The walk must try the second."""
    fulcio, stranger = FakeFulcio(), FakeFulcio()
    dead_end = ca_cert("test-intermediate", fulcio.inter_key, stranger.root, stranger.root_key, path_length=0)
    leaf = fulcio.leaf(new_key("p256"))
    path = verify_chain(leaf, [dead_end, fulcio.intermediate], fulcio.trusted_root(chain="root"), T0)
    assert path == [leaf, fulcio.intermediate, fulcio.root]
    expired = ca_cert("test-intermediate", fulcio.inter_key, fulcio.root, fulcio.root_key, path_length=0,
                      not_before=T0 - timedelta(days=9), not_after=T0 - timedelta(days=1))  # fmt: skip
    path = verify_chain(leaf, [expired, fulcio.intermediate], fulcio.trusted_root(chain="root"), T0)
    assert path == [leaf, fulcio.intermediate, fulcio.root]


def test_forbidden_signature_algorithm_refused() -> None:
    """The Web PKI profile's algorithms only: an ECDSA-with-SHA-224 signature is refused."""
    fulcio = FakeFulcio()
    builder = _leaf_builder(fulcio.intermediate, fulcio.inter_key, x509.RFC822Name("a@lockman.test"))
    with pytest.raises(ChainError, match=r"Forbidden signature algorithm") as refused:
        verify_chain(builder.sign(fulcio.inter_key, hashes.SHA224()), [], fulcio.trusted_root(), T0)
    assert refused.value.reason == "rejected"


def test_common_failures_keep_lockmans_words_and_reason() -> None:
    """Expired leaf, foreign CA, CA outside its trusted window: one clear line and a reason field."""
    fulcio = FakeFulcio()
    leaf = fulcio.leaf(new_key("p256"))
    cases = [
        (leaf, fulcio.trusted_root(), T0 + timedelta(hours=1), "leaf-not-valid", r"signing certificate .* not valid at"),
        (leaf, FakeFulcio().trusted_root(), T0, "foreign-issuer", r"^certificate chain: no trusted issuer found"),
    ]
    (ca,) = fulcio.trusted_root().certificate_authorities
    closed = replace(fulcio.trusted_root(), certificate_authorities=(replace(ca, validity=ValidityWindow(end=T0 - timedelta(days=1))),))
    cases.append((leaf, closed, T0, "ca-outside-window", r"^certificate chain: CA .* not valid at"))
    for cert, root, when, reason, words in cases:
        with pytest.raises(ChainError, match=words) as refused:
            verify_chain(cert, [], root, when)
        assert refused.value.reason == reason and reason in CHAIN_REASONS


def test_an_expired_trust_anchor_is_refused() -> None:
    """Every certificate of the path, the trusted root's own included, must be valid at the time."""
    fulcio = FakeFulcio()
    fulcio.reissue(root={"not_after": T0 - timedelta(minutes=6)})
    leaf = fulcio.leaf(new_key("p256"))
    with pytest.raises(ChainError, match=r"cert is not valid at validation time") as refused:
        verify_chain(leaf, [fulcio.intermediate], fulcio.trusted_root(chain="root"), T0)
    assert refused.value.reason == "rejected"
