"""Tag-based cosign signatures: the layers of the ``sha256-<hex>.sig`` manifest.

The registry layer fetches that manifest and hands us each layer's media type, blob (the
payload) and descriptor annotations; we decide. Each simple-signing layer is tried on its own
and at least one must pass every check the policy asks for:

1. the signature (annotation ``dev.cosignproject.cosign/signature``) over the exact payload
   bytes, by the policy key or by the Fulcio certificate in the layer;
2. the payload's ``critical.image.docker-manifest-digest`` equals the image digest;
3. unless ``ignore_tlog``: a Rekor SET (``dev.sigstore.cosign/bundle``) from a trusted log whose
   ``hashedrekord`` body records this signature, signer and payload hash;
4. keyless: chain to a trusted Fulcio CA at the SET's time, codeSigning, SCT (unless
   ``ignore_sct``), identity and issuer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography import x509

from lockman import safejson
from lockman.errors import VerificationError
from lockman.signatures._common import check_image_digest, leaf_key, signer_result
from lockman.signatures.fulcio import load_certificate, load_certificates
from lockman.signatures.keys import PublicKey, decode_b64, verify_signature
from lockman.signatures.policy import KeyPolicy, Policy
from lockman.signatures.rekor import (
    LogEntry,
    TlogVerification,
    check_hashedrekord_body,
    parse_cosign_bundle,
    verify_entry,
)
from lockman.signatures.result import SignatureResult

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
ANNOTATION_SIGNATURE = "dev.cosignproject.cosign/signature"
ANNOTATION_CERTIFICATE = "dev.sigstore.cosign/certificate"
ANNOTATION_CHAIN = "dev.sigstore.cosign/chain"
ANNOTATION_BUNDLE = "dev.sigstore.cosign/bundle"
SIMPLE_SIGNING_TYPE = "cosign container image signature"


def signature_tag(digest: str) -> str:
    """The tag cosign stores signatures under: ``sha256:abc…`` -> ``sha256-abc….sig``."""
    check_image_digest(digest)
    return digest.replace(":", "-", 1) + ".sig"


@dataclass(frozen=True)
class SignatureLayer:
    """One layer of the ``.sig`` manifest: media type, blob bytes, descriptor annotations."""

    media_type: str
    payload: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)


def payload_digest(payload: bytes) -> str:
    """The ``docker-manifest-digest`` a simple-signing payload claims."""
    try:
        doc = safejson.loads(payload)
        critical = doc["critical"]
        claimed = critical["image"]["docker-manifest-digest"]
        kind = critical["type"]
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"payload is not a cosign simple-signing document ({exc!r})") from exc
    if kind != SIMPLE_SIGNING_TYPE:
        raise VerificationError(f"payload type {kind!r} is not {SIMPLE_SIGNING_TYPE!r}")
    if not isinstance(claimed, str):
        raise VerificationError("payload docker-manifest-digest is not a string")
    return claimed


def _leaf(annotations: Mapping[str, str]) -> tuple[x509.Certificate, list[x509.Certificate]]:
    pem = annotations.get(ANNOTATION_CERTIFICATE)
    if not pem:
        raise VerificationError("no certificate annotation (keyless policy needs a Fulcio cert)")
    leaf = load_certificate(pem, "certificate annotation")
    chain = load_certificates(annotations.get(ANNOTATION_CHAIN, ""), "chain annotation")
    return leaf, chain


def layer_signer(
    annotations: Mapping[str, str], policy: Policy
) -> tuple[PublicKey, x509.Certificate | None, list[x509.Certificate]]:
    """Who must have signed a ``.sig`` or ``.att`` layer: the policy's key, else its Fulcio leaf."""
    if isinstance(policy, KeyPolicy):
        return policy.key, None, []
    leaf, chain = _leaf(annotations)
    return leaf_key(leaf), leaf, chain


def layer_log_entry(annotations: Mapping[str, str], policy: Policy) -> tuple[LogEntry, TlogVerification]:
    """The layer's Rekor bundle annotation, its SET verified: offline proof that it was logged."""
    bundle = annotations.get(ANNOTATION_BUNDLE)
    if not bundle:
        raise VerificationError(
            "no Rekor bundle annotation (transparency log required; "
            "offline verification needs the SET, or insecure-ignore-tlog)"
        )
    entry = parse_cosign_bundle(bundle)  # refuses an annotation without a SET: verify_entry checks it
    return entry, verify_entry(entry, policy.root())


def verify_layer(image_digest: str, layer: SignatureLayer, policy: Policy, index: int = 0) -> SignatureResult:
    """Verify one simple-signing layer against the policy; VerificationError says why not."""
    check_image_digest(image_digest)
    if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE:
        raise VerificationError(f"media type {layer.media_type} is not a cosign signature")
    sig_b64 = layer.annotations.get(ANNOTATION_SIGNATURE)
    if not sig_b64:
        raise VerificationError("no signature annotation")
    signature = decode_b64(sig_b64, "signature annotation")

    key, leaf, chain = layer_signer(layer.annotations, policy)
    verify_signature(key, signature, layer.payload)

    claimed = payload_digest(layer.payload)
    if claimed != image_digest:
        raise VerificationError(f"payload digest {claimed} != {image_digest}")

    tlog: TlogVerification | None = None
    signed_time = None
    if not policy.ignore_tlog:
        entry, tlog = layer_log_entry(layer.annotations, policy)
        check_hashedrekord_body(entry, signature=signature, payload=layer.payload, key=key, cert=leaf)
        signed_time = entry.integrated_datetime

    return signer_result(
        kind="cosign-signature",
        index=index,
        key=key,
        leaf=leaf,
        chain=chain,
        policy=policy,
        signed_time=signed_time,
        tlog=tlog,
    )


def verify_signatures(image_digest: str, layers: Sequence[SignatureLayer], policy: Policy) -> SignatureResult:
    """Return the first simple-signing layer that passes; otherwise say why each failed.

    Layers of other media types are ignored (cosign attaches other things to ``.sig`` tags too).
    """
    check_image_digest(image_digest)
    reasons = []
    for i, layer in enumerate(layers):
        if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE:
            continue
        try:
            return verify_layer(image_digest, layer, policy, index=i)
        except VerificationError as exc:
            reasons.append(f"layer {i}: {exc}")
    if not reasons:
        raise VerificationError(
            f"no cosign signature for {image_digest}: no {SIMPLE_SIGNING_MEDIA_TYPE} layers"
        )
    raise VerificationError("no signature matched: " + "; ".join(reasons))
