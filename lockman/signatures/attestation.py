"""Classic cosign attestations: the layers of the ``sha256-<hex>.att`` manifest.

``cosign attest`` without ``--new-bundle-format`` stores each attestation as one layer of an OCI
manifest at tag ``sha256-<hex>.att``: the blob is a DSSE envelope (media type
``application/vnd.dsse.envelope.v1+json``) around an in-toto statement, and the descriptor's
annotations carry the Rekor SET (``dev.sigstore.cosign/bundle``, an ``intoto`` 0.0.2 entry, or
0.0.1 from older cosign) and, keyless, the Fulcio certificate and chain. The signature
annotation is present but empty: the signature lives in the envelope. Each layer is tried on
its own and at least one must pass:

1. the DSSE signature over PAE(payloadType, payload), by the policy key or the layer's leaf;
2. the statement's subject has the image digest, and its predicate type is one asked for;
3. unless ``ignore_tlog``: a SET from a trusted Rekor whose entry records this envelope
   (0.0.2: its payload, type and signatures; 0.0.1: the envelope's sha256) and this signer;
4. keyless: chain, SCT and identity at the SET's integrated time (as for ``.sig`` layers).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from lockman import safejson
from lockman.errors import VerificationError
from lockman.signatures._common import check_image_digest, signer_result
from lockman.signatures.bundle import IN_TOTO_PAYLOAD_TYPE, _statement_subject_matches, pae
from lockman.signatures.cosign import SignatureLayer, layer_log_entry, layer_signer
from lockman.signatures.keys import decode_b64, key_fingerprint, signature_valid
from lockman.signatures.policy import Policy
from lockman.signatures.rekor import (
    TlogVerification,
    _body,
    check_intoto_body,
    check_intoto_v001_body,
)
from lockman.signatures.result import SignatureResult

DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"


def attestation_tag(digest: str) -> str:
    """The tag cosign stores attestations under: ``sha256:abc…`` -> ``sha256-abc….att``."""
    check_image_digest(digest)
    return digest.replace(":", "-", 1) + ".att"


def parse_envelope(blob: bytes) -> tuple[str, bytes, list[bytes]]:
    """``(payloadType, payload, signatures)`` of a DSSE envelope blob."""
    try:
        env = safejson.loads(blob)
        payload_type = env["payloadType"]
        payload = decode_b64(env["payload"], "DSSE payload")
        signatures = [decode_b64(s["sig"], "DSSE signature") for s in env["signatures"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise VerificationError(f"layer is not a DSSE envelope ({exc!r})") from exc
    if not isinstance(payload_type, str):
        raise VerificationError("DSSE payloadType is not a string")
    if not signatures:
        raise VerificationError("DSSE envelope has no signatures")
    return payload_type, payload, signatures


def verify_attestation_layer(
    image_digest: str,
    layer: SignatureLayer,
    policy: Policy,
    predicate_types: Collection[str] | None = None,
    index: int = 0,
) -> SignatureResult:
    """Verify one ``.att`` layer against the policy; VerificationError says why not.

    ``predicate_types``: accept only statements of one of these types; None accepts any (the
    caller then decides, e.g. "is it an SBOM").
    """
    check_image_digest(image_digest)
    if layer.media_type != DSSE_MEDIA_TYPE:
        raise VerificationError(f"media type {layer.media_type} is not a DSSE envelope")
    payload_type, payload, signatures = parse_envelope(layer.payload)
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise VerificationError(f"DSSE payload type {payload_type!r} is not in-toto")

    key, leaf, chain = layer_signer(layer.annotations, policy)
    signed = pae(payload_type, payload)
    if not any(signature_valid(key, s, signed) for s in signatures):
        raise VerificationError(f"DSSE signature does not verify with key {key_fingerprint(key)}")

    predicate_type = _statement_subject_matches(payload, image_digest)
    if predicate_types is not None and predicate_type not in predicate_types:
        raise VerificationError(f"predicate type {predicate_type!r} is not one of {sorted(predicate_types)}")

    tlog: TlogVerification | None = None
    signed_time = None
    if not policy.ignore_tlog:
        entry, tlog = layer_log_entry(layer.annotations, policy)
        body = _body(entry)
        if (body.get("kind"), body.get("apiVersion")) == ("intoto", "0.0.1"):
            check_intoto_v001_body(entry, envelope=layer.payload, payload=payload, key=key, cert=leaf)
        else:
            check_intoto_body(
                entry, payload_type=payload_type, payload=payload, signatures=signatures, key=key, cert=leaf
            )
        signed_time = entry.integrated_datetime

    return signer_result(
        kind="cosign-attestation",
        index=index,
        key=key,
        leaf=leaf,
        chain=chain,
        policy=policy,
        signed_time=signed_time,
        tlog=tlog,
        predicate_type=predicate_type,
    )


def verify_attestations(
    image_digest: str,
    layers: Sequence[SignatureLayer],
    policy: Policy,
    predicate_types: Collection[str] | None = None,
) -> SignatureResult:
    """Return the first DSSE layer that passes; otherwise say why each failed.

    Layers of other media types are ignored, as cosign ignores them.
    """
    check_image_digest(image_digest)
    reasons = []
    for i, layer in enumerate(layers):
        if layer.media_type != DSSE_MEDIA_TYPE:
            continue
        try:
            return verify_attestation_layer(image_digest, layer, policy, predicate_types, index=i)
        except VerificationError as exc:
            reasons.append(f"layer {i}: {exc}")
    if not reasons:
        raise VerificationError(f"no cosign attestation for {image_digest}: no {DSSE_MEDIA_TYPE} layers")
    raise VerificationError("no attestation matched: " + "; ".join(reasons))
