"""Sigstore bundle v0.3 (DSSE) verification: the real cosign bundle and forged ones."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization

from lockman.errors import InputError, VerificationError
from lockman.signatures import COSIGN_SIGN_PREDICATE, Policy, TrustedRoot, build_policy, verify_bundle
from lockman.signatures.bundle import pae
from lockman.signatures.trust import LogKey
from tests.support.signing_helpers import (
    FakeFulcio,
    FakeRekor,
    b64,
    dsse_body,
    fixture_bytes,
    make_bundle,
    new_key,
    public_pem,
    sign,
)

# Subject of the in-toto statement in oci-attestation.sigstore.json.
DIGEST = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
GITHUB = "https://github.com/login/oauth"
CODY = build_policy(certificate_identity="cody@soyland.com", certificate_oidc_issuer=GITHUB)


def real() -> bytes:
    return fixture_bytes("oci-attestation.sigstore.json")


def edited(fn) -> bytes:
    doc = json.loads(real())
    fn(doc)
    return json.dumps(doc).encode()


def test_pae() -> None:
    assert pae("t", b"ab") == b"DSSEv1 1 t 2 ab"


def test_real_bundle_verifies_with_public_good_root() -> None:
    result = verify_bundle(DIGEST, real(), CODY)
    assert result.kind == "sigstore-bundle"
    assert result.signer == f"cody@soyland.com (issuer {GITHUB})"
    assert result.predicate_type == "https://cosign.sigstore.dev/attestation/v1"
    assert result.tlog is not None and result.tlog.set_verified and result.tlog.inclusion_proof_verified
    assert result.sct_log_id == "dd3d306ac6c7113263191e1c99673702a24a5eb8de3cadff878a72802f29ee8e"


def test_real_bundle_wrong_digest_identity_issuer_predicate() -> None:
    with pytest.raises(VerificationError, match=rf"statement subject {DIGEST} != sha256:0000"):
        verify_bundle("sha256:" + "00" * 32, real(), CODY)
    with pytest.raises(VerificationError, match=r"does not match 'mitr@redhat.com'"):
        verify_bundle(
            DIGEST,
            real(),
            build_policy(certificate_identity="mitr@redhat.com", certificate_oidc_issuer=GITHUB),
        )
    with pytest.raises(VerificationError, match=r"does not match 'https://accounts"):
        verify_bundle(
            DIGEST,
            real(),
            build_policy(
                certificate_identity="cody@soyland.com",
                certificate_oidc_issuer_regexp="https://accounts.*",
            ),
        )
    with pytest.raises(VerificationError, match=r"predicate type .* is not one of"):
        verify_bundle(DIGEST, real(), CODY, predicate_types={COSIGN_SIGN_PREDICATE})


def test_real_bundle_tampering() -> None:
    def flip_sig(doc: dict) -> None:
        sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
        sig[12] ^= 0x80
        doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(sig).decode()

    with pytest.raises(VerificationError, match=r"DSSE signature does not verify with key"):
        verify_bundle(DIGEST, edited(flip_sig), CODY)

    def alter_set(doc: dict) -> None:
        doc["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = "1740770292"

    with pytest.raises(VerificationError, match=r"tlog: Rekor SET does not verify"):
        verify_bundle(DIGEST, edited(alter_set), CODY)

    def drop_tlog(doc: dict) -> None:
        doc["verificationMaterial"]["tlogEntries"] = []

    with pytest.raises(VerificationError, match=r"no tlog entry"):
        verify_bundle(DIGEST, edited(drop_tlog), CODY)
    # Without the tlog there is no trusted time: the 10-minute cert is checked now, and fails.
    with pytest.raises(VerificationError, match=r"not valid at"):
        verify_bundle(
            DIGEST,
            edited(drop_tlog),
            build_policy(
                certificate_identity="cody@soyland.com",
                certificate_oidc_issuer=GITHUB,
                ignore_tlog=True,
            ),
        )

    def message_signature(doc: dict) -> None:
        doc["messageSignature"] = doc.pop("dsseEnvelope")

    # a DSSE envelope moved under messageSignature is not a message signature
    with pytest.raises(VerificationError, match=r"^malformed bundle \(KeyError\('signature'\)\)$"):
        verify_bundle(DIGEST, edited(message_signature), CODY)

    def media_type(doc: dict) -> None:
        doc["mediaType"] = "application/json"

    with pytest.raises(VerificationError, match=r"media type 'application/json'"):
        verify_bundle(DIGEST, edited(media_type), CODY)


def test_real_bundle_wrong_key_policy() -> None:
    with pytest.raises(VerificationError, match=r"DSSE signature does not verify"):
        verify_bundle(DIGEST, real(), build_policy(key=new_key("p256").public_key()))


FRESH_DIGEST = "sha256:" + "c3" * 32


@pytest.mark.parametrize("alg", ["p256", "p384", "rsa", "ed25519"])
def test_fresh_bundles_keyed_and_keyless(alg: str) -> None:
    priv, rekor, fulcio = new_key(alg), FakeRekor(), FakeFulcio()
    root = fulcio.trusted_root(rekor)
    keyed = build_policy(key=priv.public_key(), trusted_root=root)
    result = verify_bundle(
        FRESH_DIGEST, make_bundle(priv, FRESH_DIGEST, rekor), keyed, {COSIGN_SIGN_PREDICATE}
    )
    assert result.signer.startswith("key sha256:") and result.tlog is not None
    leaf = fulcio.leaf(priv, identity="https://github.com/o/r/.github/workflows/release.yml@refs/tags/v1")
    keyless = build_policy(
        certificate_identity_regexp=r"https://github\.com/o/r/\.github/workflows/.*",
        certificate_oidc_issuer="https://issuer.lockman.test",
        trusted_root=root,
    )
    result = verify_bundle(FRESH_DIGEST, make_bundle(priv, FRESH_DIGEST, rekor, leaf), keyless)
    assert result.certificate_identity and result.certificate_identity.endswith("@refs/tags/v1")


def test_fresh_bundle_untrusted_rekor_and_no_tlog() -> None:
    priv, rekor = new_key("p256"), FakeRekor()
    policy = build_policy(key=priv.public_key(), trusted_root=TrustedRoot(tlogs=(FakeRekor().log_key(),)))
    with pytest.raises(VerificationError, match=r"tlog: tlog entry from unknown Rekor log"):
        verify_bundle(FRESH_DIGEST, make_bundle(priv, FRESH_DIGEST, rekor), policy)
    relaxed = build_policy(key=priv.public_key(), ignore_tlog=True)
    assert verify_bundle(FRESH_DIGEST, make_bundle(priv, FRESH_DIGEST, None), relaxed).tlog is None


# ---------------------------------------------------------------- forged bundles: each check's refusal


def _fresh(leaf_wanted: bool = False) -> tuple:
    """A key, Rekor, Fulcio, the matching policy (keyed, or keyless if ``leaf_wanted``) and a leaf."""
    priv, rekor, fulcio = new_key("p256"), FakeRekor(), FakeFulcio()
    root = fulcio.trusted_root(rekor)
    leaf = fulcio.leaf(priv) if leaf_wanted else None
    policy = (
        build_policy(
            certificate_identity="signer@lockman.test",
            certificate_oidc_issuer="https://issuer.lockman.test",
            trusted_root=root,
        )
        if leaf_wanted
        else build_policy(key=priv.public_key(), trusted_root=root)
    )
    return priv, rekor, fulcio, policy, leaf


def _edit(bundle: bytes, fn) -> bytes:
    doc = json.loads(bundle)
    fn(doc)
    return json.dumps(doc).encode()


def _resign(priv, payload: bytes, payload_type: str = "application/vnd.in-toto+json"):
    """An edit that replaces the DSSE payload with ``payload``, correctly signed."""

    def fn(doc: dict) -> None:
        doc["dsseEnvelope"]["payload"] = b64(payload)
        doc["dsseEnvelope"]["payloadType"] = payload_type
        doc["dsseEnvelope"]["signatures"] = [{"sig": b64(sign(priv, pae(payload_type, payload)))}]

    return fn


def test_replayed_tlog_entry_refused() -> None:
    """A genuine Rekor entry, for another signature by the same key, replayed into this bundle."""
    priv, rekor, _, policy, _ = _fresh()
    other = json.loads(make_bundle(priv, "sha256:" + "0d" * 32, rekor))
    replayed = _edit(
        make_bundle(priv, FRESH_DIGEST, rekor),
        lambda doc: doc["verificationMaterial"].update(tlogEntries=other["verificationMaterial"]["tlogEntries"]),
    )
    with pytest.raises(VerificationError, match=r"^tlog: tlog entry records a different DSSE payload hash$"):
        verify_bundle(FRESH_DIGEST, replayed, policy)


def test_tlog_entry_for_another_signer_refused() -> None:
    """Same payload, same signature bytes, but the log recorded someone else's key."""
    priv, rekor, _, policy, _ = _fresh()
    bundle = json.loads(make_bundle(priv, FRESH_DIGEST, rekor))
    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    sig = base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"])
    entry = rekor.bundle_entry(dsse_body(payload, [sig], public_pem(new_key("p256"))), 1740770291, "dsse")
    entry["inclusionProof"] = rekor.inclusion_proof(entry["canonicalizedBody"])
    bundle["verificationMaterial"]["tlogEntries"] = [entry]
    with pytest.raises(VerificationError, match=r"^tlog: tlog entry records a different public key or cert"):
        verify_bundle(FRESH_DIGEST, json.dumps(bundle).encode(), policy)


