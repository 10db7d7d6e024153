"""Log entry bodies lockman reads beyond Rekor v1's: ``intoto`` 0.0.2 and ``hashedrekord`` 0.0.2.

Real entries from the vendored sigstore-conformance corpus; each argument that must match the
body is changed in turn and must be refused with its own reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace

import pytest
from cryptography import x509

from lockman.errors import VerificationError
from lockman.signatures.bundle import pae
from lockman.signatures.rekor import (
    check_hashedrekord_v002_body,
    check_intoto_body,
    check_intoto_v001_body,
    parse_bundle_tlog_entry,
)
from tests.support.paths import ROOT as REPO
from tests.support.signing_helpers import attestation_layer, b64, intoto_body, new_key, public_pem

D = "sha256:" + "d" * 64
CASES = REPO / "testdata" / "sigstore-conformance" / "bundle-verify"


def _load(case: str):
    doc = json.loads((CASES / case / "bundle.sigstore.json").read_text())
    vm = doc["verificationMaterial"]
    raw = vm["certificate"]["rawBytes"] if "certificate" in vm else vm["x509CertificateChain"]["certificates"][0]["rawBytes"]
    cert = x509.load_der_x509_certificate(base64.b64decode(raw))
    return doc, parse_bundle_tlog_entry(vm["tlogEntries"][0]), cert


def _intoto_args():
    doc, entry, cert = _load("intoto-with-custom-trust-root")
    env = doc["dsseEnvelope"]
    args = {
        "payload_type": env["payloadType"],
        "payload": base64.b64decode(env["payload"]),
        "signatures": [base64.b64decode(s["sig"]) for s in env["signatures"]],
        "key": cert.public_key(),
        "cert": cert,
    }
    return entry, args


def test_intoto_entry_matches_its_envelope() -> None:
    entry, args = _intoto_args()
    check_intoto_body(entry, **args)
    check_intoto_body(entry, **{**args, "cert": None})  # keyed: same key inside the logged cert


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"payload_type": "application/json"}, r"a different DSSE payload type$"),
        ({"payload": b"{}"}, r"a different DSSE payload hash$"),
        ({"signatures": [b"\x30\x00"]}, r"different DSSE signatures$"),
        ({"key": new_key("p256").public_key(), "cert": None}, r"a different public key or certificate$"),
    ],
)
def test_intoto_entry_for_something_else_refused(change: dict, refusal: str) -> None:
    entry, args = _intoto_args()
    with pytest.raises(VerificationError, match=r"^tlog entry records " + refusal):
        check_intoto_body(entry, **{**args, **change})


def _edit_body(entry, fn):
    body = json.loads(entry.body)
    fn(body)
    raw = json.dumps(body).encode()
    return replace(entry, body=raw, body_b64=base64.b64encode(raw).decode())


@pytest.mark.parametrize(
    ("fn", "refusal"),
    [
        (lambda b: b.update(kind="dsse"), r"^tlog entry kind dsse 0.0.2 is not intoto 0.0.2$"),
        (lambda b: b["spec"]["content"]["payloadHash"].update(algorithm="sha512"), r"different DSSE payload hash$"),
        (
            lambda b: b["spec"]["content"]["envelope"].update(payload=base64.b64encode(base64.b64encode(b"{}")).decode()),
            r"different DSSE payload$",
        ),
        (lambda b: b["spec"]["content"].pop("envelope"), r"^tlog entry body malformed"),
        (lambda b: b.update(spec=[]), r"^tlog entry body malformed"),
    ],
)
def test_forged_intoto_body_refused(fn, refusal: str) -> None:
    entry, args = _intoto_args()
    with pytest.raises(VerificationError, match=refusal):
        check_intoto_body(_edit_body(entry, fn), **args)


def test_intoto_body_without_payload_copy_is_fine() -> None:
    entry, args = _intoto_args()
    check_intoto_body(_edit_body(entry, lambda b: b["spec"]["content"]["envelope"].pop("payload")), **args)


def _v2_args(case: str = "rekor2-happy-path"):
    doc, entry, cert = _load(case)
    if "messageSignature" in doc:
        sig = base64.b64decode(doc["messageSignature"]["signature"])
        digest = hashlib.sha256((CASES / "a.txt").read_bytes()).digest()
    else:
        env = doc["dsseEnvelope"]
        sig = base64.b64decode(env["signatures"][0]["sig"])
        digest = hashlib.sha256(pae(env["payloadType"], base64.b64decode(env["payload"]))).digest()
    return entry, {"signature": sig, "digest": digest, "key": cert.public_key(), "cert": cert}


@pytest.mark.parametrize("case", ["rekor2-happy-path", "rekor2-dsse-happy-path"])
def test_hashedrekord_v002_entries_match(case: str) -> None:
    entry, args = _v2_args(case)
    check_hashedrekord_v002_body(entry, **args)
    check_hashedrekord_v002_body(entry, **{**args, "cert": None})


def test_hashedrekord_v002_certificate_verifier_must_be_ours() -> None:
    entry, args = _v2_args()
    other = _load("rekor2-dsse-happy-path")[2]
    with pytest.raises(VerificationError, match=r"^tlog entry records a different public key or certificate$"):
        check_hashedrekord_v002_body(entry, **{**args, "cert": other})
    with pytest.raises(VerificationError, match=r"^tlog entry records a different public key or certificate$"):
        check_hashedrekord_v002_body(entry, **{**args, "key": new_key("p256").public_key(), "cert": None})
    broken = _edit_body(
        entry, lambda b: b["spec"]["hashedRekordV002"]["signature"]["verifier"]["x509Certificate"].update(rawBytes="AAAA")
    )
    with pytest.raises(VerificationError, match=r"^tlog entry records a different public key or certificate$"):
        check_hashedrekord_v002_body(broken, **{**args, "cert": None})


@pytest.mark.parametrize(
    ("edit", "refusal"),
    [
        (lambda e: e.update(logIndex="-1"), r"^tlog entry has a negative log index or integrated time$"),
        (lambda e: e.update(integratedTime="-5"), r"^tlog entry has a negative log index or integrated time$"),
        (lambda e: e["inclusionProof"].update(logIndex="-1"), r"^tlog entry inclusion proof has a negative index or size$"),
        (lambda e: e["inclusionProof"].update(treeSize="-3"), r"^tlog entry inclusion proof has a negative index or size$"),
    ],
)
def test_negative_numbers_in_an_entry_refused(edit, refusal: str) -> None:
    doc = json.loads((CASES / "happy-path-v0.3" / "bundle.sigstore.json").read_text())
    raw = doc["verificationMaterial"]["tlogEntries"][0]
    parse_bundle_tlog_entry(raw)
    edit(raw)
    with pytest.raises(VerificationError, match=refusal):
        parse_bundle_tlog_entry(raw)


def test_hashedrekord_v002_verifier_kinds() -> None:
    """Keyless needs the certificate in the log, not just its key; an empty verifier names no one."""
    from cryptography.hazmat.primitives import serialization

    entry, args = _v2_args()
    spki = args["key"].public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def as_key(b: dict) -> None:
        b["spec"]["hashedRekordV002"]["signature"]["verifier"] = {"publicKey": {"rawBytes": base64.b64encode(spki).decode()}}

    key_only = _edit_body(entry, as_key)
    check_hashedrekord_v002_body(key_only, **{**args, "cert": None})
    with pytest.raises(VerificationError, match=r"^tlog entry records a different public key or certificate$"):
        check_hashedrekord_v002_body(key_only, **args)
    empty = _edit_body(entry, lambda b: b["spec"]["hashedRekordV002"]["signature"].update(verifier={"keyDetails": "X"}))
    for cert in (None, args["cert"]):
        with pytest.raises(VerificationError, match=r"^tlog entry records a different public key or certificate$"):
            check_hashedrekord_v002_body(empty, **{**args, "cert": cert})


# ------------------------------------------------------------------ intoto 0.0.1 bodies, field by field
# (older cosign attestations; moved from test_cosign_attestations.py, whose registry tests keep
# scripts/mutate.py --no-registry from counting the file)


def _v001(edit=None):
    from lockman.signatures.rekor import LogEntry

    priv = new_key("p256")
    layer = attestation_layer(priv, D, None)
    body = intoto_body(layer.payload, public_pem(priv), "0.0.1")
    if edit is not None:
        edit(body)
    entry = LogEntry(body=json.dumps(body).encode(), body_b64="", integrated_time=0, log_index=0, log_id=b"")
    payload = base64.b64decode(json.loads(layer.payload)["payload"])
    return entry, {"envelope": layer.payload, "payload": payload, "key": priv.public_key()}


def _content(field: str, value) -> object:
    return lambda b: b["spec"]["content"].__setitem__(field, value)


def _hash_field(field: str, key: str, value) -> object:
    return lambda b: b["spec"]["content"][field].__setitem__(key, value)


V001_REFUSALS = [
    (lambda b: b.update(kind="dsse"), r"^tlog entry kind dsse 0.0.1 is not intoto 0.0.1$"),
    (lambda b: b.update(apiVersion="0.0.2"), r"^tlog entry kind intoto 0.0.2 is not intoto 0.0.1$"),
    (lambda b: b["spec"].pop("publicKey"), r"^tlog entry body malformed \(KeyError\('publicKey'\)\)$"),
    (lambda b: b["spec"]["content"].pop("hash"), r"^tlog entry body malformed"),
    (_content("hash", "sha256"), r"^tlog entry records a different DSSE envelope$"),
    (_hash_field("hash", "algorithm", "sha512"), r"^tlog entry records a different DSSE envelope$"),
    (_hash_field("hash", "value", "0" * 64), r"^tlog entry records a different DSSE envelope$"),
    (_content("payloadHash", "sha256"), r"^tlog entry records a different DSSE payload hash$"),
    (_hash_field("payloadHash", "algorithm", "sha1"), r"^tlog entry records a different DSSE payload hash$"),
    (_hash_field("payloadHash", "value", "0" * 64), r"^tlog entry records a different DSSE payload hash$"),
    (lambda b: b["spec"].update(publicKey={"content": "x"}),
     r"^tlog entry records a different public key or certificate$"),
    (lambda b: b["spec"].update(publicKey=b64(public_pem(new_key("p256")))),
     r"^tlog entry records a different public key or certificate$"),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "refusal"), V001_REFUSALS)
def test_intoto_v001_body_must_record_this_envelope_and_signer(edit, refusal: str) -> None:
    entry, args = _v001()
    check_intoto_v001_body(entry, **args)
    entry, args = _v001(lambda b: b["spec"]["content"].pop("payloadHash"))  # older Rekor: optional
    check_intoto_v001_body(entry, **args)
    entry, args = _v001(edit)
    with pytest.raises(VerificationError, match=refusal):
        check_intoto_v001_body(entry, **args)
