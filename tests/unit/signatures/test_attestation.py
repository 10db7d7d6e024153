"""Classic cosign attestations (``sha256-<hex>.att``, DSSE layers with a Rekor ``intoto`` SET):
the pure verifier, each forgery refused with its own reason. (Moved out of
test_cosign_attestations.py, which keeps the end-to-end tests on a real docker-registry, so that
scripts/mutate.py --no-registry counts these.)
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace

import pytest

from lockman.errors import VerificationError
from lockman.signatures import Policy, build_policy
from lockman.signatures.attestation import DSSE_MEDIA_TYPE, verify_attestation_layer, verify_attestations
from lockman.signatures.cosign import (
    ANNOTATION_BUNDLE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_SIGNATURE,
    SignatureLayer,
)
from lockman.signatures.fulcio import certificate_issuer
from lockman.signatures.keys import key_fingerprint
from lockman.signatures.trust import TrustedRoot
from tests.support.paths import TESTDATA
from tests.support.signing_helpers import (
    FakeFulcio,
    FakeRekor,
    attestation_layer,
    bundle_from,
    cert_pem,
    edit_envelope,
    flip_sig,
    hashedrekord_body,
    intoto_body,
    keyed_layer,
    new_key,
    public_pem,
    sign,
)

D = "sha256:" + "d" * 64
OTHER = "sha256:" + "e" * 64
SLSA1 = "https://slsa.dev/provenance/v1"
SPDX = "https://spdx.dev/Document"
IDENTITY = "signer@lockman.test"
ISSUER = "https://issuer.lockman.test"
CONFORMANCE = TESTDATA / "sigstore-conformance" / "bundle-verify"


@pytest.fixture(scope="module")
def signers():
    rekor, fulcio, priv = FakeRekor(), FakeFulcio(), new_key("p256")
    return rekor, fulcio, priv, fulcio.leaf(priv)


def _keyed(rekor, priv) -> Policy:
    return build_policy(key=priv.public_key(), trusted_root=FakeFulcio().trusted_root(rekor))


def _keyless(rekor, fulcio, identity: str = IDENTITY) -> Policy:
    return build_policy(
        certificate_identity=identity, certificate_oidc_issuer=ISSUER, trusted_root=fulcio.trusted_root(rekor)
    )


# ------------------------------------------------------------------ the pure verifier


@pytest.mark.parametrize("version", ["0.0.2", "0.0.1"])
def test_keyed_and_keyless_attestations_verify(signers, version: str) -> None:
    rekor, fulcio, priv, leaf = signers
    layer = attestation_layer(priv, D, rekor, intoto_version=version)
    got = verify_attestation_layer(D, layer, _keyed(rekor, priv), {SLSA1})
    assert (got.kind, got.predicate_type, got.signer) == (
        "cosign-attestation", SLSA1, f"key {key_fingerprint(priv.public_key())}"
    )  # fmt: skip
    assert got.tlog is not None and got.tlog.set_verified and got.tlog.log_index == rekor.next_index
    keyless = attestation_layer(priv, D, rekor, leaf=leaf, fulcio=fulcio, intoto_version=version)
    got = verify_attestation_layer(D, keyless, _keyless(rekor, fulcio), {SLSA1})
    assert got.signer == f"{IDENTITY} (issuer {ISSUER})" and got.sct_log_id is not None


def test_a_real_intoto_entry_repacked_as_an_att_layer_verifies() -> None:
    """sigstore-conformance's real ``intoto`` 0.0.2 entry (SET, Fulcio cert, SLSA statement),
    laid out as ``cosign attest`` stores it: envelope blob, bundle and certificate annotations."""
    case = CONFORMANCE / "intoto-with-custom-trust-root"
    doc = json.loads((case / "bundle.sigstore.json").read_text())
    vm, env = doc["verificationMaterial"], doc["dsseEnvelope"]
    entry = vm["tlogEntries"][0]
    from cryptography import x509

    cert = x509.load_der_x509_certificate(
        base64.b64decode(vm["x509CertificateChain"]["certificates"][0]["rawBytes"])
    )
    payload = {
        "body": entry["canonicalizedBody"],
        "integratedTime": int(entry["integratedTime"]),
        "logIndex": int(entry["logIndex"]),
        "logID": base64.b64decode(entry["logId"]["keyId"]).hex(),
    }
    bundle = json.dumps({"SignedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"], "Payload": payload})
    layer = SignatureLayer(
        DSSE_MEDIA_TYPE,
        json.dumps(env).encode(),
        {ANNOTATION_SIGNATURE: "", ANNOTATION_BUNDLE: bundle, ANNOTATION_CERTIFICATE: cert_pem(cert).decode()},
    )
    subject = json.loads(base64.b64decode(env["payload"]))["subject"][0]["digest"]["sha256"]
    identity = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value[0].value
    policy = build_policy(
        certificate_identity=identity,
        certificate_oidc_issuer=certificate_issuer(cert),
        trusted_root=TrustedRoot.from_file(case / "trusted_root.json"),
    )
    got = verify_attestation_layer(f"sha256:{subject}", layer, policy, {SLSA1})
    assert got.predicate_type == SLSA1 and got.tlog is not None and got.tlog.log_index == 4288993
    with pytest.raises(VerificationError, match="statement subject sha256:330a0432"):
        verify_attestation_layer(D, layer, policy, {SLSA1})


def _logged_with(rekor, priv, other, layer_kw=None, version="0.0.2"):
    """The envelope signed by ``priv``, but its log entry names ``other``'s key."""
    layer = attestation_layer(priv, D, None, **(layer_kw or {}))
    body = intoto_body(layer.payload, public_pem(other), version)
    return replace(layer, annotations={**layer.annotations, ANNOTATION_BUNDLE: rekor.cosign_annotation(body, 1740830400)})