def test_second_tlog_entry_may_vouch_when_the_first_fails() -> None:
    priv, rekor, _, policy, _ = _fresh()
    bundle = json.loads(make_bundle(priv, FRESH_DIGEST, rekor))
    good = bundle["verificationMaterial"]["tlogEntries"][0]
    foreign = json.loads(make_bundle(priv, FRESH_DIGEST, FakeRekor()))["verificationMaterial"]["tlogEntries"][0]
    bundle["verificationMaterial"]["tlogEntries"] = [foreign, good]
    result = verify_bundle(FRESH_DIGEST, json.dumps(bundle).encode(), policy)
    assert result.tlog is not None and result.tlog.log_id == rekor.log_id.hex()
    bundle["verificationMaterial"]["tlogEntries"] = [foreign, foreign]
    with pytest.raises(VerificationError, match=r"^tlog: tlog entry from unknown .*; tlog entry from unknown"):
        verify_bundle(FRESH_DIGEST, json.dumps(bundle).encode(), policy)


def _proof_instead_of_promise(rekor: FakeRekor):
    def fn(doc: dict) -> None:
        entry = doc["verificationMaterial"]["tlogEntries"][0]
        del entry["inclusionPromise"]
        entry["inclusionProof"] = rekor.inclusion_proof(entry["canonicalizedBody"])

    return fn


