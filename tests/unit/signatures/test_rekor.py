"""Rekor SETs, inclusion proofs, checkpoints and entry-body consistency."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from lockman.errors import VerificationError
from lockman.signatures.fulcio import load_certificate, load_der_certificate
from lockman.signatures.rekor import (
    LogEntry,
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
from tests.support.signing_helpers import (
    TESTDATA,
    FakeFulcio,
    FakeRekor,
    b64,
    cert_pem,
    dsse_body,
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
    # A Rekor v1 size is not compared with the proof's (as in rekor's VerifyCheckpointSignature),
    # but it is signed: changing it breaks the log's signature.
    forged_note = proof.checkpoint.replace("53604735\n", "53604736\n", 1)
    with pytest.raises(VerificationError, match=r"^checkpoint has no signature from a trusted Rekor log$"):
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


# ---------------------------------------------------------------- forged log evidence: each check's refusal


def _fresh_entry(rekor: FakeRekor, *, promise: bool = True, proof: bool = True, body: dict | None = None):
    """A keyed hashedrekord entry from ``rekor``, with SET and/or inclusion proof (+ its inputs)."""
    priv = new_key("p256")
    payload = b'{"fresh": true}'
    sig = sign(priv, payload)
    raw = rekor.bundle_entry(body or hashedrekord_body(sig, public_pem(priv), payload), 1740770291, "hashedrekord")
    if proof:
        raw["inclusionProof"] = rekor.inclusion_proof(raw["canonicalizedBody"])
    if not promise:
        del raw["inclusionPromise"]
    return parse_bundle_tlog_entry(raw), priv, sig, payload


def test_entry_on_inclusion_proof_alone() -> None:
    rekor = FakeRekor()
    root = TrustedRoot(tlogs=(rekor.log_key(),))
    entry, *_ = _fresh_entry(rekor, promise=False)
    result = verify_entry(entry, root, require_set=False)
    assert result.inclusion_proof_verified and not result.set_verified
    both, *_ = _fresh_entry(rekor)
    result = verify_entry(both, root, require_set=True)
    assert result.inclusion_proof_verified and result.set_verified


def test_valid_set_does_not_excuse_a_forged_inclusion_proof() -> None:
    rekor = FakeRekor()
    entry, *_ = _fresh_entry(rekor)
    assert entry.inclusion_proof is not None
    forged = replace(entry.inclusion_proof, hashes=(b"\x11" * 32,))
    with pytest.raises(VerificationError, match=r"does not lead to the stated root"):
        verify_entry(replace(entry, inclusion_proof=forged), TrustedRoot(tlogs=(rekor.log_key(),)), require_set=True)


def test_forged_set_refused_even_with_a_valid_proof() -> None:
    rekor = FakeRekor()
    entry, *_ = _fresh_entry(rekor)
    forged = replace(entry, signed_entry_timestamp=FakeRekor().key.sign(b"x", ec.ECDSA(hashes.SHA256())))
    with pytest.raises(VerificationError, match=r"Rekor SET does not verify"):
        verify_entry(forged, TrustedRoot(tlogs=(rekor.log_key(),)), require_set=False)


def test_genuine_checkpoint_for_another_root_refused() -> None:
    """The log really signed this checkpoint, but for a tree our proof does not lead to."""
    rekor = FakeRekor()
    entry, *_ = _fresh_entry(rekor)
    proof = entry.inclusion_proof
    assert proof is not None
    other = rekor.checkpoint(proof.tree_size, b"\x22" * 32)
    with pytest.raises(VerificationError, match=r"checkpoint does not match the inclusion proof's tree"):
        verify_inclusion_proof(replace(entry, inclusion_proof=replace(proof, checkpoint=other)), TrustedRoot(
            tlogs=(rekor.log_key(),)
        ))


def _with_checkpoint(entry, checkpoint: str):
    return replace(entry, inclusion_proof=replace(entry.inclusion_proof, checkpoint=checkpoint))


def test_checkpoint_signature_must_verify_under_the_hinted_key() -> None:
    rekor = FakeRekor()
    root = TrustedRoot(tlogs=(rekor.log_key(),))
    entry, *_ = _fresh_entry(rekor)
    note = entry.inclusion_proof.checkpoint
    body, _, sigline = note.partition("\n\n")
    prefix, _, blob = sigline.strip().rpartition(" ")
    raw = base64.b64decode(blob)
    bad_sig = f"{body}\n\n{prefix} {b64(raw[:4] + raw[4:-1] + bytes([raw[-1] ^ 1]))}\n"
    with pytest.raises(VerificationError, match=r"^checkpoint has no signature from a trusted Rekor log$"):
        verify_inclusion_proof(_with_checkpoint(entry, bad_sig), root)
    zero_hint = bytes(4) + raw[4:]
    bad_hint = f"{body}\n\n{prefix} {b64(zero_hint)}\n"
    with pytest.raises(VerificationError, match=r"^checkpoint has no signature from a trusted Rekor log$"):
        verify_inclusion_proof(_with_checkpoint(entry, bad_hint), root)
    # A witness's cosignature line (unknown key) next to the log's own is fine.
    witness = f"\u2014 witness.test {b64(b'WTNS' + b'0' * 64)}\n"
    verify_inclusion_proof(_with_checkpoint(entry, note + witness), root)


@pytest.mark.parametrize(
    ("note", "refusal"),
    [
        ("rekor.test\n2\nAAAA\n", r"^checkpoint is not a signed note$"),
        ("rekor.test\n2\n\n\u2014 rekor.test AAAA\n", r"^checkpoint body too short$"),
        ("rekor.test\ntwo\nAAAA\n\n\u2014 rekor.test AAAA\n", r"^checkpoint body malformed$"),
        ("rekor.test\n2\n!!!!\n\n\u2014 rekor.test AAAA\n", r"root hash is not valid base64"),
    ],
)
def test_malformed_checkpoint_refused(note: str, refusal: str) -> None:
    rekor = FakeRekor()
    entry, *_ = _fresh_entry(rekor)
    with pytest.raises(VerificationError, match=refusal):
        verify_inclusion_proof(_with_checkpoint(entry, note), TrustedRoot(tlogs=(rekor.log_key(),)))


def test_missing_evidence_named_when_asked_for_directly() -> None:
    rekor = FakeRekor()
    entry, *_ = _fresh_entry(rekor, promise=False, proof=False)
    with pytest.raises(VerificationError, match=r"^tlog entry has no inclusion proof$"):
        verify_inclusion_proof(entry, TrustedRoot(tlogs=(rekor.log_key(),)))
    with pytest.raises(VerificationError, match=r"^tlog entry has no signed entry timestamp$"):
        verify_set(entry, TrustedRoot(tlogs=(rekor.log_key(),)))


@pytest.mark.parametrize(
    ("edit", "refusal"),
    [
        (lambda p: p.update(integratedTime=True), r"Rekor bundle integratedTime is not an integer"),
        (lambda p: p.update(logIndex="12a"), r"Rekor bundle logIndex is not an integer"),
        (lambda p: p.update(logIndex=None), r"Rekor bundle logIndex is not an integer"),
        (lambda p: p.pop("logID"), r"malformed Rekor bundle annotation"),
    ],
)
def test_malformed_set_payload_refused(edit, refusal: str) -> None:
    doc = json.loads(fixture_bytes("rekor-set"))
    edit(doc["Payload"])
    with pytest.raises(VerificationError, match=refusal):
        parse_cosign_bundle(json.dumps(doc))


def test_malformed_bundle_tlog_entry_refused() -> None:
    raw = bundle_doc()["verificationMaterial"]["tlogEntries"][0]
    del raw["logIndex"]
    with pytest.raises(VerificationError, match=r"^malformed tlog entry \(KeyError\('logIndex'\)\)$"):
        parse_bundle_tlog_entry(raw)


# Entry bodies that do not describe our signature. Each is a genuine, correctly signed log entry:
# only the body/check comparison stands between it and acceptance.


def _hashedrekord_entry(body: dict) -> LogEntry:
    return parse_cosign_bundle(FakeRekor().cosign_annotation(body, 1700000000))


def _broken_pem(kind: str) -> bytes:
    return f"-----BEGIN {kind}-----\nAAAA\n-----END {kind}-----\n".encode()


def test_hashedrekord_body_refusals() -> None:
    priv, other = new_key("p256"), new_key("p256")
    payload = b"{}"
    sig = sign(priv, payload)
    fulcio = FakeFulcio()
    leaf, other_leaf = fulcio.leaf(priv, with_sct=False), fulcio.leaf(other, with_sct=False)

    def check(body: dict, *, cert=None) -> None:
        check_hashedrekord_body(_hashedrekord_entry(body), signature=sig, payload=payload, key=priv.public_key(),
                                cert=cert)

    check(hashedrekord_body(sig, public_pem(priv), payload))
    check(hashedrekord_body(sig, cert_pem(leaf), payload))  # keyed policy, log holds the key's cert
    check(hashedrekord_body(sig, cert_pem(leaf), payload), cert=leaf)
    refusals = [
        (hashedrekord_body(sig, cert_pem(other_leaf), payload), None, "different public key or certificate"),
        (hashedrekord_body(sig, public_pem(priv), payload), leaf, "different public key or certificate"),
        (hashedrekord_body(sig, _broken_pem("CERTIFICATE"), payload), None, "different public key or cert"),
        (hashedrekord_body(sig, _broken_pem("PUBLIC KEY"), payload), None, "different public key or cert"),
    ]
    sha512 = hashedrekord_body(sig, public_pem(priv), payload)
    sha512["spec"]["data"]["hash"]["algorithm"] = "sha512"
    refusals.append((sha512, None, "hash algorithm sha512 is not sha256"))
    nospec = hashedrekord_body(sig, public_pem(priv), payload)
    del nospec["spec"]["signature"]
    refusals.append((nospec, None, r"body malformed \(KeyError\('signature'\)\)"))
    for body, cert, refusal in refusals:
        with pytest.raises(VerificationError, match=rf"^tlog entry (records a )?{refusal}"):
            check(body, cert=cert)


@pytest.mark.parametrize(("body", "refusal"), [(b"not json", "not JSON"), (b"[1]", "not a JSON object")])
def test_entry_body_that_is_not_a_json_object_refused(body: bytes, refusal: str) -> None:
    entry = replace(loose_entry(), body=body)
    with pytest.raises(VerificationError, match=rf"^tlog entry body is {refusal}$"):
        check_hashedrekord_body(entry, signature=b"", payload=b"", key=new_key("p256").public_key())
    with pytest.raises(VerificationError, match=rf"^tlog entry body is {refusal}$"):
        check_dsse_body(entry, payload=b"", signatures=[], key=new_key("p256").public_key())


def test_dsse_body_refusals() -> None:
    priv = new_key("p256")
    payload = b'{"_type": "x"}'
    sig = sign(priv, payload)

    def check(body: dict) -> None:
        entry = _hashedrekord_entry(body)
        check_dsse_body(entry, payload=payload, signatures=[sig], key=priv.public_key())

    check(dsse_body(payload, [sig], public_pem(priv)))
    wrong_kind = dsse_body(payload, [sig], public_pem(priv))
    wrong_kind["kind"] = "intoto"
    sha512 = dsse_body(payload, [sig], public_pem(priv))
    sha512["spec"]["payloadHash"]["algorithm"] = "sha512"
    nosigs = dsse_body(payload, [sig], public_pem(priv))
    del nosigs["spec"]["signatures"]
    for body, refusal in [
        (wrong_kind, r"kind intoto 0\.0\.1 is not dsse 0\.0\.1"),
        (sha512, "records a different DSSE payload hash"),
        (nosigs, r"body malformed \(KeyError\('signatures'\)\)"),
        (dsse_body(payload, [sig], public_pem(new_key("p256"))), "records a different public key or cert"),
    ]:
        with pytest.raises(VerificationError, match=rf"^tlog entry {refusal}"):
            check(body)


@pytest.mark.parametrize("field", ["logIndex", "integratedTime"])
def test_negative_log_index_or_time_refused(field: str) -> None:
    raw = bundle_doc()["verificationMaterial"]["tlogEntries"][0]
    raw[field] = "-1"
    with pytest.raises(VerificationError, match=r"^tlog entry has a negative log index or integrated time$"):
        parse_bundle_tlog_entry(raw)


@pytest.mark.parametrize("field", ["logIndex", "treeSize"])
def test_negative_inclusion_proof_index_or_size_refused(field: str) -> None:
    raw = bundle_doc()["verificationMaterial"]["tlogEntries"][0]
    raw["inclusionProof"][field] = "-1"
    with pytest.raises(VerificationError, match=r"^tlog entry inclusion proof has a negative index or size$"):
        parse_bundle_tlog_entry(raw)


def _annotation(**payload: object) -> str:
    """The cosign fixture's Rekor bundle annotation with ``payload`` fields replaced."""
    from tests.support.paths import TESTDATA

    annotation = json.loads((TESTDATA / "cosign" / "rekor-set").read_text())
    annotation["Payload"].update(payload)
    return json.dumps(annotation)


@pytest.mark.parametrize("when", [2**63, 10**12, -(10**12)])
def test_an_integrated_time_no_date_can_hold_is_refused_before_any_set_check(when: int) -> None:
    """Past year 9999 (or before year 1) the time crashed datetime inside verify_set (found by fuzzing)."""
    from lockman.signatures.rekor import parse_cosign_bundle

    with pytest.raises(VerificationError, match=r"integratedTime is out of range$"):
        parse_cosign_bundle(_annotation(integratedTime=when))


def test_a_log_index_rfc8785_cannot_hold_has_no_set_payload() -> None:
    """RFC 8785 refuses integers past 2**53: such an entry can carry no SET (found by fuzzing)."""
    from lockman.signatures.rekor import parse_cosign_bundle, set_payload

    entry = parse_cosign_bundle(_annotation(logIndex=2**63))
    with pytest.raises(VerificationError, match=r"^tlog entry cannot be canonicalized for its SET"):
        set_payload(entry)