def _hashedrekord_entry(rekor, priv):
    layer = attestation_layer(priv, D, None)
    body = hashedrekord_body(sign(priv, layer.payload), public_pem(priv), layer.payload)
    return replace(layer, annotations={**layer.annotations, ANNOTATION_BUNDLE: rekor.cosign_annotation(body, 1740830400)})


def _tampered_set(layer: SignatureLayer) -> SignatureLayer:
    doc = json.loads(layer.annotations[ANNOTATION_BUNDLE])
    doc["Payload"]["logIndex"] += 1
    return replace(layer, annotations={**layer.annotations, ANNOTATION_BUNDLE: json.dumps(doc)})


FORGERIES = {
    # name: (build the layer from (rekor, fulcio, priv, leaf), keyless?, refusal)
    "flipped DSSE signature": (
        lambda r, f, p, lf: edit_envelope(attestation_layer(p, D, r), flip_sig), False,
        r"^DSSE signature does not verify with key sha256:[0-9a-f]{64}$"),
    "statement for another digest": (
        lambda r, f, p, lf: attestation_layer(p, OTHER, r), False,
        rf"^statement subject {OTHER} != {D}$"),
    "wrong predicate type": (
        lambda r, f, p, lf: attestation_layer(p, D, r, SPDX), False,
        rf"^predicate type '{SPDX}' is not one of \['{SLSA1}'\]$"),
    "SET for another envelope (intoto 0.0.2)": (
        lambda r, f, p, lf: bundle_from(attestation_layer(p, D, r), attestation_layer(p, D, r, predicate={"x": 1})),
        False, r"^tlog entry records a different DSSE payload hash$"),
    "SET for another envelope (intoto 0.0.1)": (
        lambda r, f, p, lf: bundle_from(
            attestation_layer(p, D, r, intoto_version="0.0.1"),
            attestation_layer(p, D, r, predicate={"x": 1}, intoto_version="0.0.1")),
        False, r"^tlog entry records a different DSSE envelope$"),
    "SET for the same statement, another signature (intoto 0.0.2)": (
        lambda r, f, p, lf: bundle_from(attestation_layer(p, D, r), attestation_layer(p, D, r)),  # ECDSA: fresh sig
        False, r"^tlog entry records different DSSE signatures$"),
    "SET for the same statement, another signature (intoto 0.0.1)": (
        lambda r, f, p, lf: bundle_from(
            attestation_layer(p, D, r, intoto_version="0.0.1"), attestation_layer(p, D, r, intoto_version="0.0.1")),
        False, r"^tlog entry records a different DSSE envelope$"),
    "SET for another key (intoto 0.0.2)": (
        lambda r, f, p, lf: _logged_with(r, p, new_key("p256")), False,
        r"^tlog entry records a different public key or certificate$"),
    "SET for another key (intoto 0.0.1)": (
        lambda r, f, p, lf: _logged_with(r, p, new_key("p256"), version="0.0.1"), False,
        r"^tlog entry records a different public key or certificate$"),
    "SET of a hashedrekord entry": (
        lambda r, f, p, lf: _hashedrekord_entry(r, p), False,
        r"^tlog entry kind hashedrekord 0.0.1 is not intoto 0.0.2$"),
    "tampered SET": (
        lambda r, f, p, lf: _tampered_set(attestation_layer(p, D, r)), False,
        r"^Rekor SET does not verify with log key"),
    "no SET": (
        lambda r, f, p, lf: attestation_layer(p, D, None), False, r"^no Rekor bundle annotation"),
    "wrong key": (
        lambda r, f, p, lf: attestation_layer(new_key("p256"), D, r), False,
        r"^DSSE signature does not verify with key"),
    "wrong identity": (
        lambda r, f, p, lf: attestation_layer(
            p, D, r, leaf=f.leaf(p, identity="mallory@lockman.test"), fulcio=f), True,
        r"mallory@lockman.test"),
    "keyless layer without a certificate": (
        lambda r, f, p, lf: attestation_layer(p, D, r), True, r"^no certificate annotation"),
    "certificate of another signer": (
        lambda r, f, p, lf: attestation_layer(p, D, r, leaf=f.leaf(new_key("p256")), fulcio=f), True,
        r"^DSSE signature does not verify with key"),
    "payload type not in-toto": (
        lambda r, f, p, lf: edit_envelope(attestation_layer(p, D, r), lambda e: e.update(payloadType="text/plain")),
        False, r"^DSSE payload type 'text/plain' is not in-toto$"),
    "envelope without signatures": (
        lambda r, f, p, lf: edit_envelope(attestation_layer(p, D, r), lambda e: e.update(signatures=[])),
        False, r"^DSSE envelope has no signatures$"),
    "blob is no envelope": (
        lambda r, f, p, lf: replace(attestation_layer(p, D, r), payload=b"[]"), False,
        r"^layer is not a DSSE envelope"),
    "payloadType not a string": (
        lambda r, f, p, lf: edit_envelope(attestation_layer(p, D, r), lambda e: e.update(payloadType=1)),
        False, r"^DSSE payloadType is not a string$"),
    "simple-signing media type": (
        lambda r, f, p, lf: keyed_layer(p, D, r), False, r"is not a DSSE envelope$"),
}  # fmt: skip


