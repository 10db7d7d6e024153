"""lockman.enforce without a registry: the gate pull passes through, and the verdict logic of check.

The registry and the cryptography are scripted at check's seams (``fetch_bundles``,
``fetch_signature_layers``, ``verify_*``, ``check_digest``, a client serving index manifests),
so each test says exactly which verdict lockman must reach; the real thing is covered by
tests/integration/commands/test_verify_signatures.py and test_pull.py against docker-registry. Each test exists to notice a
removed check (scripts/mutate.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from lockman.enforce import check
from lockman.enforce.check import DigestCheck, ImageSignatures, SignatureTarget
from lockman.enforce.gate import SignatureGate
from lockman.errors import EXIT_REGISTRY, EXIT_VERIFY, RegistryError, VerificationError
from lockman.model.reference import parse
from lockman.signatures import Policy, PolicySet, SignatureResult, build_policy
from lockman.signatures.keys import load_public_key_file
from lockman.signatures.policy import PolicyRule
from tests.support.signing_helpers import TESTDATA

D1, D2, IDX = "sha256:" + "1" * 64, "sha256:" + "2" * 64, "sha256:" + "9" * 64
REF = parse("reg.example/team/app")
OK = SignatureResult("cosign-signature", 0, "key sha256:ab", "sha256:ab")


def key_policy(**kw: Any) -> Policy:
    return build_policy(key=load_public_key_file(TESTDATA / "cosign.pub"), ignore_tlog=True, **kw)


def policies(pattern: str = "reg.example/*", **kw: Any) -> PolicySet:
    return PolicySet((PolicyRule((pattern,), key_policy(**kw)),))


def script_digests(monkeypatch: pytest.MonkeyPatch, verdicts: dict[str, object]) -> list[str]:
    """check_digest answers from ``verdicts``: a SignatureResult, or an exception to raise."""
    asked: list[str] = []

    async def fake(client: object, ref: object, digest: str, policy: Policy) -> SignatureResult:
        asked.append(digest)
        v = verdicts[digest]
        if isinstance(v, BaseException):
            raise v
        assert isinstance(v, SignatureResult)
        return v

    monkeypatch.setattr(check, "check_digest", fake)
    return asked


class Manifest:
    def __init__(self, children: list[tuple[str, str]]) -> None:
        self.manifests = [check.Descriptor(media_type=m, digest=d, size=1) for d, m in children]


class IndexClient:
    """Serves index manifests by digest, as a registry would after hashing them."""

    def __init__(self, indexes: dict[str, list[tuple[str, str]]]) -> None:
        self.indexes = indexes

    async def get_manifest(self, ref: Any) -> Manifest:
        return Manifest(self.indexes[ref.digest])


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


# -- the gate ------------------------------------------------------------------------------------


def test_gate_refuses_a_failed_signature_and_prints_a_passed_one(monkeypatch, capsys) -> None:
    """pull must stop on a failed check: exit 1 for a bad signature, 3 when the registry failed."""
    from lockman.model.lockfile import LockedImage

    entry = LockedImage(name="reg.example/team/app", tag="1", digest=D1)
    gate = SignatureGate(policies())
    script_digests(monkeypatch, {D1: OK})
    asyncio.run(gate.check(None, REF, entry))  # type: ignore[arg-type]
    assert "reg.example/team/app:1: signed by key sha256:ab" in capsys.readouterr().out
    script_digests(monkeypatch, {D1: VerificationError("no signature matched")})
    with pytest.raises(VerificationError, match=r"signature check failed .*no signature matched"):
        asyncio.run(gate.check(None, REF, entry))  # type: ignore[arg-type]
    script_digests(monkeypatch, {D1: RegistryError("reg.example: cannot connect")})
    with pytest.raises(RegistryError, match="cannot connect") as e:
        asyncio.run(gate.check(None, REF, entry))  # type: ignore[arg-type]
    assert not isinstance(e.value, VerificationError)
    assert SignatureGate().policies is None  # no policy: nothing checked, nothing asked
    asyncio.run(SignatureGate().check(None, REF, entry))  # type: ignore[arg-type]


# -- check_all and platform pins -------------------------------------------------------------------


def test_check_all_skips_uncovered_images_and_checks_platforms_only_when_recursive(monkeypatch) -> None:
    asked = script_digests(monkeypatch, {D1: OK, D2: VerificationError("unsigned platform")})
    covered = SignatureTarget(REF, "reg.example/team/app:1", D1, (("linux/arm64", D2),))
    other = SignatureTarget(parse("ghcr.io/x/y"), "ghcr.io/x/y:1", "sha256:" + "3" * 64)
    (v,) = asyncio.run(check.check_all(None, [covered, other], policies()))  # type: ignore[arg-type]
    assert v.ok and asked == [D1]
    (v,) = asyncio.run(check.check_all(None, [covered, other], policies(), recursive=True))  # type: ignore[arg-type]
    assert not v.ok and [c.digest for c in v.checks] == [D1, D2]
    ((c, message),) = v.failures()
    assert c.digest == D2 and message.endswith("signature check failed (" + v.policy + "): unsigned platform")


def pin(digest: str = D2) -> SignatureTarget:
    return SignatureTarget(REF, "reg.example/team/app:1", digest, index_digest=IDX, platform="linux/arm64")


def test_platform_pin_trusted_through_its_signed_index_only_if_listed(monkeypatch) -> None:
    script_digests(monkeypatch, {IDX: OK, D2: VerificationError("platform itself unsigned")})
    listed = IndexClient({IDX: [(D2, OCI_MANIFEST)]})
    (v,) = asyncio.run(check.check_all(listed, [pin()], policies()))  # type: ignore[arg-type]
    assert v.ok and [c.digest for c in v.checks] == [IDX]
    # The signed index does not list the pinned digest: neither path holds.
    unlisted = IndexClient({IDX: [(D1, OCI_MANIFEST)]})
    (v,) = asyncio.run(check.check_all(unlisted, [pin()], policies()))  # type: ignore[arg-type]
    assert not v.ok
    ((c, message),) = v.failures()
    assert f"{D2} is not a platform of index {IDX}" in message and "platform itself unsigned" in message
    assert c.exit_code == EXIT_VERIFY


def test_platform_pin_in_a_nested_index(monkeypatch) -> None:
    nested = "sha256:" + "8" * 64
    script_digests(monkeypatch, {IDX: OK, D2: VerificationError("unsigned")})
    client = IndexClient({IDX: [(D1, OCI_MANIFEST), (nested, OCI_INDEX)], nested: [(D2, OCI_MANIFEST)]})
    (v,) = asyncio.run(check.check_all(client, [pin()], policies()))  # type: ignore[arg-type]
    assert v.ok
    # A manifest (not an index) that happens to be listed is not searched as one.
    client = IndexClient({IDX: [(nested, OCI_MANIFEST)], nested: [(D2, OCI_MANIFEST)]})
    (v,) = asyncio.run(check.check_all(client, [pin()], policies()))  # type: ignore[arg-type]
    assert not v.ok


def test_platform_pin_own_signature_or_both_when_recursive(monkeypatch) -> None:
    listed = IndexClient({IDX: [(D2, OCI_MANIFEST)]})
    script_digests(monkeypatch, {IDX: VerificationError("index unsigned"), D2: OK})
    (v,) = asyncio.run(check.check_all(listed, [pin()], policies()))  # type: ignore[arg-type]
    # The platform's own verdict as it is: a passed check carries no failure reason.
    assert v.ok and v.checks == (DigestCheck(D2, "linux/arm64", result=OK),)
    (v,) = asyncio.run(check.check_all(listed, [pin()], policies(), recursive=True))  # type: ignore[arg-type]
    assert not v.ok and [c.ok for c in v.checks] == [False, True]
    # Neither: the worse exit code wins only if both are registry failures.
    script_digests(monkeypatch, {IDX: RegistryError("down"), D2: VerificationError("unsigned")})
    (v,) = asyncio.run(check.check_all(listed, [pin()], policies()))  # type: ignore[arg-type]
    assert not v.ok and v.checks[0].exit_code == EXIT_VERIFY
    script_digests(monkeypatch, {IDX: RegistryError("down"), D2: RegistryError("down too")})
    (v,) = asyncio.run(check.check_all(listed, [pin()], policies()))  # type: ignore[arg-type]
    assert v.checks[0].exit_code == EXIT_REGISTRY


# -- check_digest: which signatures count --------------------------------------------------------


def script_fetch(monkeypatch, bundles: list[tuple[str, bytes]], layers: list[object] | None) -> None:
    async def fetch_bundles(client: object, ref: object, digest: str) -> list[tuple[str, bytes]]:
        return bundles

    async def fetch_layers(client: object, ref: object, digest: str, *, attestations: bool) -> object:
        return layers

    monkeypatch.setattr(check, "fetch_bundles", fetch_bundles)
    monkeypatch.setattr(check, "fetch_signature_layers", fetch_layers)


def fails(*_: object, **__: object) -> SignatureResult:
    raise VerificationError("does not verify")


def test_attestation_policy_never_falls_back_to_a_plain_signature(monkeypatch) -> None:
    """An attestation policy is met by an attestation only: a valid ``.sig`` must not satisfy it."""
    script_fetch(monkeypatch, [], [object()])
    monkeypatch.setattr(check, "verify_attestations", fails)
    monkeypatch.setattr(check, "verify_signatures", lambda *a, **k: OK)
    policy = key_policy(predicate_type="https://slsa.dev/provenance/v1")
    with pytest.raises(VerificationError, match=r"\.att: does not verify"):
        asyncio.run(check.check_digest(None, REF, D1, policy))  # type: ignore[arg-type]
    # No .att at all: said so, and still refused.
    script_fetch(monkeypatch, [], None)
    with pytest.raises(VerificationError, match=r"no .*\.att attestations and no Sigstore bundle \(attestation"):
        asyncio.run(check.check_digest(None, REF, D1, policy))  # type: ignore[arg-type]


def test_signature_policy_refuses_when_nothing_verifies(monkeypatch) -> None:
    script_fetch(monkeypatch, [("sha256:" + "b" * 64, b"{}")], [object()])
    monkeypatch.setattr(check, "verify_bundle", fails)
    monkeypatch.setattr(check, "verify_signatures", fails)
    with pytest.raises(VerificationError, match=r"bundle sha256:bbbbbbbbbbbb: does not verify; .*\.sig: does not"):
        asyncio.run(check.check_digest(None, REF, D1, key_policy()))  # type: ignore[arg-type]
    script_fetch(monkeypatch, [], None)
    with pytest.raises(VerificationError, match=r"no .*\.sig signatures and no Sigstore bundle"):
        asyncio.run(check.check_digest(None, REF, D1, key_policy()))  # type: ignore[arg-type]
    monkeypatch.setattr(check, "verify_signatures", lambda *a, **k: OK)
    script_fetch(monkeypatch, [], [object()])
    assert asyncio.run(check.check_digest(None, REF, D1, key_policy())) is OK  # type: ignore[arg-type]


def test_verdict_ok_only_with_a_result() -> None:
    assert DigestCheck(D1, result=OK).ok and not DigestCheck(D1, reason="x").ok
    assert ImageSignatures("a", "p", (DigestCheck(D1, result=OK),)).ok
    assert not ImageSignatures("a", "p", (DigestCheck(D1, result=OK), DigestCheck(D2, reason="x"))).ok


def test_gate_open_loads_policies_only_when_wanted(tmp_path: Path) -> None:
    from lockman.enforce.options import SignatureOptions

    cfg = tmp_path / "xcargo.toml"
    cfg.write_text('[container]\nimage = "rust:1.70"\n')
    assert SignatureGate.open(cfg, SignatureOptions()).policies is None
    (tmp_path / "cosign.pub").write_bytes((TESTDATA / "cosign.pub").read_bytes())
    (tmp_path / "lockman.toml").write_text('[[policy]]\nimages = ["rust"]\nkey = "cosign.pub"\n')
    gate = SignatureGate.open(cfg, SignatureOptions(recursive=True))
    assert gate.policies is not None and gate.recursive
