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
    key_fingerprint,
    load_public_key,
    load_public_key_file,
    signature_valid,
    spki_der,
    verify_signature,
)
from tests.signing_helpers import TESTDATA, b64, new_key, public_pem, sign


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