@pytest.mark.parametrize("name", FORGERIES)
def test_forged_attestations_refused_with_their_reason(signers, name: str) -> None:
    rekor, fulcio, priv, leaf = signers
    build, keyless, refusal = FORGERIES[name]
    policy = _keyless(rekor, fulcio) if keyless else _keyed(rekor, priv)
    with pytest.raises(VerificationError, match=refusal):
        verify_attestation_layer(D, build(rekor, fulcio, priv, leaf), policy, {SLSA1})


def test_ignore_tlog_and_any_predicate(signers) -> None:
    rekor, _, priv, _ = signers
    layer = attestation_layer(priv, D, None, SPDX)
    got = verify_attestation_layer(D, layer, replace(_keyed(rekor, priv), ignore_tlog=True))
    assert got.tlog is None and got.predicate_type == SPDX


def test_first_passing_layer_wins_and_every_failure_is_named(signers) -> None:
    rekor, _, priv, _ = signers
    policy = _keyed(rekor, priv)
    good = attestation_layer(priv, D, rekor)
    other = SignatureLayer("text/plain", b"x", {})
    spdx = attestation_layer(priv, D, rekor, SPDX)
    assert verify_attestations(D, [other, spdx, good], policy, {SLSA1}).index == 2
    with pytest.raises(VerificationError, match=rf"^no attestation matched: layer 1: predicate type '{SPDX}' .*; layer 2: DSSE signature"):
        verify_attestations(D, [other, spdx, attestation_layer(new_key("p256"), D, rekor)], policy, {SLSA1})
    with pytest.raises(VerificationError, match=rf"^no cosign attestation for {D}: no {re.escape(DSSE_MEDIA_TYPE)} layers$"):
        verify_attestations(D, [other], policy, {SLSA1})


def test_malformed_digests_are_caller_errors(signers) -> None:
    from lockman.errors import InputError
    from lockman.signatures.attestation import attestation_tag

    rekor, _, priv, _ = signers
    layer = attestation_layer(priv, D, rekor)
    assert attestation_tag(D) == "sha256-" + "d" * 64 + ".att"
    for call in (
        lambda: attestation_tag("latest"),
        lambda: verify_attestation_layer("sha256:D", layer, _keyed(rekor, priv)),
        lambda: verify_attestations("sha256:D", [], _keyed(rekor, priv)),
    ):
        with pytest.raises(InputError, match="is not sha256:<64 lowercase hex>"):
            call()
