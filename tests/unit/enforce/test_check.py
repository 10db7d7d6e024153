"""Policy sourcing (flags vs lockman.toml) and the data form of signature verdicts."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lockman.enforce.check import DigestCheck, ImageSignatures, current_trusted_root, describe, load_policies
from lockman.enforce.options import SignatureOptions
from lockman.errors import InputError
from lockman.signatures import COSIGN_SIGN_PREDICATE, KeylessPolicy, SignatureResult
from lockman.signatures.policy import Exact
from lockman.signatures.rekor import TlogVerification
from lockman.signatures.trust import DEFAULT_TRUSTED_ROOT_DATE
from tests.support.cosign_registry import trusted_root_json
from tests.support.signing_helpers import TESTDATA, FakeRekor


def project(tmp_path: Path, policy: str | None) -> Path:
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text('[container]\nimage = "rust:1.70"\n')
    if policy is not None:
        shutil.copy(TESTDATA / "cosign.pub", tmp_path / "cosign.pub")
        (tmp_path / "lockman.toml").write_text(policy)
    return cfg


def test_no_file_no_flags_means_no_policy(tmp_path: Path) -> None:
    cfg = project(tmp_path, None)
    assert not SignatureOptions().wanted(cfg)
    assert load_policies(cfg, SignatureOptions()) is None


def test_file_rules_with_flag_overrides(tmp_path: Path) -> None:
    cfg = project(tmp_path, '[[policy]]\nimages = ["rust"]\nkey = "cosign.pub"\n')
    root = tmp_path / "root.json"
    root.write_bytes(trusted_root_json(FakeRekor()))
    plain = load_policies(cfg, SignatureOptions(tuf_offline=True))
    assert plain is not None
    p = plain.policy_for("rust:1.70")
    # offline: the TUF cache is empty, so the shipped public-good root
    assert p is not None and not p.ignore_tlog and p.root().source.startswith("public-good trusted root")
    assert plain.policy_for("debian:12") is None
    over = load_policies(cfg, SignatureOptions(trusted_root=root, insecure_ignore_tlog=True))
    assert over is not None
    q = over.policy_for("rust:1.70")
    assert q is not None and q.ignore_tlog and q.trusted_root is not None and q.key == p.key


def test_flag_signer_replaces_file_for_every_image(tmp_path: Path) -> None:
    cfg = project(tmp_path, '[[policy]]\nimages = ["rust"]\nkey = "cosign.pub"\n')
    opts = SignatureOptions(certificate_identity="a@b.c", certificate_oidc_issuer="https://i", tuf_offline=True)
    policies = load_policies(cfg, opts)
    assert policies is not None
    for name in ("rust:1.70", "ghcr.io/x/y:z"):
        p = policies.policy_for(name)
        assert isinstance(p, KeylessPolicy) and p.identity.subject == Exact("a@b.c")
    with pytest.raises(InputError, match="certificate-oidc-issuer"):
        load_policies(cfg, SignatureOptions(certificate_identity="a@b.c"))


def test_verdicts_as_data() -> None:
    ok = DigestCheck(
        "sha256:" + "1" * 64, result=SignatureResult("cosign-signature", 2, "key sha256:ab", "sha256:ab")
    )
    bad = DigestCheck("sha256:" + "2" * 64, "linux/arm64", reason="no signature matched")
    image = ImageSignatures("rust:1.70", "key sha256:ab", (ok, bad))
    d = image.as_dict()
    assert d["verified"] is False and d["policy"] == "key sha256:ab"
    assert d["checks"][0] == {
        "digest": ok.digest,
        "platform": None,
        "verified": True,
        "kind": "cosign-signature",
        "index": 2,
        "signer": "key sha256:ab",
        "key_fingerprint": "sha256:ab",
        "certificate_identity": None,
        "certificate_issuer": None,
        "tlog_log_index": None,
        "tlog_integrated_time": None,
        "timestamps": [],
        "predicate_type": None,
    }
    assert d["checks"][1]["reason"] == "no signature matched"
    assert image.lines() == [
        "rust:1.70: signed by key sha256:ab (.sig layer 2, transparency log not checked)"
    ]
    ((check, message),) = image.failures()
    assert check is bad and message.startswith(
        f"rust:1.70 (linux/arm64 {bad.digest}): signature check failed"
    )


def test_bad_trusted_root_is_bad_input_exit_2(tmp_path: Path, run) -> None:
    """A root whose log key has no validFor.start is refused before anything is fetched."""
    import json

    cfg = project(tmp_path, None)
    doc = json.loads(trusted_root_json(FakeRekor()))
    del doc["tlogs"][0]["publicKey"]["validFor"]["start"]
    root = tmp_path / "root.json"
    root.write_text(json.dumps(doc))
    r = run("verify", "--config", cfg, "--key", TESTDATA / "cosign.pub", "--trusted-root", root)
    assert r.code == 2
    assert r.err.strip() == f"error: {root}: tlogs[0].publicKey.validFor.start: missing (a trusted key or CA needs the time it became valid)"


@pytest.mark.parametrize(
    "flag",
    [
        {"trusted_root": Path("root.json")},
        {"predicate_type": "https://slsa.dev/provenance/v1"},
        {"certificate_github_workflow_trigger": "push"},
        {"insecure_ignore_tlog": True},
        {"insecure_ignore_sct": True},
        {"recursive": True},
    ],
)
def test_a_modifying_flag_without_any_signer_is_bad_input(tmp_path: Path, flag: dict[str, Any]) -> None:
    """Without lockman.toml, a flag that only modifies a policy has nothing to modify: silently
    checking nothing would read as "verified"."""
    cfg = project(tmp_path, None)
    if "trusted_root" in flag:
        flag = {"trusted_root": tmp_path / "root.json"}
        flag["trusted_root"].write_bytes(trusted_root_json(FakeRekor()))
    with pytest.raises(InputError) as e:
        load_policies(cfg, SignatureOptions(**flag))
    assert str(e.value).endswith(f"need a signer: --key, --certificate-identity(-regexp) with "
                                 f"--certificate-oidc-issuer(-regexp), or [[policy]] rules in {tmp_path / 'lockman.toml'}")


def test_unreadable_tuf_root_is_bad_input(tmp_path: Path) -> None:
    missing = tmp_path / "root.json"
    with pytest.raises(InputError) as e:
        current_trusted_root(SignatureOptions(tuf_root=missing, tuf_offline=True))
    assert str(e.value) == f"{missing}: cannot read TUF root (No such file or directory)"


def test_unreachable_tuf_repository_warns_once_and_uses_the_shipped_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LOCKMAN_TUF_OFFLINE", raising=False)
    bootstrap = tmp_path / "root.json"
    bootstrap.write_bytes(b"{}")
    root = current_trusted_root(SignatureOptions(tuf_url="http://127.0.0.1:9", tuf_root=bootstrap))
    assert root.source == f"public-good trusted root ({DEFAULT_TRUSTED_ROOT_DATE})"
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("warning: cannot refresh the Sigstore trusted root from http://127.0.0.1:9 (")
    assert line.endswith(f"using the shipped trusted root ({DEFAULT_TRUSTED_ROOT_DATE})")


def test_a_signed_trusted_root_that_does_not_parse_warns_and_uses_the_shipped_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """TUF vouches for the bytes, but they are no trusted root: said on stderr, not fatal.

    (A cached file TUF does not vouch for is never read at all: tests/unit/registry/test_trust_update.py.)
    """
    from tests.support.tuf_repo import TufRepo, serve

    repo = TufRepo(tmp_path / "repo")
    repo.add_target("trusted_root.json", b'{"mediaType": "not a trusted root"}')
    repo.publish_top()
    bootstrap = tmp_path / "root.json"
    bootstrap.write_bytes(repo.root_bytes())
    with serve(repo.dir) as url:
        root = current_trusted_root(SignatureOptions(tuf_url=url, tuf_root=bootstrap))
    assert root.source == f"public-good trusted root ({DEFAULT_TRUSTED_ROOT_DATE})"
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("warning: ") and "trusted root" in line
    assert line.endswith(f"; using the shipped trusted root ({DEFAULT_TRUSTED_ROOT_DATE})")


def tlog(set_verified: bool) -> TlogVerification:
    return TlogVerification(7, "c0d23d6a", 1_700_000_000, set_verified, not set_verified)


def test_integrated_time_is_reported_only_when_a_set_vouches_for_it() -> None:
    """An inclusion proof proves the entry is in the log, not when: its integratedTime is the
    log's unsigned word, so the report leaves it out."""
    with_set = SignatureResult("sigstore-bundle", 0, "key sha256:ab", "sha256:ab", tlog=tlog(True))
    proof_only = replace(with_set, tlog=tlog(False))
    d = DigestCheck("sha256:" + "1" * 64, result=with_set).as_dict()
    assert (d["tlog_log_index"], d["tlog_integrated_time"]) == (7, 1_700_000_000)
    d = DigestCheck("sha256:" + "1" * 64, result=proof_only).as_dict()
    assert (d["tlog_log_index"], d["tlog_integrated_time"]) == (7, None)
    assert describe(with_set) == "Sigstore bundle, Rekor log index 7"
    assert describe(proof_only) == "Sigstore bundle, Rekor log index 7 (inclusion proof)"


