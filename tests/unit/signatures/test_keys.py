"""Key loading, fingerprints and the per-algorithm signature rules."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from lockman.errors import InputError, VerificationError
from lockman.signatures.keys import (
    decode_b64,
    describe_key,
    digest_signature_valid,
    key_fingerprint,
    load_public_key,
    load_public_key_der,
    load_public_key_file,
    same_key,
    signature_valid,
    spki_der,
    verify_signature,
)
from tests.support.signing_helpers import TESTDATA, b64, new_key, public_pem, sign


@pytest.mark.parametrize(
    ("name", "label"),
    [("cosign.pub", "ECDSA P-256"), ("rekor.pub", "ECDSA P-256"), ("some-rsa-key.pub", "RSA 4096")],
)
def test_fixture_keys_load(name: str, label: str) -> None:
    assert describe_key(load_public_key_file(TESTDATA / name)) == label


def test_fingerprint_is_sha256_of_spki() -> None:
    key = load_public_key_file(TESTDATA / "rekor.pub")
    # The public-good Rekor logID is the sha256 of its SPKI.
    assert key_fingerprint(key) == ("sha256:c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d")
    assert key_fingerprint(key) == "sha256:" + hashlib.sha256(spki_der(key)).hexdigest()


@pytest.mark.parametrize("alg", ["p256", "p384", "rsa", "ed25519"])
def test_fresh_keys_round_trip(alg: str) -> None:
    priv = new_key(alg)
    key = load_public_key(public_pem(priv))
    sig = sign(priv, b"payload")
    verify_signature(key, sig, b"payload")
    with pytest.raises(VerificationError, match=r"does not verify with key sha256:"):
        verify_signature(key, sig, b"payload!")


def test_p384_accepts_sha384_and_cosign_sha256_default() -> None:
    priv = new_key("p384")
    key = priv.public_key()
    assert signature_valid(key, sign(priv, b"x", hashes.SHA384()), b"x")
    assert signature_valid(key, sign(priv, b"x", hashes.SHA256()), b"x")
    assert not signature_valid(key, sign(priv, b"x", hashes.SHA512()), b"x")


def test_p256_only_sha256() -> None:
    priv = new_key("p256")
    assert not signature_valid(priv.public_key(), sign(priv, b"x", hashes.SHA384()), b"x")


def test_private_key_is_rejected() -> None:
    pem = new_key("p256").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(InputError, match=r"private key"):
        load_public_key(pem, "k.pem")


def test_garbage_and_small_rsa_rejected(tmp_path) -> None:
    with pytest.raises(InputError, match=r"bad\.pub: not a PEM public key"):
        load_public_key(b"hello", "bad.pub")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(InputError, match=r"too small"):
        load_public_key(public_pem(small))
    with pytest.raises(InputError, match=r"unsupported elliptic curve"):
        load_public_key(public_pem(ec.generate_private_key(ec.SECP256K1())))
    with pytest.raises(InputError, match=r"cannot read public key"):
        load_public_key_file(tmp_path / "missing.pub")


def test_decode_b64_is_lenient_about_whitespace_and_padding() -> None:
    assert decode_b64("aGVs\nbG8g\r\n d29y bGQ=") == b"hello world"
    assert decode_b64("aGVsbG8") == b"hello"
    with pytest.raises(VerificationError, match=r"not valid base64"):
        decode_b64("a*b")


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=20))
def test_decode_b64_survives_any_line_wrapping(data: bytes, width: int) -> None:
    text = b64(data)
    wrapped = "\n".join(text[i : i + width] for i in range(0, len(text), width))
    assert decode_b64(wrapped) == data


# ---------------------------------------------------------------- keys a verifier must refuse or handle


def test_unsupported_key_types_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed448

    pem = ed448.Ed448PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(InputError, match=r"cosign.pub: unsupported public key type Ed448PublicKey"):
        load_public_key(pem, "cosign.pub")
    k1 = ec.generate_private_key(ec.SECP256K1()).public_key()
    der = k1.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(InputError, match=r"root: unsupported elliptic curve secp256k1"):
        load_public_key_der(der, "root")


def test_der_key_from_a_trusted_root() -> None:
    priv = new_key("p384")
    der = priv.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert same_key(load_public_key_der(der), priv.public_key())
    with pytest.raises(InputError, match=r"tlog key: not a DER public key"):
        load_public_key_der(b"\x30\x03\x02\x01\x00", "tlog key")


def test_p521_signatures_sha512_and_sha256() -> None:
    """P-521 keys (accepted by cosign) verify SHA-512 signatures and cosign's SHA-256 default."""
    priv = ec.generate_private_key(ec.SECP521R1())
    key = load_public_key(public_pem(priv))
    for alg in (hashes.SHA512(), hashes.SHA256()):
        assert signature_valid(key, priv.sign(b"data", ec.ECDSA(alg)), b"data")
    assert not signature_valid(key, priv.sign(b"data", ec.ECDSA(hashes.SHA384())), b"data")
    assert not signature_valid(key, priv.sign(b"data", ec.ECDSA(hashes.SHA512())), b"other")


def test_same_key_compares_spki() -> None:
    a, b = new_key("p256"), new_key("p256")
    assert same_key(a.public_key(), load_public_key(public_pem(a)))
    assert not same_key(a.public_key(), b.public_key())
    assert not same_key(new_key("ed25519").public_key(), a.public_key())


@pytest.mark.parametrize("alg", ["rsa", "ed25519", "p256"])
def test_garbage_signature_is_invalid_not_an_exception(alg: str) -> None:
    priv = new_key(alg)
    for sig in (b"", b"\x00" * 7, b"\xff" * 600):
        assert signature_valid(priv.public_key(), sig, b"data") is False
    with pytest.raises(VerificationError, match=r"^payload does not verify with key sha256:"):
        verify_signature(priv.public_key(), b"\x00" * 64, b"data", what="payload")


@pytest.mark.parametrize("alg", ["p256", "rsa"])
def test_digest_signature_checks_the_signature(alg: str) -> None:
    """A message signature held only by its digest: the right one passes, another message's fails."""
    priv = new_key(alg)
    digest = hashlib.sha256(b"artifact").digest()
    assert digest_signature_valid(priv.public_key(), sign(priv, b"artifact"), digest) is True
    assert digest_signature_valid(priv.public_key(), sign(priv, b"another artifact"), digest) is False
    assert digest_signature_valid(new_key(alg).public_key(), sign(priv, b"artifact"), digest) is False


def test_digest_signature_with_ed25519_is_never_valid() -> None:
    """Ed25519 signs the message, not a digest: even its genuine signature cannot be checked here."""
    priv = new_key("ed25519")
    digest = hashlib.sha256(b"artifact").digest()
    assert digest_signature_valid(priv.public_key(), sign(priv, b"artifact"), digest) is False
    assert digest_signature_valid(priv.public_key(), sign(priv, digest), digest) is False