def test_keyed_bundle_accepted_on_inclusion_proof_alone() -> None:
    priv, rekor, _, policy, _ = _fresh()
    bundle = _edit(make_bundle(priv, FRESH_DIGEST, rekor), _proof_instead_of_promise(rekor))
    tlog = verify_bundle(FRESH_DIGEST, bundle, policy).tlog
    assert tlog is not None and tlog.inclusion_proof_verified and not tlog.set_verified


def test_keyless_bundle_needs_a_set_for_its_time() -> None:
    """An inclusion proof does not authenticate integratedTime: a keyless bundle needs the SET."""
    priv, rekor, _, policy, leaf = _fresh(leaf_wanted=True)
    bundle = _edit(make_bundle(priv, FRESH_DIGEST, rekor, leaf), _proof_instead_of_promise(rekor))
    with pytest.raises(VerificationError, match=r"^tlog: tlog entry has no inclusion promise \(SET\)"):
        verify_bundle(FRESH_DIGEST, bundle, policy)


def test_real_keyless_bundle_without_its_promise_refused() -> None:
    def drop_promise(doc: dict) -> None:
        del doc["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]

    with pytest.raises(VerificationError, match=r"^tlog: tlog entry has no inclusion promise \(SET\)"):
        verify_bundle(DIGEST, edited(drop_promise), CODY)


def test_keyless_bundle_with_certificate_chain_material() -> None:
    """v0.1/v0.2 bundles carry ``x509CertificateChain``: leaf first, then intermediates."""
    priv, rekor, fulcio, policy, leaf = _fresh(leaf_wanted=True)
    der = [c.public_bytes(serialization.Encoding.DER) for c in (leaf, fulcio.intermediate)]

    def chain(certs: list[bytes]):
        def fn(doc: dict) -> None:
            doc["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2"  # v0.3: one cert
            vm = doc["verificationMaterial"]
            del vm["certificate"]
            vm["x509CertificateChain"] = {"certificates": [{"rawBytes": b64(c)} for c in certs]}

        return fn

    bundle = make_bundle(priv, FRESH_DIGEST, rekor, leaf)
    policy = build_policy(
        certificate_identity="signer@lockman.test",
        certificate_oidc_issuer="https://issuer.lockman.test",
        trusted_root=fulcio.trusted_root(rekor, chain="root"),
    )
    assert verify_bundle(FRESH_DIGEST, _edit(bundle, chain(der)), policy).certificate_identity
    root_der = fulcio.root.public_bytes(serialization.Encoding.DER)
    with pytest.raises(VerificationError, match=r"^bundle certificate chain contains a root certificate$"):
        verify_bundle(FRESH_DIGEST, _edit(bundle, chain([*der, root_der])), policy)

    def v03_chain(doc: dict) -> None:
        chain(der)(doc)
        doc["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.3+json"

    with pytest.raises(VerificationError, match=r"^bundle v0.3 must carry a single certificate, not a chain$"):
        verify_bundle(FRESH_DIGEST, _edit(bundle, v03_chain), policy)
    with pytest.raises(VerificationError, match=r"^bundle certificate chain is empty$"):
        verify_bundle(FRESH_DIGEST, _edit(bundle, chain([])), policy)


@pytest.mark.parametrize(
    ("edit", "refusal"),
    [
        (lambda doc: doc.pop("verificationMaterial"), r"^bundle has no verificationMaterial$"),
        (lambda doc: doc.update(verificationMaterial=[]), r"^bundle has no verificationMaterial$"),
        (
            lambda doc: doc["verificationMaterial"].pop("publicKey"),
            r"^bundle verificationMaterial has no certificate or public key$",
        ),
        (lambda doc: doc["dsseEnvelope"].pop("signatures"), r"^malformed bundle \(KeyError"),
        (lambda doc: doc["dsseEnvelope"].update(signatures=[]), r"^DSSE envelope must have exactly one signature, not 0$"),
    ],
)
def test_malformed_bundle_refused(edit, refusal: str) -> None:
    priv, rekor, _, policy, _ = _fresh()
    with pytest.raises(VerificationError, match=refusal):
        verify_bundle(FRESH_DIGEST, _edit(make_bundle(priv, FRESH_DIGEST, rekor), edit), policy)


@pytest.mark.parametrize(
    ("raw", "refusal"),
    [(b"{not json", r"^bundle is not JSON"), (b"\xff\xfe", r"^bundle is not JSON"), (b"[]", r"not a JSON object")],
)
def test_bundle_that_is_not_a_json_object_refused(raw: bytes, refusal: str) -> None:
    with pytest.raises(VerificationError, match=refusal):
        verify_bundle(FRESH_DIGEST, raw, build_policy(key=new_key("p256").public_key()))


def test_key_hint_bundle_under_keyless_policy_refused() -> None:
    priv, rekor, _, _, _ = _fresh()
    keyless = build_policy(certificate_identity="signer@lockman.test", certificate_oidc_issuer="https://i.test")
    with pytest.raises(VerificationError, match=r"only a public key hint; keyless policy needs a cert"):
        verify_bundle(FRESH_DIGEST, make_bundle(priv, FRESH_DIGEST, rekor), keyless)


@pytest.mark.parametrize(
    ("payload", "payload_type", "refusal"),
    [
        (b"{}", "application/json", r"^DSSE payload type 'application/json' is not in-toto$"),
        (b"not json", "application/vnd.in-toto+json", r"^DSSE payload is not an in-toto statement"),
        (b'{"subject": []}', "application/vnd.in-toto+json", r"^DSSE payload is not an in-toto statement"),
        (
            b'{"_type": "https://example.test/Statement", "subject": []}',
            "application/vnd.in-toto+json",
            r"^in-toto statement type 'https://example.test/Statement' is not supported$",
        ),
    ],
)
def test_signed_payload_that_is_not_an_in_toto_statement_refused(
    payload: bytes, payload_type: str, refusal: str
) -> None:
    """Correctly signed, wrong content: the signature alone proves nothing about the image."""
    priv, _, _, _, _ = _fresh()
    bundle = _edit(make_bundle(priv, FRESH_DIGEST, None), _resign(priv, payload, payload_type))
    with pytest.raises(VerificationError, match=refusal):
        verify_bundle(FRESH_DIGEST, bundle, build_policy(key=priv.public_key(), ignore_tlog=True))


def test_malformed_image_digest_is_a_caller_error() -> None:
    priv, rekor, _, policy, _ = _fresh()
    with pytest.raises(InputError, match=r"image digest 'sha256:C3"):
        verify_bundle("sha256:" + "C3" * 32, make_bundle(priv, FRESH_DIGEST, rekor), policy)


# ---------------------------------------------------------------- bundle media type rules


def _set_only(doc: dict) -> None:
    doc["verificationMaterial"]["tlogEntries"][0].pop("inclusionProof")


def _proof_only(doc: dict) -> None:
    doc["verificationMaterial"]["tlogEntries"][0].pop("inclusionPromise")


@pytest.mark.parametrize(
    ("media_type", "edit", "refusal"),
    [
        ("application/vnd.dev.sigstore.bundle.v0.3+json", _set_only, r"no inclusion proof \(required from bundle v0.2 on\)"),
        ("application/vnd.dev.sigstore.bundle+json;version=0.3", _set_only, r"no inclusion proof"),
        ("application/vnd.dev.sigstore.bundle+json;version=0.2", _set_only, r"no inclusion proof"),
        ("application/vnd.dev.sigstore.bundle+json;version=0.1", _proof_only, r"bundle v0.1 tlog entry has no inclusion promise"),
        ("application/vnd.dev.sigstore.bundle+json;version=0.4", None, r"media type .* is not supported"),
    ],
)
def test_each_bundle_version_has_its_own_tlog_rule(media_type: str, edit, refusal: str) -> None:
    priv, rekor, _, policy, _ = _fresh()

    def fn(doc: dict) -> None:
        doc["mediaType"] = media_type
        if edit is not None:
            edit(doc)

    with pytest.raises(VerificationError, match=refusal):
        verify_bundle(FRESH_DIGEST, _edit(make_bundle(priv, FRESH_DIGEST, rekor), fn), policy)


def test_v01_accepts_a_promise_alone_and_ignores_a_proof_without_checkpoint() -> None:
    priv, rekor, _, policy, _ = _fresh()

    def v01(doc: dict) -> None:
        doc["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1"
        doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"] = {"envelope": ""}

    tlog = verify_bundle(FRESH_DIGEST, _edit(make_bundle(priv, FRESH_DIGEST, rekor), v01), policy).tlog
    assert tlog is not None and tlog.set_verified and not tlog.inclusion_proof_verified
    tlog = verify_bundle(FRESH_DIGEST, _edit(make_bundle(priv, FRESH_DIGEST, rekor), lambda d: (v01(d), _set_only(d))), policy).tlog
    assert tlog is not None and tlog.set_verified


def test_bundle_needs_exactly_one_content_kind() -> None:
    priv, rekor, _, policy, _ = _fresh()
    both = _edit(make_bundle(priv, FRESH_DIGEST, rekor), lambda d: d.update(messageSignature={"signature": "AA=="}))
    with pytest.raises(VerificationError, match=r"exactly one of dsseEnvelope and messageSignature"):
        verify_bundle(FRESH_DIGEST, both, policy)


def test_message_signature_is_a_signature_not_an_attestation() -> None:
    import hashlib

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    priv = new_key("p256")
    digest = bytes.fromhex(FRESH_DIGEST.split(":")[1])
    sig = priv.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    doc = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "k"}},
        "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": b64(digest)}, "signature": b64(sig)},
    }
    policy = build_policy(key=priv.public_key(), ignore_tlog=True)
    result = verify_bundle(FRESH_DIGEST, json.dumps(doc).encode(), policy, predicate_types={COSIGN_SIGN_PREDICATE})
    assert result.predicate_type is None
    with pytest.raises(VerificationError, match=r"plain message signature, not an attestation"):
        verify_bundle(FRESH_DIGEST, json.dumps(doc).encode(), policy, predicate_types={"https://slsa.dev/provenance/v1"})
    other = "sha256:" + hashlib.sha256(b"other").hexdigest()
    with pytest.raises(VerificationError, match=r"bundle message digest is not sha256:"):
        verify_bundle(other, json.dumps(doc).encode(), policy)
    doc["messageSignature"]["messageDigest"]["algorithm"] = "SHA2_512"
    with pytest.raises(VerificationError, match=r"^message digest algorithm 'SHA2_512' is not SHA2_256$"):
        verify_bundle(FRESH_DIGEST, json.dumps(doc).encode(), policy)
    doc["messageSignature"].pop("messageDigest")
    with pytest.raises(VerificationError, match=r"^message signature does not verify with key"):
        verify_bundle(other, json.dumps(doc).encode(), policy)


