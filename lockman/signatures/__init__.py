"""Pure cosign / Sigstore signature verification: fixed inputs in, a verdict out.

No network. May import ``lockman.errors``, ``lockman.safejson``, the pure
``lockman.model.reference`` (image names, for policy globs), the pure ``lockman.model.digest``
and its own modules; nothing else:
the registry layer fetches the ``.sig`` manifest layers or the bundle, this package decides. One
primitive per module (keys, trust, rekor, fulcio); ``cosign`` (``.sig``), ``attestation``
(``.att``) and ``bundle`` compose them; ``policy`` says what must be proven. Failures raise
``lockman.errors.VerificationError`` (untrusted content) or ``InputError`` (bad key, trusted root
or policy file).
"""

from lockman.signatures.attestation import DSSE_MEDIA_TYPE, attestation_tag, verify_attestations
from lockman.signatures.bundle import COSIGN_SIGN_PREDICATE, verify_bundle
from lockman.signatures.cosign import (
    SIMPLE_SIGNING_MEDIA_TYPE,
    SignatureLayer,
    signature_tag,
    verify_signatures,
)
from lockman.signatures.keys import key_fingerprint, load_public_key, load_public_key_file
from lockman.signatures.policy import (
    Identity,
    KeylessPolicy,
    KeyPolicy,
    Policy,
    PolicySet,
    build_policy,
    load_policy_file,
)
from lockman.signatures.result import SignatureResult
from lockman.signatures.trust import TrustedRoot, default_trusted_root

__all__ = [
    "COSIGN_SIGN_PREDICATE",
    "DSSE_MEDIA_TYPE",
    "SIMPLE_SIGNING_MEDIA_TYPE",
    "Identity",
    "KeyPolicy",
    "KeylessPolicy",
    "Policy",
    "PolicySet",
    "SignatureLayer",
    "SignatureResult",
    "TrustedRoot",
    "attestation_tag",
    "build_policy",
    "default_trusted_root",
    "key_fingerprint",
    "load_policy_file",
    "load_public_key",
    "load_public_key_file",
    "signature_tag",
    "verify_attestations",
    "verify_bundle",
    "verify_signatures",
]
