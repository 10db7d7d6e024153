"""The signature flags of ``lockman verify`` / ``update``, named as ``cosign verify`` names them.

Plain data with no heavy imports, so ``cli.py`` can declare the flags without loading
cryptography; :mod:`lockman.enforce.check` turns them into policies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

POLICY_FILE = "lockman.toml"
"""Project signature policy, next to xcargo.toml (xcargo rejects unknown tables in its own file)."""


def policy_path(config_path: Path) -> Path:
    """Where the project's lockman.toml is, for the given xcargo.toml."""
    return config_path.with_name(POLICY_FILE)


@dataclass(frozen=True)
class SignatureOptions:
    """Signature policy from the command line; when a key or identity is given it applies to
    every image and replaces lockman.toml's rules."""

    key: Path | None = None
    """PEM public key (ECDSA P-256/P-384, RSA, Ed25519) the signatures must verify with."""
    certificate_identity: str | None = None
    """Keyless: the signer's identity (certificate SAN), exactly."""
    certificate_identity_regexp: str | None = None
    """Keyless: a regular expression the whole identity must match."""
    certificate_oidc_issuer: str | None = None
    """Keyless: the OIDC issuer of the signer's certificate, exactly."""
    certificate_oidc_issuer_regexp: str | None = None
    """Keyless: a regular expression the whole OIDC issuer must match."""
    trusted_root: Path | None = None
    """Sigstore trusted_root.json to use instead of the shipped public-good root."""
    insecure_ignore_tlog: bool = False
    """Do not require a transparency-log (Rekor) entry for signatures."""
    insecure_ignore_sct: bool = False
    """Do not require an embedded SCT in Fulcio certificates."""
    recursive: bool = False
    """For multi-platform images, also require every locked platform's manifest to be signed."""

    @property
    def has_signer(self) -> bool:
        """True when the flags name who must have signed (a key or a keyless identity/issuer)."""
        return any(
            v is not None
            for v in (
                self.key,
                self.certificate_identity,
                self.certificate_identity_regexp,
                self.certificate_oidc_issuer,
                self.certificate_oidc_issuer_regexp,
            )
        )

    @property
    def modifies(self) -> bool:
        """True when a flag changes how policies are checked (root, tlog, SCT, recursion)."""
        return bool(
            self.trusted_root is not None
            or self.insecure_ignore_tlog
            or self.insecure_ignore_sct
            or self.recursive
        )

    def wanted(self, config_path: Path) -> bool:
        """True when signatures are to be checked at all: a flag, or a lockman.toml exists.

        Lets commands skip importing the verifier (and cryptography) for unsigned projects.
        """
        return self.has_signer or self.modifies or policy_path(config_path).is_file()