def test_describe_names_an_attestation_but_not_a_plain_bundle_signature() -> None:
    """A bundle's ``cosign sign`` predicate is a plain signature; any other is an attestation."""
    signed = SignatureResult("sigstore-bundle", 0, "key sha256:ab", "sha256:ab", predicate_type=COSIGN_SIGN_PREDICATE)
    assert describe(signed) == "Sigstore bundle, transparency log not checked"
    slsa = replace(signed, kind="cosign-attestation", index=1, predicate_type="https://slsa.dev/provenance/v1")
    assert describe(slsa) == (
        ".att layer 1, transparency log not checked, attestation https://slsa.dev/provenance/v1"
    )


def test_the_global_timeout_bounds_the_tuf_refresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A TUF repository that accepts and never answers: ``--timeout`` (here 0.3 s) gives up on it
    as on a registry, instead of the refresh's own 30 s default."""
    import concurrent.futures
    import socket

    from lockman.commands._common import signature_options

    monkeypatch.delenv("LOCKMAN_TUF_OFFLINE", raising=False)
    silent = socket.create_server(("127.0.0.1", 0))
    silent.listen(8)
    from tests.support.tuf_repo import TufRepo

    repo = TufRepo(tmp_path / "repo")
    repo.publish_top()
    bootstrap = tmp_path / "root.json"
    bootstrap.write_bytes(repo.root_bytes())  # a root that parses: the refresh reaches the network
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    options = signature_options(SignatureOptions(tuf_url=url, tuf_root=bootstrap), timeout=0.3)
    assert options.tuf_timeout == 0.3
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            root = pool.submit(current_trusted_root, options).result(timeout=15)
    finally:
        silent.close()
    assert root.source == f"public-good trusted root ({DEFAULT_TRUSTED_ROOT_DATE})"
    warning = capsys.readouterr().err
    assert warning.startswith(f"warning: cannot refresh the Sigstore trusted root from {url} (")
    assert "Timeout" in warning  # the silent repository, not a refusal of the bootstrap root
