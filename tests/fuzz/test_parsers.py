"""Fuzzing every parser of outside input: a short pass per target, and each finding's reproducer.

The targets, seeds and strategies live in tests/support/fuzz_targets.py; scripts/fuzz.py runs them for
minutes. Here each target gets ``Target.examples`` inputs (all targets together about a minute
on two busy cores) with a fixed seed and no example database: CI sees the same inputs on every
run, so a red build is caused by the change under test and replays exactly; finding new inputs
is the long runs' job (``LOCKMAN_FUZZ_SEED`` picks another seed here too).

The contract: every input ends in a result or a LockmanError, never another exception.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, seed, settings

from lockman.errors import LockmanError, VerificationError
from tests.support.fuzz_targets import TARGETS, check, strategy

SEED = int(os.environ.get("LOCKMAN_FUZZ_SEED", "20250301"))


@pytest.mark.parametrize("name", list(TARGETS))
def test_seeds_keep_the_contract(name: str) -> None:
    """Every target has seeds, and each seed (fixtures, peers' vectors) ends in a result or a LockmanError."""
    t = TARGETS[name]
    seeds = t.seeds()
    assert seeds, f"{name} has no seed corpus"
    for data in seeds:
        check(t, data)


@pytest.mark.parametrize("name", list(TARGETS))
def test_fuzz_short_pass(name: str) -> None:
    t = TARGETS[name]

    @settings(max_examples=t.examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @seed(SEED)
    @given(strategy(t))
    def run(data: bytes) -> None:
        check(t, data)

    run()


# ------------------------------------------------------ findings, each with its minimal input


def _finding(name: str, data: bytes, error: type[LockmanError] = VerificationError) -> None:
    """The reproducer now ends in ``error`` (a LockmanError), as the contract wants."""
    with pytest.raises(error):
        TARGETS[name].run(data)


def test_in_toto_subject_digest_null() -> None:
    """``"digest": null`` in a statement subject was an AttributeError, not a rejection."""
    _finding("in-toto-statement", b'{"_type": "https://in-toto.io/Statement/v1", "subject": [{"digest": null}]}')


def test_checkpoint_with_a_lone_surrogate() -> None:
    """A checkpoint is JSON text in the bundle; ``\\udc80`` there made encoding it fail."""
    from lockman.signatures.checkpoint import parse_checkpoint

    with pytest.raises(VerificationError):
        parse_checkpoint("\udc80rigin\n1\n" + "A" * 43 + "=\n\n\u2014 origin AAAAAAAA\n")


def test_checkpoint_size_in_non_ascii_digits() -> None:
    """``str.isdigit`` takes "²", which ``int`` refuses: a ValueError instead of a rejection."""
    from lockman.signatures.checkpoint import parse_checkpoint

    for size in ("²", "١٢"):
        with pytest.raises(VerificationError):
            parse_checkpoint(f"origin\n{size}\n" + "A" * 43 + "=\n\n\u2014 origin AAAAAAAA\n")


def test_timestamp_token_malformed_inside() -> None:
    """rfc3161-client decodes the TSTInfo lazily: a bad inner tag was a ValueError on access."""
    from tests.support.fuzz_targets import _timestamp_cases

    token = bytearray(_timestamp_cases()[0][2])
    at = token.index(b"\x18\x0f")  # the GeneralizedTime genTime inside the TSTInfo
    token[at] = 0x19  # another universal tag: the outer structure still decodes
    _finding("tsa-response", bytes(token))


def test_tlog_entry_log_index_infinity() -> None:
    """JSON's ``1e999`` is a float infinity: ``int()`` of it was an OverflowError."""
    _finding("tlog-entry", b'{"canonicalizedBody": "", "logIndex": 1e999, "logId": {"keyId": ""}}')


@pytest.mark.parametrize("when", [2**63, 10**12, -(10**12)])
def test_integrated_time_a_datetime_cannot_hold(when: int) -> None:
    """A time past year 9999 crashed ``datetime.fromtimestamp`` in verify_set, before the SET was checked."""
    import json

    from tests.support.fuzz_targets import _rekor_annotation_seeds

    annotation = json.loads(_rekor_annotation_seeds()[0])
    annotation["Payload"]["integratedTime"] = when
    _finding("rekor-bundle-annotation", json.dumps(annotation).encode())


def test_token_lifetime_too_large_for_a_float() -> None:
    """A 400-digit ``expires_in`` made ``float()`` raise OverflowError."""
    from lockman.errors import RegistryError

    _finding("token-response", b'{"token": "t", "expires_in": 1' + b"0" * 400 + b"}", RegistryError)


@pytest.mark.parametrize("lifetime", [b"NaN", b"Infinity"])
def test_token_lifetime_not_finite(lifetime: bytes) -> None:
    """NaN never counts as cached (a token request per call), infinity never expires: both get the default."""
    from lockman.registry.auth import MIN_TOKEN_LIFETIME, parse_token_response

    assert parse_token_response(b'{"token": "tok", "expires_in": ' + lifetime + b"}", "r", "s") == (
        "tok",
        MIN_TOKEN_LIFETIME,
    )


def _bundle_with_leaf(edit: bytes, to: bytes) -> bytes:
    """happy-path-v0.3's bundle with bytes of its leaf certificate's DER replaced."""
    import base64
    import json

    from tests.support.fuzz_targets import CONFORMANCE

    bundle = json.loads((CONFORMANCE / "happy-path-v0.3" / "bundle.sigstore.json").read_bytes())
    cert = bundle["verificationMaterial"]["certificate"]
    der = base64.b64decode(cert["rawBytes"])
    assert der.count(edit) == 1
    cert["rawBytes"] = base64.b64encode(der.replace(edit, to)).decode()
    return json.dumps(bundle).encode()


def test_bundle_leaf_with_an_unknown_key_algorithm() -> None:
    """cryptography parses a certificate's key lazily: an unknown algorithm OID was an
    UnsupportedAlgorithm out of leaf_key (found by fuzzing: id-ecPublicKey's 1.2 became 0.38)."""
    from lockman.signatures.bundle import verify_bundle
    from tests.support.fuzz_targets import _case_context

    ec_public_key = bytes.fromhex("06072a8648ce3d0201")
    bundle = _bundle_with_leaf(ec_public_key, bytes.fromhex("0607268648ce3d0201"))
    with pytest.raises(VerificationError, match="certificate key cannot be read"):
        digest, policy = _case_context("happy-path-v0.3")
        verify_bundle(digest, bundle, policy)


@pytest.mark.parametrize("target", ["docker-config", "podman-auth"])
@pytest.mark.parametrize("field", ["username", "password", "identitytoken"])
def test_credentials_entry_with_a_number(target: str, field: str) -> None:
    """``"password": -1`` reached Credential and register_secret's len(): a TypeError."""
    import json

    entry = {"username": "u", "password": "p4ss-w0rd", field: -1}
    check(TARGETS[target], json.dumps({"auths": {"registry.test": entry}}).encode())


def test_certificate_with_an_invalid_version() -> None:
    """``x509.InvalidVersion`` is no ValueError: a certificate annotation claiming version 11 escaped."""
    import base64

    from lockman.signatures.fulcio import load_certificates
    from tests.support.fuzz_targets import _tls_material

    pem = _tls_material()[0].decode()
    body = "".join(pem.splitlines()[1:-1])
    der = bytearray(base64.b64decode(body))
    at = der.index(b"\xa0\x03\x02\x01\x02")  # [0] EXPLICIT version v3
    der[at + 4] = 10
    forged = "-----BEGIN CERTIFICATE-----\n" + base64.b64encode(bytes(der)).decode() + "\n-----END CERTIFICATE-----\n"
    with pytest.raises(VerificationError, match="not PEM certificates"):
        load_certificates(forged)


def test_set_payload_log_index_past_json_safe_integers() -> None:
    """RFC 8785 refuses integers past 2**53: a logIndex of 2**63 was an IntegerDomainError out of verify_set."""
    import json

    from tests.support.fuzz_targets import _rekor_annotation_seeds

    annotation = json.loads(_rekor_annotation_seeds()[0])
    annotation["Payload"]["logIndex"] = 2**63
    check(TARGETS["rekor-bundle-annotation"], json.dumps(annotation).encode())


def test_certificate_with_a_malformed_extension() -> None:
    """Extensions are parsed lazily: a bad issuerAltName was a ValueError out of certificate_identities."""
    import base64
    import json

    from lockman.signatures.fulcio import load_certificates
    from tests.support.fuzz_targets import CONFORMANCE

    bundle = json.loads((CONFORMANCE / "happy-path-v0.3" / "bundle.sigstore.json").read_bytes())
    der = base64.b64decode(bundle["verificationMaterial"]["certificate"]["rawBytes"])
    at = der.index(bytes.fromhex("0603551d11"))  # subjectAltName: OID, [critical], OCTET STRING { SEQUENCE {
    name = der.index(b"\x30", der.index(b"\x04", at + 5)) + 2  # ... the first GeneralName's tag
    forged = der[:name] + b"\x01" + der[name + 1 :]  # a universal BOOLEAN tag where a GeneralName belongs
    pem = "-----BEGIN CERTIFICATE-----\n" + base64.b64encode(forged).decode() + "\n-----END CERTIFICATE-----\n"
    with pytest.raises(VerificationError):
        load_certificates(pem)


def test_dockerfile_copy_from_with_no_value() -> None:
    """``COPY --from=`` at the end of the file indexed past the line (IndexError)."""
    from lockman.model.sources import dockerfile

    assert dockerfile.extract("FROM scratch\nCOPY --from=", "D") == []
    assert dockerfile.extract("FROM a\nRUN --mount=from=", "D")[1:] == []
