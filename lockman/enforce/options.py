"""The signature flags of ``lockman verify`` / ``update``, named as ``cosign verify`` names them.

Plain data with no heavy imports, so ``cli.py`` can declare the flags without loading
cryptography; :mod:`lockman.enforce.check` turns them into policies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

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
    """Sigstore trusted_root.json (one root, or JSON lines of several) instead of the public-good one."""
    insecure_ignore_tlog: bool = False
    """Do not require a transparency-log (Rekor) entry; with --key no trusted root is then read or fetched."""
    insecure_ignore_sct: bool = False
    """Do not require an embedded SCT in Fulcio certificates."""
    predicate_type: Annotated[str | None, Parameter(name=["--predicate-type", "--type"])] = None
    """Require an in-toto attestation of this predicate type: a URI or a cosign --type shorthand."""
    certificate_github_workflow_trigger: str | None = None
    """Keyless: the GitHub event that triggered the signing workflow (e.g. "push")."""
    certificate_github_workflow_sha: str | None = None
    """Keyless: the commit the signing workflow ran at."""
    certificate_github_workflow_name: str | None = None
    """Keyless: the signing workflow's name."""
    certificate_github_workflow_repository: str | None = None
    """Keyless: the repository ("owner/name") the signing workflow ran in."""
    certificate_github_workflow_ref: str | None = None
    """Keyless: the git ref the signing workflow ran at (e.g. "refs/tags/v1.2.0")."""
    tuf_url: str | None = None
    """TUF repository of the Sigstore trusted root, asked only if a check needs it; env LOCKMAN_TUF_URL."""
    tuf_root: Path | None = None
    """Starting root.json of a TUF repository other than Sigstore's (e.g. GitHub's); env LOCKMAN_TUF_ROOT."""
    tuf_offline: bool = False
    """Never fetch the trusted root over TUF: use the cached, else shipped one; env LOCKMAN_TUF_OFFLINE=1."""
    tuf_timeout: Annotated[float | None, Parameter(parse=False)] = None
    """Seconds per read of the TUF refresh: the global ``--timeout`` (set by the command, no flag)."""
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
    def github_workflow(self) -> dict[str, str]:
        """The ``--certificate-github-workflow-*`` constraints given, by short name."""
        fields = {
            "trigger": self.certificate_github_workflow_trigger,
            "sha": self.certificate_github_workflow_sha,
            "name": self.certificate_github_workflow_name,
            "repository": self.certificate_github_workflow_repository,
            "ref": self.certificate_github_workflow_ref,
        }
        return {k: v for k, v in fields.items() if v is not None}

    @property
    def modifies(self) -> bool:
        """True when a flag changes how policies are checked (root, tlog, SCT, recursion)."""
        return bool(
            self.trusted_root is not None
            or self.predicate_type is not None
            or bool(self.github_workflow)
            or self.insecure_ignore_tlog
            or self.insecure_ignore_sct
            or self.recursive
        )

    def wanted(self, config_path: Path) -> bool:
        """True when signatures are to be checked at all: a flag, or a lockman.toml exists.

        Lets commands skip importing the verifier (and cryptography) for unsigned projects.
        """
        return self.has_signer or self.modifies or policy_path(config_path).is_file()
