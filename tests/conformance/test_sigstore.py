"""sigstore-conformance's bundle-verify cases, run through lockman's verification core.

The assets are vendored under testdata/sigstore-conformance (see its PROVENANCE.md). This is the
adapter the suite's ``client.py`` would be: artifact -> sha256 subject digest, ``key.pub`` ->
keyed policy, else keyless with the suite's identity/issuer, ``trusted_root.json`` -> trusted
root (else the shipped public-good root). A ``_fail`` case must raise; every other must verify.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lockman.errors import InputError, VerificationError
from lockman.signatures import TrustedRoot, build_policy, default_trusted_root, load_public_key_file
from lockman.signatures.bundle import verify_bundle
from tests.support.paths import ROOT as REPO

ROOT = REPO / "testdata" / "sigstore-conformance" / "bundle-verify"
IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ISSUER = "https://token.actions.githubusercontent.com"

LEFT_OUT: dict[str, str] = {}
"""Cases not run, with the reason (kept in the report and docs/signatures.md)."""

CASES = sorted(d.name for d in ROOT.iterdir() if d.is_dir())


def _text(case: Path, name: str, default: str) -> str:
    p = case / name
    return p.read_text().strip() if p.exists() else default


def run_case(case: Path) -> None:
    """Verify one case the way a conformance client would; raise on rejection."""
    artifact = case / "artifact" if (case / "artifact").exists() else ROOT / "a.txt"
    digest = "sha256:" + hashlib.sha256(artifact.read_bytes()).hexdigest()
    root = (
        TrustedRoot.from_file(case / "trusted_root.json")
        if (case / "trusted_root.json").exists()
        else default_trusted_root()
    )
    if (case / "key.pub").exists():
        policy = build_policy(key=load_public_key_file(case / "key.pub"), trusted_root=root)
    else:
        policy = build_policy(
            certificate_identity=_text(case, "identity", IDENTITY),
            certificate_oidc_issuer=_text(case, "issuer", ISSUER),
            trusted_root=root,
        )
    verify_bundle(digest, (case / "bundle.sigstore.json").read_bytes(), policy)


def test_every_case_is_run_or_listed() -> None:
    assert len(CASES) >= 60
    assert set(LEFT_OUT) <= set(CASES)


@pytest.mark.parametrize("name", [c for c in CASES if c not in LEFT_OUT])
def test_conformance_case(name: str) -> None:
    case = ROOT / name
    if name.endswith("_fail"):
        with pytest.raises((VerificationError, InputError)):
            run_case(case)
    else:
        run_case(case)
