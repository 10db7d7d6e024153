"""The signature-policy hook every pull passes through before content is handed on.

``lockman pull`` calls :func:`enforce_signature_policy` once per image after the manifests are
verified and before it writes an OCI layout entry or runs ``docker``/``podman pull``. Policy
lookup and cosign verification (lockman.signatures) are wired in here by the signatures work
(issue 6); until then no policy is configured and the hook accepts every image.
"""

from __future__ import annotations

from pathlib import Path

from lockman.manifest import Manifest
from lockman.reference import Reference
from lockman.registry.client import RegistryClient


async def enforce_signature_policy(
    client: RegistryClient, ref: Reference, manifest: Manifest, *, project_dir: Path
) -> None:
    """Raise :class:`lockman.errors.VerificationError` when ``ref``'s policy is not met.

    ``ref`` carries the locked digest; ``manifest`` is the verified manifest at that digest (an
    index or an image manifest); ``project_dir`` is where xcargo.toml (and lockman.toml) live.
    """
    del client, ref, manifest, project_dir  # no policy source yet: see the module docstring
