"""Public keys: load them, fingerprint them, verify a signature over bytes.

Everything above this module (SETs, SCTs, DSSE, simple signing) reduces to "does this key sign
these bytes", so the algorithm choices live here and nowhere else:

- ECDSA signatures are ASN.1 DER. P-256 uses SHA-256. For P-384 / P-521 we accept the curve's
  own hash (SHA-384 / SHA-512, what sigstore-go's default verifier uses for bundles) *or*
  SHA-256 (what ``cosign verify --key`` uses for ``.sig`` signatures, its
  ``--signature-digest-algorithm`` default). A signature that verifies under either hash was made
  by the key holder, so accepting both costs no security.
- RSA is PKCS#1 v1.5 with SHA-256 (cosign's default RSA verifier; no PSS).
- Ed25519 signs the message itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from pathlib import Path
from typing import Union

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from lockman.errors import InputError, VerificationError
from lockman.model.digest import Digest

PublicKey = Union[ec.EllipticCurvePublicKey, rsa.RSAPublicKey, ed25519.Ed25519PublicKey]  # noqa: UP007

_WHITESPACE = re.compile(rb"\s+")


def decode_b64(data: str | bytes, what: str = "base64 value") -> bytes:
    """Decode standard base64 leniently: signers sometimes wrap lines, so whitespace is dropped.

    Missing padding is tolerated too; anything else malformed is a VerificationError, because
    base64 here always comes from signature material we were handed, not from the user.
    """
    if not isinstance(data, str | bytes):
        raise VerificationError(f"{what} is not a base64 string")
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    raw = _WHITESPACE.sub(b"", raw)
    raw += b"=" * (-len(raw) % 4)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationError(f"{what} is not valid base64") from exc


def spki_der(key: PublicKey) -> bytes:
    """The DER SubjectPublicKeyInfo: the canonical bytes that key ids and fingerprints hash."""
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: PublicKey) -> bytes:
    """sha256 over SPKI DER: Rekor's logID, a CT log id, and the SCT issuer key hash."""
    return hashlib.sha256(spki_der(key)).digest()


def key_fingerprint(key: PublicKey) -> str:
    """``sha256:<hex>`` of the SPKI DER, for reports; same value as ``key_id`` in hex."""
    return Digest.of(spki_der(key))


def describe_key(key: PublicKey) -> str:
    """A short human label such as ``ECDSA P-256`` or ``RSA 4096``."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {
            "secp256r1": "ECDSA P-256",
            "secp384r1": "ECDSA P-384",
            "secp521r1": "ECDSA P-521",
        }.get(key.curve.name, f"ECDSA {key.curve.name}")
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    return "Ed25519"


def _check_supported(key: object, source: str) -> PublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            raise InputError(f"{source}: unsupported elliptic curve {key.curve.name}")
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise InputError(f"{source}: RSA key of {key.key_size} bits is too small (need 2048+)")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise InputError(f"{source}: unsupported public key type {type(key).__name__}")


def load_public_key(pem: str | bytes, source: str = "public key") -> PublicKey:
    """Parse one PEM ``PUBLIC KEY`` (SPKI); ``source`` names the file in errors.

    Raises InputError: a bad key file is the user's input, not an untrusted signature.
    """
    data = pem.encode() if isinstance(pem, str) else pem
    if b"PRIVATE KEY" in data:
        raise InputError(f"{source}: is a private key; give the public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{source}: not a PEM public key ({exc})") from exc
    return _check_supported(key, source)


def load_public_key_der(der: bytes, source: str = "public key") -> PublicKey:
    """Parse DER SPKI bytes, as trusted_root.json carries them."""
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{source}: not a DER public key ({exc})") from exc
    return _check_supported(key, source)


def load_public_key_file(path: str | Path) -> PublicKey:
    """Read and parse a PEM public key file (``cosign.pub``)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: cannot read public key ({exc.strerror or exc})") from exc
    return load_public_key(data, source=str(p))


def _ecdsa_hashes(key: ec.EllipticCurvePublicKey) -> tuple[hashes.HashAlgorithm, ...]:
    if key.curve.name == "secp384r1":
        return (hashes.SHA384(), hashes.SHA256())
    if key.curve.name == "secp521r1":
        return (hashes.SHA512(), hashes.SHA256())
    return (hashes.SHA256(),)


def signature_valid(
    key: PublicKey, signature: bytes, data: bytes, hash_alg: hashes.HashAlgorithm | None = None
) -> bool:
    """True if ``signature`` over ``data`` verifies with ``key``.

    ``hash_alg`` pins the digest (SCTs and SETs say SHA-256); None means the defaults described
    in the module docstring.
    """
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            for alg in (hash_alg,) if hash_alg is not None else _ecdsa_hashes(key):
                try:
                    key.verify(signature, data, ec.ECDSA(alg))
                    return True
                except InvalidSignature:
                    pass  # try the next hash
            return False
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hash_alg or hashes.SHA256())
            return True
        key.verify(signature, data)
        return True
    except (InvalidSignature, ValueError):
        return False


def digest_signature_valid(key: PublicKey, signature: bytes, sha256_digest: bytes) -> bool:
    """True if ``signature`` signs the message whose SHA-256 is ``sha256_digest``.

    Sigstore message signatures (``sign-blob``) sign the artifact, and we hold only its digest
    (an image is named by its digest); ECDSA and RSA verify over a prehashed digest. Ed25519
    signs the whole message and cannot be checked from a digest: False.
    """
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, sha256_digest, ec.ECDSA(Prehashed(hashes.SHA256())))
            return True
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, sha256_digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
            return True
    except (InvalidSignature, ValueError):
        return False
    return False


def verify_signature(
    key: PublicKey,
    signature: bytes,
    data: bytes,
    what: str = "signature",
    hash_alg: hashes.HashAlgorithm | None = None,
) -> None:
    """Raise VerificationError naming the key unless ``signature`` verifies over ``data``."""
    if not signature_valid(key, signature, data, hash_alg):
        raise VerificationError(f"{what} does not verify with key {key_fingerprint(key)}")


def same_key(a: PublicKey, b: PublicKey) -> bool:
    """Compare keys by their SPKI DER, the only representation that is canonical across types."""
    return spki_der(a) == spki_der(b)