# ---------------------------------------------------------------- Rekor v2 (hashedrekord 0.0.2) bodies


def _v2_message_bundle(priv, edit_body=None, digest: str = FRESH_DIGEST):
    """A keyed message-signature bundle logged to a Rekor-v2-style log; ``edit_body`` forges the body."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    from tests.support.sigstore_signers import Rekor2Log

    log = Rekor2Log()
    raw = bytes.fromhex(digest.split(":")[1])
    sig = priv.sign(raw, ec.ECDSA(Prehashed(hashes.SHA256())))
    spki = priv.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    body = {
        "apiVersion": "0.0.2",
        "kind": "hashedrekord",
        "spec": {
            "hashedRekordV002": {
                "data": {"algorithm": "SHA2_256", "digest": b64(raw)},
                "signature": {
                    "content": b64(sig),
                    "verifier": {"keyDetails": "PKIX_ECDSA_P256_SHA_256", "publicKey": {"rawBytes": b64(spki)}},
                },
            }
        },
    }
    if edit_body is not None:
        edit_body(body)
    doc = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "k"}, "tlogEntries": [log.entry(body)]},
        "messageSignature": {"signature": b64(sig)},
    }
    root = TrustedRoot(tlogs=(LogKey(log_id=log.log_id, key=log.key.public_key(), base_url=""),))
    return json.dumps(doc).encode(), root


def _spec(body: dict) -> dict:
    return body["spec"]["hashedRekordV002"]


@pytest.mark.parametrize(
    ("edit", "refusal"),
    [
        (lambda b: b.update(apiVersion="0.0.3"), r"kind hashedrekord 0.0.3 is not hashedrekord 0.0.2$"),
        (lambda b: _spec(b)["data"].update(algorithm="SHA2_384"), r"hash algorithm SHA2_384 is not SHA2_256$"),
        (lambda b: _spec(b)["data"].update(digest=b64(b"\0" * 32)), r"records a different payload hash$"),
        (lambda b: _spec(b)["signature"].update(content=b64(b"\0" * 70)), r"records a different signature$"),
        (
            lambda b: _spec(b)["signature"]["verifier"]["publicKey"].update(rawBytes=b64(b"\0" * 91)),
            r"records a different public key or certificate$",
        ),
        (lambda b: _spec(b)["signature"].update(verifier="x"), r"records a different public key or certificate$"),
        (lambda b: b["spec"].pop("hashedRekordV002"), r"tlog entry body malformed"),
    ],
)
def test_rekor_v2_message_signature_body_must_record_this_signature(edit, refusal: str) -> None:
    priv = new_key("p256")
    bundle, root = _v2_message_bundle(priv)
    policy = build_policy(key=priv.public_key(), trusted_root=root)
    tlog = verify_bundle(FRESH_DIGEST, bundle, policy).tlog
    assert tlog is not None and tlog.inclusion_proof_verified and not tlog.set_verified
    forged, root = _v2_message_bundle(priv, edit)
    with pytest.raises(VerificationError, match=r"^tlog: .*" + refusal):
        verify_bundle(FRESH_DIGEST, forged, replace_root(policy, root))


def replace_root(policy: Policy, root: TrustedRoot) -> Policy:
    from dataclasses import replace

    return replace(policy, trusted_root=root)


def test_dsse_envelope_needs_exactly_one_signature() -> None:
    """A second envelope signature would be unlogged (a hashedrekord 0.0.2 body records exactly
    one) and untimestamped (RFC 3161 tokens are over one): refused before any log entry is read."""
    import hashlib

    from tests.support.sigstore_signers import Rekor2Log

    priv, log = new_key("p256"), Rekor2Log()
    doc = json.loads(make_bundle(priv, FRESH_DIGEST, None))
    env = doc["dsseEnvelope"]
    signed = pae(env["payloadType"], base64.b64decode(env["payload"]))
    spki = priv.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    body = {
        "apiVersion": "0.0.2",
        "kind": "hashedrekord",
        "spec": {
            "hashedRekordV002": {
                "data": {"algorithm": "SHA2_256", "digest": b64(hashlib.sha256(signed).digest())},
                "signature": {"content": env["signatures"][0]["sig"], "verifier": {"publicKey": {"rawBytes": b64(spki)}}},
            }
        },
    }
    doc["verificationMaterial"]["tlogEntries"] = [log.entry(body)]
    root = TrustedRoot(tlogs=(LogKey(log_id=log.log_id, key=log.key.public_key(), base_url=""),))
    policy = build_policy(key=priv.public_key(), trusted_root=root)
    assert verify_bundle(FRESH_DIGEST, json.dumps(doc).encode(), policy).tlog is not None
    env["signatures"].append({"sig": env["signatures"][0]["sig"]})
    with pytest.raises(VerificationError, match=r"^DSSE envelope must have exactly one signature, not 2$"):
        verify_bundle(FRESH_DIGEST, json.dumps(doc).encode(), policy)


@pytest.mark.parametrize(("kind", "version"), [("hashedrekord", "0.0.1"), ("intoto", "0.0.1"), ("rekord", "0.0.1")])
def test_dsse_envelope_in_an_entry_kind_that_cannot_record_it(kind: str, version: str) -> None:
    priv, rekor, _, policy, _ = _fresh()

    def relabel(doc: dict) -> None:
        doc["verificationMaterial"]["tlogEntries"][0]["kindVersion"] = {"kind": kind, "version": version}

    with pytest.raises(VerificationError, match=rf"^tlog: tlog entry kind {kind} {version} cannot record a DSSE envelope$"):
        verify_bundle(FRESH_DIGEST, _edit(make_bundle(priv, FRESH_DIGEST, rekor), relabel), policy)


@pytest.mark.parametrize(
    ("edit", "refusal"),
    [
        (lambda vm: vm.update(timestampVerificationData=[1]), r"^malformed timestampVerificationData$"),
        (lambda vm: vm.update(timestampVerificationData={"rfc3161Timestamps": {"a": 1}}), r"^malformed rfc3161Timestamps$"),
        (
            lambda vm: vm.update(timestampVerificationData={"rfc3161Timestamps": [{}]}),
            r"^malformed RFC 3161 timestamp \(KeyError\('signedTimestamp'\)\)$",
        ),
        (lambda vm: vm.update(tlogEntries={"x": 1}), r"^malformed bundle \(TypeError\('tlogEntries is not a list'\)\)$"),
    ],
)
def test_malformed_verification_material_refused(edit, refusal: str) -> None:
    priv, rekor, _, policy, _ = _fresh()
    with pytest.raises(VerificationError, match=refusal):
        verify_bundle(FRESH_DIGEST, _edit(make_bundle(priv, FRESH_DIGEST, rekor), lambda d: edit(d["verificationMaterial"])), policy)


def test_bundle_with_neither_content_refused() -> None:
    priv, rekor, _, policy, _ = _fresh()
    with pytest.raises(VerificationError, match=r"^bundle must hold exactly one of dsseEnvelope and messageSignature$"):
        verify_bundle(FRESH_DIGEST, _edit(make_bundle(priv, FRESH_DIGEST, rekor), lambda d: d.pop("dsseEnvelope")), policy)


def test_v02_proof_without_checkpoint_refused() -> None:
    """Only v0.1 may carry a checkpoint-less proof (ignored); from v0.2 the checkpoint is the proof."""
    priv, rekor, _, policy, _ = _fresh()

    def no_checkpoint(doc: dict) -> None:
        doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"] = {"envelope": ""}

    with pytest.raises(VerificationError, match=r"^tlog: checkpoint is not a signed note$"):
        verify_bundle(FRESH_DIGEST, _edit(make_bundle(priv, FRESH_DIGEST, rekor), no_checkpoint), policy)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["verificationMaterial"].update(certificate={}),
        lambda d: d["verificationMaterial"].update(certificate="x"),
        lambda d: d["verificationMaterial"].update(x509CertificateChain={"certificates": "x"}),
        lambda d: d["verificationMaterial"].update(x509CertificateChain=[]),
        lambda d: d["verificationMaterial"].update(tlogEntries=[1]),
        lambda d: d["verificationMaterial"].update(tlogEntries=[{"logIndex": "x"}]),
        lambda d: d["verificationMaterial"].update(timestampVerificationData={"rfc3161Timestamps": ["x"]}),
        lambda d: d.update(dsseEnvelope="x"),
        lambda d: d.update(dsseEnvelope={"payload": 1, "payloadType": [], "signatures": [1]}),
        lambda d: (d.pop("dsseEnvelope"), d.update(messageSignature=[])),
        lambda d: (d.pop("dsseEnvelope"), d.update(messageSignature={"signature": "AA==", "messageDigest": 3})),
        lambda d: (d.pop("dsseEnvelope"), d.update(messageSignature={"signature": "AA==", "messageDigest": {"algorithm": "SHA2_256", "digest": 5}})),
    ],
)
def test_hostile_shapes_are_verification_errors_never_crashes(edit) -> None:
    """Every field of a bundle comes from the registry: any shape must give a VerificationError."""
    priv, rekor, fulcio, _, leaf = _fresh(leaf_wanted=True)
    policy = build_policy(
        certificate_identity="signer@lockman.test",
        certificate_oidc_issuer="https://issuer.lockman.test",
        trusted_root=fulcio.trusted_root(rekor),
    )
    doc = json.loads(make_bundle(priv, FRESH_DIGEST, rekor, leaf))
    edit(doc)
    with pytest.raises(VerificationError):
        verify_bundle(FRESH_DIGEST, json.dumps(doc).encode(), policy)


def test_material_naming_two_signers_refused() -> None:
    priv, rekor, _, policy, leaf = _fresh(leaf_wanted=True)
    doc = json.loads(make_bundle(priv, FRESH_DIGEST, rekor, leaf))
    doc["verificationMaterial"]["publicKey"] = {"hint": "k"}
    with pytest.raises(VerificationError, match=r"^bundle verificationMaterial names more than one signer"):
        verify_bundle(FRESH_DIGEST, json.dumps(doc).encode(), policy)


def test_base64_field_that_is_not_a_string() -> None:
    from lockman.signatures.keys import decode_b64

    with pytest.raises(VerificationError, match=r"^DSSE payload is not a base64 string$"):
        decode_b64(5, "DSSE payload")  # type: ignore[arg-type]


def test_certificate_must_be_valid_at_every_verified_time() -> None:
    """A TSA time next to the SET's is a second claim of when it was signed: the short-lived leaf
    must cover it too (cosign, sigstore-python), or an old leaf could vouch for a late signature."""
    from datetime import timedelta

    from lockman.signatures._common import signer_result
    from tests.support.signing_helpers import T0

    priv, fulcio = new_key("p256"), FakeFulcio()
    leaf = fulcio.leaf(priv)
    policy = build_policy(
        certificate_identity="signer@lockman.test",
        certificate_oidc_issuer="https://issuer.lockman.test",
        trusted_root=fulcio.trusted_root(),
    )
    args = {"kind": "sigstore-bundle", "index": 0, "key": priv.public_key(), "leaf": leaf,
            "chain": (), "policy": policy, "signed_time": T0, "tlog": None}
    assert signer_result(**args, more_times=(T0 + timedelta(minutes=1),)).certificate_identity == "signer@lockman.test"
    with pytest.raises(VerificationError, match=r"^signing certificate \(.*\) not valid at 2025-03-01T13:00:00"):
        signer_result(**args, more_times=(T0 + timedelta(minutes=1), T0 + timedelta(hours=1)))


# ---------------------------------------------------------------- the parsed model


def test_bundle_parses_into_typed_objects_before_any_verification() -> None:
    from lockman.signatures.bundle import Bundle, DsseEnvelope, RefusedEntry, SigningCertificate

    bundle = Bundle.parse(real())
    assert bundle.version == (0, 3) and bundle.media_type.endswith("v0.3+json")
    assert isinstance(bundle.material.signer, SigningCertificate) and bundle.material.signer.intermediates == ()
    assert isinstance(bundle.content, DsseEnvelope) and bundle.content.payload_type == "application/vnd.in-toto+json"
    (entry,) = bundle.material.tlog_entries
    assert not isinstance(entry, RefusedEntry) and entry.kind == "dsse" and entry.signed_entry_timestamp
    assert Bundle.parse(json.loads(real())) == bundle
    assert verify_bundle(DIGEST, bundle, CODY) == verify_bundle(DIGEST, real(), CODY)


def test_message_signature_and_key_hint_parse() -> None:
    from lockman.signatures.bundle import Bundle, MessageSignature, PublicKeyHint

    doc = {
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "verificationMaterial": {"publicKey": {"hint": "k"}},
        "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": b64(b"d")}, "signature": "AA=="},
    }
    bundle = Bundle.parse(doc)
    assert bundle.material.signer == PublicKeyHint() and bundle.material.tlog_entries == ()
    assert bundle.content == MessageSignature(signature=b"\0", digest=b"d")
    doc["messageSignature"]["messageDigest"] = 3  # not an object: no digest claimed (as before)
    assert Bundle.parse(doc).content == MessageSignature(signature=b"\0", digest=None)


def test_a_tlog_entry_that_cannot_be_read_is_one_refused_candidate_not_a_malformed_bundle() -> None:
    """Parsing first must not turn an unusable entry into a refused bundle: the next entry may
    verify, and with ``ignore_tlog`` entries are never looked at (cosign's rule)."""
    from dataclasses import replace

    from lockman.signatures.bundle import Bundle, RefusedEntry

    priv, rekor, _, policy, _ = _fresh()
    bundle = make_bundle(priv, FRESH_DIGEST, rekor)
    junk_first = _edit(bundle, lambda d: d["verificationMaterial"]["tlogEntries"].insert(0, {"logIndex": "x"}))
    first = Bundle.parse(junk_first).material.tlog_entries[0]
    assert isinstance(first, RefusedEntry) and first.reason.startswith("malformed tlog entry")
    assert verify_bundle(FRESH_DIGEST, junk_first, policy).tlog is not None
    only_junk = _edit(bundle, lambda d: d["verificationMaterial"].update(tlogEntries=[1]))
    with pytest.raises(VerificationError, match=r"^tlog: malformed tlog entry"):
        verify_bundle(FRESH_DIGEST, only_junk, policy)
    assert verify_bundle(FRESH_DIGEST, only_junk, replace(policy, ignore_tlog=True)).tlog is None
