"""The signature-policy gate every pull passes through before content is handed on.

``lockman pull`` opens the gate once per run (:meth:`SignatureGate.open`: the signer flags, else
lockman.toml next to xcargo.toml, else nothing to check) and calls :meth:`SignatureGate.check`
per image after its manifests are verified and before it writes an OCI layout entry or runs
``docker``/``podman pull``. The verdicts come from lockman.enforce.check, as for ``verify``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lockman.console import out
from lockman.enforce.options import SignatureOptions
from lockman.errors import EXIT_VERIFY, RegistryError, VerificationError
from lockman.model.lockfile import LockedImage
from lockman.model.reference import Reference
from lockman.registry.client import RegistryClient

if TYPE_CHECKING:
    from lockman.signatures import PolicySet


@dataclass(frozen=True)
class SignatureGate:
    policies: PolicySet | None = None
    recursive: bool = False

    @classmethod
    def open(cls, config_path: Path, options: SignatureOptions) -> SignatureGate:
        """Load the policies in force (bad keys or policy files: InputError, before any network)."""
        if not options.wanted(config_path):
            return cls()
        from lockman.enforce.check import load_policies

        return cls(load_policies(config_path, options), options.recursive)

    async def check(self, client: RegistryClient, ref: Reference, entry: LockedImage) -> None:
        """Raise unless the locked ``entry`` meets its policy (no rule: nothing to do).

        Its locked platform digests are checked too with ``--recursive``; a platform pin is
        trusted through its signed index (see :func:`lockman.enforce.check.check_platform_pin`).
        """
        if self.policies is None:
            return
        from lockman.enforce.check import SignatureTarget, check_all

        target = SignatureTarget.for_entry(ref, entry)
        for verdict in await check_all(client, [target], self.policies, recursive=self.recursive):
            for line in verdict.lines():
                out(line)
            failures = verdict.failures()
            if failures:
                check, message = failures[0]
                if check.exit_code == EXIT_VERIFY:
                    raise VerificationError(message)
                raise RegistryError(message)
