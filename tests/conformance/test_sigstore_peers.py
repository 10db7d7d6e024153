"""The reference verifiers' own test bundles (sigstore-python, sigstore-go), run through lockman.

Data and the way each peer test combines it are in testdata/sigstore-peers (``cases.json``, with
PROVENANCE.md): a bundle, the artifact (or its digest), the trusted root (for sigstore-python's
timestamp tests with its timestamp authorities replaced by ``tsa/ca.json``, as the test's
fixture does), the identity and the expected result.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from lockman.errors import InputError, VerificationError
from lockman.signatures import TrustedRoot, build_policy
from lockman.signatures.bundle import verify_bundle
from tests.support.paths import ROOT as REPO

HERE = REPO / "testdata" / "sigstore-peers"
CASES: list[dict[str, Any]] = json.loads((HERE / "cases.json").read_text())["cases"]


def _root(case: dict[str, Any]) -> TrustedRoot:
    doc = json.loads((HERE / case["trusted_root"]).read_text())
    if "timestamp_authorities" in case:
        doc["timestampAuthorities"] = [json.loads((HERE / case["timestamp_authorities"]).read_text())]
    return TrustedRoot.from_json(json.dumps(doc), source=case["trusted_root"])


def run_case(case: dict[str, Any]) -> None:
    """Verify one case the way the peer's test does; raise on rejection."""
    if "artifact" in case:
        digest = hashlib.sha256((HERE / case["artifact"]).read_bytes()).hexdigest()
    else:
        digest = case["artifact_sha256"]
    policy = build_policy(
        certificate_identity=case["identity"], certificate_oidc_issuer=case["issuer"], trusted_root=_root(case)
    )
    verify_bundle(f"sha256:{digest}", (HERE / case["bundle"]).read_bytes(), policy)


def test_the_table_is_read() -> None:
    assert len(CASES) >= 5 and {c["expect"] for c in CASES} == {"accept", "reject"}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_peer_case(case: dict[str, Any]) -> None:
    if case["expect"] == "reject":
        with pytest.raises((VerificationError, InputError)):
            run_case(case)
    else:
        run_case(case)
