"""lockman.signatures._common: what the signature formats share (image digests, the leaf's key)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lockman.errors import VerificationError
from lockman.signatures._common import leaf_key

ID_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")  # OID 1.2.840.10045.2.1, DER-encoded
UNKNOWN_KEY_ALGORITHM = bytes.fromhex("0607268648ce3d0201")  # 0.38.840.10045.2.1


def _certificate() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(minutes=10))
        .sign(key, hashes.SHA256())
    )


def test_leaf_key_reads_a_supported_key() -> None:
    assert isinstance(leaf_key(_certificate()), ec.EllipticCurvePublicKey)


def test_a_leaf_whose_key_algorithm_is_unknown_is_a_verification_error() -> None:
    """cryptography parses a certificate's key lazily: an unknown algorithm surfaced as an
    UnsupportedAlgorithm from deep inside verification (found by fuzzing)."""
    der = _certificate().public_bytes(serialization.Encoding.DER)
    assert der.count(ID_EC_PUBLIC_KEY) == 1  # the key's algorithm; the signature's OID differs
    odd = x509.load_der_x509_certificate(der.replace(ID_EC_PUBLIC_KEY, UNKNOWN_KEY_ALGORITHM))
    with pytest.raises(VerificationError, match=r"^certificate key cannot be read"):
        leaf_key(odd)
