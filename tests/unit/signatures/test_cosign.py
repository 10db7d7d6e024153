"""``.sig`` layer verification: every dir-img fixture, the loose keyless signature, fresh keys."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta

import pytest

from lockman.errors import InputError, VerificationError
from lockman.signatures import Policy, TrustedRoot, build_policy, signature_tag, verify_signatures
from lockman.signatures.cosign import (
    ANNOTATION_BUNDLE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_CHAIN,
    ANNOTATION_SIGNATURE,
    SIMPLE_SIGNING_MEDIA_TYPE,
    SignatureLayer,
    verify_layer,
)
from lockman.signatures.keys import key_fingerprint, load_public_key_file
from tests.support.signing_helpers import (
    T0,
    TESTDATA,
    FakeFulcio,
    FakeRekor,
    b64,
    fixture_bytes,
    fixture_digest,
    fixture_layers,
    keyed_layer,
    keyless_layer,
    new_key,
    sign,
)

COSIGN_PUB = load_public_key_file(TESTDATA / "cosign.pub")
COSIGN2_PUB = load_public_key_file(TESTDATA / "cosign2.pub")
NO_TLOG = build_policy(key=COSIGN_PUB, ignore_tlog=True)
GITHUB = "https://github.com/login/oauth"


def test_signature_tag() -> None:
    assert signature_tag("sha256:" + "ab" * 32) == "sha256-" + "ab" * 32 + ".sig"
    with pytest.raises(InputError, match=r"not sha256"):
        signature_tag("sha256:ABC")


# ------------------------------------------------------------- the dir-img fixtures


def test_valid_passes_without_tlog_and_names_the_key() -> None:
    d = "dir-img-cosign-valid"
    result = verify_signatures(fixture_digest(d), fixture_layers(d), NO_TLOG)
    assert result.index == 0 and result.tlog is None
    assert result.key_fingerprint == key_fingerprint(COSIGN_PUB)
    assert result.signer == f"key {key_fingerprint(COSIGN_PUB)}"


def test_valid_fails_when_tlog_required() -> None:
    d = "dir-img-cosign-valid"
    with pytest.raises(VerificationError, match=r"layer 0: no Rekor bundle annotation"):
        verify_signatures(fixture_digest(d), fixture_layers(d), build_policy(key=COSIGN_PUB))


def test_valid_2_both_layers_verify() -> None:
    d = "dir-img-cosign-valid-2"
    layers = fixture_layers(d)
    assert len(layers) == 2
    assert verify_signatures(fixture_digest(d), layers, NO_TLOG).index == 0
    assert verify_signatures(fixture_digest(d), layers[1:], NO_TLOG).signer.startswith("key sha256:")


def test_mixed_unknown_key_then_valid_is_accepted() -> None:
    d = "dir-img-cosign-mixed"
    assert verify_signatures(fixture_digest(d), fixture_layers(d), NO_TLOG).index == 1
    with pytest.raises(VerificationError, match=r"layer 0: signature does not verify with key sha256:c87a"):
        verify_signatures(fixture_digest(d), fixture_layers(d)[:1], NO_TLOG)


def test_modified_manifest_rejected_with_digest_reason() -> None:
    d = "dir-img-cosign-modified-manifest"
    digest = fixture_digest(d)
    with pytest.raises(VerificationError) as exc:
        verify_signatures(digest, fixture_layers(d), NO_TLOG)
    assert str(exc.value) == (
        "no signature matched: layer 0: payload digest "
        f"sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00 != {digest}"
    )


def test_other_attachment_ignored_so_nothing_verifies() -> None:
    d = "dir-img-cosign-other-attachment"
    layers = fixture_layers(d)
    assert layers[0].media_type == "text/plain"
    with pytest.raises(VerificationError, match=r"no application/vnd.dev.cosign.simplesigning"):
        verify_signatures(fixture_digest(d), layers, NO_TLOG)


def test_no_manifest_signature_binds_only_its_claimed_digest() -> None:
    (layer,) = fixture_layers("dir-img-cosign-no-manifest")
    assert not (TESTDATA / "dir-img-cosign-no-manifest" / "manifest.json").exists()
    claimed = fixture_digest("dir-img-cosign-valid")
    assert verify_signatures(claimed, [layer], NO_TLOG).index == 0
    with pytest.raises(VerificationError, match=r"payload digest"):
        verify_signatures("sha256:" + "0" * 64, [layer], NO_TLOG)


def test_key_rekor_valid_with_default_root_and_loose_rekor_pub() -> None:
    d = "dir-img-cosign-key-rekor-valid"
    result = verify_signatures(fixture_digest(d), fixture_layers(d), build_policy(key=COSIGN2_PUB))
    assert result.tlog is not None and result.tlog.set_verified
    assert result.tlog.log_index == 11608800
    loose = TrustedRoot.from_pems(rekor_keys=[fixture_bytes("rekor.pub")])
    assert verify_signatures(
        fixture_digest(d), fixture_layers(d), build_policy(key=COSIGN2_PUB, trusted_root=loose)
    ).tlog


def test_wrong_key_rejected() -> None:
    d = "dir-img-cosign-key-rekor-valid"
    with pytest.raises(VerificationError, match=r"layer 0: signature does not verify with key"):
        verify_signatures(fixture_digest(d), fixture_layers(d), build_policy(key=COSIGN_PUB))


def test_flipped_signature_bit_rejected() -> None:
    d = "dir-img-cosign-key-rekor-valid"
    (layer,) = fixture_layers(d)
    sig = bytearray(base64.b64decode(layer.annotations[ANNOTATION_SIGNATURE]))
    sig[10] ^= 0x01
    bad = replace(
        layer,
        annotations={**layer.annotations, ANNOTATION_SIGNATURE: base64.b64encode(sig).decode()},
    )
    with pytest.raises(VerificationError, match=r"signature does not verify with key"):
        verify_signatures(fixture_digest(d), [bad], build_policy(key=COSIGN2_PUB))


def test_altered_set_rejected() -> None:
    d = "dir-img-cosign-key-rekor-valid"
    (layer,) = fixture_layers(d)
    bundle = json.loads(layer.annotations[ANNOTATION_BUNDLE])
    bundle["Payload"]["integratedTime"] += 60
    bad = replace(layer, annotations={**layer.annotations, ANNOTATION_BUNDLE: json.dumps(bundle)})
    with pytest.raises(VerificationError, match=r"layer 0: Rekor SET does not verify"):
        verify_signatures(fixture_digest(d), [bad], build_policy(key=COSIGN2_PUB))


def test_set_for_another_signature_rejected() -> None:
    """A genuine SET, but its body records a different signature: swap in another entry."""
    d = "dir-img-cosign-key-rekor-valid"
    (layer,) = fixture_layers(d)
    other_set = fixture_bytes("rekor-set").decode()
    bad = replace(layer, annotations={**layer.annotations, ANNOTATION_BUNDLE: other_set})
    with pytest.raises(VerificationError, match=r"tlog entry records a different payload hash"):
        verify_signatures(fixture_digest(d), [bad], build_policy(key=COSIGN2_PUB))


# ------------------------------------------------------------- the loose keyless signature


def loose_keyless_layer() -> SignatureLayer:
    return SignatureLayer(
        SIMPLE_SIGNING_MEDIA_TYPE,
        fixture_bytes("rekor-payload"),
        {
            ANNOTATION_SIGNATURE: fixture_bytes("rekor-sig").decode(),
            ANNOTATION_CERTIFICATE: fixture_bytes("fulcio-cert").decode(),
            ANNOTATION_CHAIN: fixture_bytes("fulcio-chain").decode(),
            ANNOTATION_BUNDLE: fixture_bytes("rekor-set").decode(),
        },
    )


LOOSE_DIGEST = "sha256:fa93b01658e3a5a1686dc3ae55f170d8de487006fb53a28efcd12ab0710a2e5f"


def keyless(**kw: object) -> Policy:
    args: dict = {"certificate_identity": "mitr@redhat.com", "certificate_oidc_issuer": GITHUB}
    args.update(kw)
    return build_policy(**args)


def test_loose_keyless_with_default_root() -> None:
    result = verify_signatures(LOOSE_DIGEST, [loose_keyless_layer()], keyless())
    assert result.certificate_identity == "mitr@redhat.com"
    assert result.certificate_issuer == GITHUB
    assert result.signer == f"mitr@redhat.com (issuer {GITHUB})"
    assert result.sct_log_id and result.tlog and result.tlog.integrated_time == 1670870899


def test_loose_keyless_with_loose_pems() -> None:
    root = TrustedRoot.from_pems(
        rekor_keys=[fixture_bytes("rekor.pub")], fulcio_certs=[fixture_bytes("fulcio_v1.crt.pem")]
    )
    result = verify_signatures(
        LOOSE_DIGEST, [loose_keyless_layer()], keyless(trusted_root=root, ignore_sct=True)
    )
    assert result.sct_log_id is None
    with pytest.raises(VerificationError, match=r"SCT from unknown CT log"):
        verify_signatures(LOOSE_DIGEST, [loose_keyless_layer()], keyless(trusted_root=root))


def test_loose_keyless_wrong_identity_or_issuer() -> None:
    layer = loose_keyless_layer()
    with pytest.raises(
        VerificationError, match=r"certificate identity 'mitr@redhat.com' does not match 'x@y.z'"
    ):
        verify_signatures(LOOSE_DIGEST, [layer], keyless(certificate_identity="x@y.z"))
    with pytest.raises(
        VerificationError, match=r"certificate issuer 'https://github.com/login/oauth' != expected"
    ):
        verify_signatures(
            LOOSE_DIGEST, [layer], keyless(certificate_oidc_issuer="https://accounts.google.com")
        )
    with pytest.raises(VerificationError, match=r"does not match regexp 'mitr@redhat'"):
        verify_signatures(
            LOOSE_DIGEST,
            [layer],
            keyless(certificate_identity=None, certificate_identity_regexp="mitr@redhat"),
        )
    ok = keyless(certificate_identity=None, certificate_identity_regexp=r".*@redhat\.com")
    assert verify_signatures(LOOSE_DIGEST, [layer], ok).certificate_identity == "mitr@redhat.com"


def test_loose_keyless_ignore_tlog_checks_now_and_fails_expired() -> None:
    with pytest.raises(VerificationError, match=r"signing certificate .* not valid at"):
        verify_signatures(LOOSE_DIGEST, [loose_keyless_layer()], keyless(ignore_tlog=True))


def test_keyless_layer_without_certificate() -> None:
    d = "dir-img-cosign-valid"
    with pytest.raises(VerificationError, match=r"no certificate annotation"):
        verify_signatures(fixture_digest(d), fixture_layers(d), keyless(ignore_tlog=True))


# ------------------------------------------------------------- fresh keys, private Sigstore

DIGEST = "sha256:" + "5a" * 32
ALGS = ["p256", "p384", "rsa", "ed25519"]


@pytest.mark.parametrize("alg", ALGS)
def test_fresh_keyed_signature_with_private_rekor(alg: str) -> None:
    priv, rekor = new_key(alg), FakeRekor()
    root = TrustedRoot(tlogs=(rekor.log_key(),))
    policy = build_policy(key=priv.public_key(), trusted_root=root)
    result = verify_signatures(DIGEST, [keyed_layer(priv, DIGEST, rekor)], policy)
    assert result.tlog is not None and result.tlog.log_id == rekor.log_id.hex()
    assert result.key_fingerprint == key_fingerprint(priv.public_key())
    # Same signature, SET from a Rekor we do not trust.
    with pytest.raises(VerificationError, match=r"unknown Rekor log"):
        verify_signatures(DIGEST, [keyed_layer(priv, DIGEST, FakeRekor())], policy)


@pytest.mark.parametrize("alg", ALGS)
def test_fresh_keyless_signature(alg: str) -> None:
    priv, rekor, fulcio = new_key(alg), FakeRekor(), FakeFulcio()
    leaf = fulcio.leaf(priv)
    policy = build_policy(
        certificate_identity="signer@lockman.test",
        certificate_oidc_issuer="https://issuer.lockman.test",
        trusted_root=fulcio.trusted_root(rekor, chain="root"),
    )
    result = verify_signatures(DIGEST, [keyless_layer(priv, leaf, fulcio, DIGEST, rekor)], policy)
    assert result.certificate_identity == "signer@lockman.test"
    assert result.sct_log_id == fulcio.ct_log_id.hex()


def test_fresh_keyless_time_outside_certificate_validity() -> None:
    priv, rekor, fulcio = new_key("p256"), FakeRekor(), FakeFulcio()
    leaf = fulcio.leaf(priv)
    policy = build_policy(
        certificate_identity="signer@lockman.test",
        certificate_oidc_issuer="https://issuer.lockman.test",
        trusted_root=fulcio.trusted_root(rekor),
    )
    late = int((T0 + timedelta(minutes=30)).timestamp())
    layer = keyless_layer(priv, leaf, fulcio, DIGEST, rekor, integrated_time=late)
    with pytest.raises(
        VerificationError, match=r"layer 0: signing certificate .* not valid at 2025-03-01T12:30"
    ):
        verify_signatures(DIGEST, [layer], policy)


def test_fresh_keyless_signature_by_other_key_than_cert() -> None:
    priv, rekor, fulcio = new_key("p256"), FakeRekor(), FakeFulcio()
    leaf = fulcio.leaf(new_key("p256"))  # certificate for a different key
    policy = build_policy(
        certificate_identity="signer@lockman.test",
        certificate_oidc_issuer="https://issuer.lockman.test",
        trusted_root=fulcio.trusted_root(rekor),
    )
    with pytest.raises(VerificationError, match=r"signature does not verify"):
        verify_signatures(DIGEST, [keyless_layer(priv, leaf, fulcio, DIGEST, rekor)], policy)


def test_every_layer_reason_is_reported() -> None:
    priv, rekor = new_key("p256"), FakeRekor()
    policy = build_policy(key=priv.public_key(), trusted_root=TrustedRoot(tlogs=(rekor.log_key(),)))
    layers = [
        keyed_layer(new_key("p256"), DIGEST, rekor),
        keyed_layer(priv, "sha256:" + "00" * 32, rekor),
        SignatureLayer("text/plain", b"x", {}),
        SignatureLayer(SIMPLE_SIGNING_MEDIA_TYPE, b"{}", {}),
    ]
    with pytest.raises(VerificationError) as exc:
        verify_signatures(DIGEST, layers, policy)
    message = str(exc.value)
    assert message.startswith("no signature matched: layer 0: signature does not verify")
    assert "; layer 1: payload digest sha256:0000" in message
    assert "layer 2" not in message
    assert "; layer 3: no signature annotation" in message


# ------------------------------------------------------------- forged layers: each check's refusal

FORGED_DIGEST = "sha256:" + "5e" * 32


def signed_layer(payload: bytes, **annotations: str) -> tuple[SignatureLayer, Policy]:
    """A layer whose signature over ``payload`` is genuine: only the content checks can refuse it."""
    priv = new_key("p256")
    layer = SignatureLayer(
        SIMPLE_SIGNING_MEDIA_TYPE, payload, {ANNOTATION_SIGNATURE: b64(sign(priv, payload)), **annotations}
    )
    return layer, build_policy(key=priv.public_key(), ignore_tlog=True)


def critical(**fields: object) -> bytes:
    doc = {
        "critical": {
            "identity": {"docker-reference": "registry.test/app"},
            "image": {"docker-manifest-digest": FORGED_DIGEST},
            "type": "cosign container image signature",
        }
    }
    for key, value in fields.items():
        if key == "digest":
            doc["critical"]["image"]["docker-manifest-digest"] = value
        else:
            doc["critical"][key] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("payload", "refusal"),
    [
        (b"not json", r"payload is not a cosign simple-signing document"),
        (b'{"critical": {"image": {}}}', r"payload is not a cosign simple-signing document \(KeyError"),
        (critical(type="cosign container image attestation"), r"payload type 'cosign container image attestation'"),
        (critical(digest=[FORGED_DIGEST]), r"payload docker-manifest-digest is not a string$"),
        (critical(digest=FORGED_DIGEST.upper()), r"payload digest SHA256:5E.* != sha256:5e"),
    ],
)
def test_signed_payload_that_does_not_claim_this_image_refused(payload: bytes, refusal: str) -> None:
    layer, policy = signed_layer(payload)
    with pytest.raises(VerificationError, match=rf"^no signature matched: layer 0: {refusal}"):
        verify_signatures(FORGED_DIGEST, [layer], policy)


def test_layer_without_signature_annotation_refused() -> None:
    layer, policy = signed_layer(critical())
    bare = replace(layer, annotations={})
    with pytest.raises(VerificationError, match=r"^no signature matched: layer 0: no signature annotation$"):
        verify_signatures(FORGED_DIGEST, [bare], policy)
    assert verify_signatures(FORGED_DIGEST, [bare, layer], policy).index == 1


def test_verify_layer_checks_media_type_and_digest_itself() -> None:
    layer, policy = signed_layer(critical())
    assert verify_layer(FORGED_DIGEST, layer, policy).signer.startswith("key sha256:")
    with pytest.raises(VerificationError, match=r"^media type text/plain is not a cosign signature$"):
        verify_layer(FORGED_DIGEST, replace(layer, media_type="text/plain"), policy)
    upper = "sha256:" + "5E" * 32
    with pytest.raises(InputError, match=r"image digest 'sha256:5E5E"):
        verify_layer(upper, layer, policy)
    for layers in ([layer], []):
        with pytest.raises(InputError, match=r"image digest 'sha256:5E5E"):
            verify_signatures(upper, layers, policy)


def test_keyed_rekor_entry_for_another_signature_refused() -> None:
    """A genuine SET from the trusted log, for a different signature by the same key."""
    priv, rekor = new_key("p256"), FakeRekor()
    policy = build_policy(key=priv.public_key(), trusted_root=TrustedRoot(tlogs=(rekor.log_key(),)))
    good = keyed_layer(priv, FORGED_DIGEST, rekor)
    other = keyed_layer(priv, "sha256:" + "0f" * 32, rekor)
    replayed = replace(good, annotations={**good.annotations, ANNOTATION_BUNDLE: other.annotations[ANNOTATION_BUNDLE]})
    assert verify_signatures(FORGED_DIGEST, [good], policy).tlog is not None
    with pytest.raises(VerificationError, match=r"layer 0: tlog entry records a different payload hash"):
        verify_signatures(FORGED_DIGEST, [replayed], policy)


def test_keyless_certificate_with_an_unsupported_key_type_refused() -> None:
    """Fulcio never issues Ed448 certificates; a layer signed under one must not verify."""
    from cryptography.hazmat.primitives.asymmetric import ed448

    priv, fulcio, rekor = ed448.Ed448PrivateKey.generate(), FakeFulcio(), FakeRekor()
    leaf = fulcio.leaf(priv)  # type: ignore[arg-type]
    layer = keyless_layer(priv, leaf, fulcio, FORGED_DIGEST, rekor)  # type: ignore[arg-type]
    policy = build_policy(
        certificate_identity="signer@lockman.test",
        certificate_oidc_issuer="https://issuer.lockman.test",
        trusted_root=fulcio.trusted_root(rekor),
    )
    with pytest.raises(VerificationError, match=r"layer 0: certificate key type Ed448PublicKey is not supported$"):
        verify_signatures(FORGED_DIGEST, [layer], policy)
