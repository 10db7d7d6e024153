"""Rekor SETs, inclusion proofs, checkpoints and entry-body consistency."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest

from lockman.errors import VerificationError
from lockman.signatures.fulcio import load_certificate, load_der_certificate
from lockman.signatures.rekor import (
    check_dsse_body,
    check_hashedrekord_body,
    merkle_root_from_proof,
    parse_bundle_tlog_entry,
    parse_cosign_bundle,
    verify_entry,
    verify_inclusion_proof,
    verify_set,
)
from lockman.signatures.trust import TrustedRoot, ValidityWindow, default_trusted_root
from tests.signing_helpers import (
    TESTDATA,
    FakeRekor,
    fixture_bytes,
    hashedrekord_body,
    new_key,
    public_pem,
    sign,
)


def loose_entry():
    return parse_cosign_bundle(fixture_bytes("rekor-set").decode())


def bundle_doc() -> dict:
    return json.loads(fixture_bytes("oci-attestation.sigstore.json"))


def bundle_entry():
    return parse_bundle_tlog_entry(bundle_doc()["verificationMaterial"]["tlogEntries"][0])


def test_real_set_verifies_with_default_root_and_loose_rekor_pub() -> None:
    entry = loose_entry()
    result = verify_entry(entry, default_trusted_root(), require_set=True)
    assert result.set_verified and result.log_index == 8949589
    loose = TrustedRoot.from_pems(rekor_keys=[fixture_bytes("rekor.pub")])
    verify_set(entry, loose)


@pytest.mark.parametrize("field", ["integrated_time", "log_index"])
def test_altered_set_payload_fails(field: str) -> None:
    entry = loose_entry()
    altered = replace(entry, **{field: getattr(entry, field) + 1})
    with pytest.raises(VerificationError, match=r"Rekor SET does not verify"):
        verify_set(altered, default_trusted_root())


def test_altered_set_signature_fails() -> None:
    entry = loose_entry()
    sig = bytearray(entry.signed_entry_timestamp or b"")
    sig[-1] ^= 1
    with pytest.raises(VerificationError, match=r"Rekor SET does not verify"):
        verify_set(replace(entry, signed_entry_timestamp=bytes(sig)), default_trusted_root())


def test_set_from_unknown_log_or_outside_key_window() -> None:
    entry = loose_entry()
    other = TrustedRoot(tlogs=(FakeRekor().log_key(),))
    with pytest.raises(VerificationError, match=r"unknown Rekor log c0d23d6a"):
        verify_set(entry, other)
    (key,) = default_trusted_root().tlog_keys(entry.log_id)
    late = replace(key, validity=ValidityWindow(start=entry.integrated_datetime.replace(year=2030)))
    with pytest.raises(VerificationError, match=r"not valid at 2022-12-12"):
        verify_set(entry, TrustedRoot(tlogs=(late,)))


def test_bundle_entry_promise_and_proof_verify() -> None:
    result = verify_entry(bundle_entry(), default_trusted_root(), require_set=True)
    assert result.set_verified and result.inclusion_proof_verified
    assert result.log_index == 175508996 and result.integrated_time == 1740770291


def test_tampered_inclusion_proof_and_checkpoint_fail() -> None:
    entry = bundle_entry()
    proof = entry.inclusion_proof
    assert proof is not None
    bad_hash = replace(proof, hashes=(b"\x00" * 32, *proof.hashes[1:]))
    with pytest.raises(VerificationError, match=r"does not lead to the stated root"):
        verify_inclusion_proof(replace(entry, inclusion_proof=bad_hash), default_trusted_root())
    short = replace(proof, hashes=proof.hashes[:-1])
    with pytest.raises(VerificationError, match=r"inclusion proof has 15 hashes"):
        verify_inclusion_proof(replace(entry, inclusion_proof=short), default_trusted_root())
    forged_note = proof.checkpoint.replace("53604735\n", "53604736\n", 1)
    with pytest.raises(VerificationError, match=r"checkpoint does not match"):
        verify_inclusion_proof(
            replace(entry, inclusion_proof=replace(proof, checkpoint=forged_note)),
            default_trusted_root(),
        )
    with pytest.raises(VerificationError, match=r"no signature from a trusted Rekor"):
        verify_inclusion_proof(entry, TrustedRoot(tlogs=(FakeRekor().log_key(),)))


def test_merkle_root_single_leaf_and_bounds() -> None:
    import hashlib

    assert merkle_root_from_proof(b"a", 0, 1, []) == hashlib.sha256(b"\x00a").digest()
    with pytest.raises(VerificationError, match=r"outside tree"):
        merkle_root_from_proof(b"a", 1, 1, [])


def test_entry_without_evidence() -> None:
    entry = replace(bundle_entry(), signed_entry_timestamp=None, inclusion_proof=None)
    with pytest.raises(VerificationError, match=r"neither an inclusion promise nor"):
        verify_entry(entry, default_trusted_root(), require_set=False)
    with pytest.raises(VerificationError, match=r"no inclusion promise"):
        verify_entry(entry, default_trusted_root(), require_set=True)


def test_hashedrekord_body_must_match_signature_signer_and_payload() -> None:
    entry = loose_entry()
    leaf = load_certificate(fixture_bytes("fulcio-cert"))
    sig = base64.b64decode(fixture_bytes("rekor-sig"))
    payload = fixture_bytes("rekor-payload")
    key = leaf.public_key()
    check_hashedrekord_body(entry, signature=sig, payload=payload, key=key, cert=leaf)  # type: ignore[arg-type]
    with pytest.raises(VerificationError, match=r"different payload hash"):
        check_hashedrekord_body(entry, signature=sig, payload=payload + b" ", key=key, cert=leaf)  # type: ignore[arg-type]
    with pytest.raises(VerificationError, match=r"different signature"):
        check_hashedrekord_body(entry, signature=sig[:-1] + b"\x00", payload=payload, key=key, cert=leaf)  # type: ignore[arg-type]
    other = load_certificate((TESTDATA / "fulcio_v1.crt.pem").read_bytes())
    with pytest.raises(VerificationError, match=r"different public key or certificate"):
        check_hashedrekord_body(entry, signature=sig, payload=payload, key=key, cert=other)  # type: ignore[arg-type]


def test_hashedrekord_keyed_body_and_wrong_kind() -> None:
    priv = new_key("p256")
    payload = b"{}"
    sig = sign(priv, payload)
    rekor = FakeRekor()
    body = hashedrekord_body(sig, public_pem(priv), payload)
    entry = parse_cosign_bundle(rekor.cosign_annotation(body, 1700000000))
    check_hashedrekord_body(entry, signature=sig, payload=payload, key=priv.public_key())
    with pytest.raises(VerificationError, match=r"different public key"):
        check_hashedrekord_body(entry, signature=sig, payload=payload, key=new_key("p256").public_key())
    body["kind"] = "rekord"
    entry = parse_cosign_bundle(rekor.cosign_annotation(body, 1700000000))
    with pytest.raises(VerificationError, match=r"is not hashedrekord 0\.0\.1"):
        check_hashedrekord_body(entry, signature=sig, payload=payload, key=priv.public_key())


def test_dsse_body_checks() -> None:
    doc = bundle_doc()
    entry = bundle_entry()
    leaf = load_der_certificate(base64.b64decode(doc["verificationMaterial"]["certificate"]["rawBytes"]))
    payload = base64.b64decode(doc["dsseEnvelope"]["payload"])
    sigs = [base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"])]
    key = leaf.public_key()
    check_dsse_body(entry, payload=payload, signatures=sigs, key=key, cert=leaf)  # type: ignore[arg-type]
    with pytest.raises(VerificationError, match=r"different DSSE payload hash"):
        check_dsse_body(entry, payload=payload + b"x", signatures=sigs, key=key, cert=leaf)  # type: ignore[arg-type]
    with pytest.raises(VerificationError, match=r"different DSSE signatures"):
        check_dsse_body(entry, payload=payload, signatures=[b"x"], key=key, cert=leaf)  # type: ignore[arg-type]


def test_malformed_annotation() -> None:
    with pytest.raises(VerificationError, match=r"malformed Rekor bundle annotation"):
        parse_cosign_bundle('{"Payload": {}}')
