"""Policy sourcing (flags vs lockman.toml) and the data form of signature verdicts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lockman.enforce.check import DigestCheck, ImageSignatures, load_policies
from lockman.enforce.options import SignatureOptions
from lockman.errors import InputError
from lockman.signatures import SignatureResult
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
    plain = load_policies(cfg, SignatureOptions())
    assert plain is not None
    p = plain.policy_for("rust:1.70")
    # offline (as every test is): the TUF cache is empty, so the shipped public-good root
    assert p is not None and not p.ignore_tlog and p.root().source.startswith("public-good trusted root")
    assert plain.policy_for("debian:12") is None
    over = load_policies(cfg, SignatureOptions(trusted_root=root, insecure_ignore_tlog=True))
    assert over is not None
    q = over.policy_for("rust:1.70")
    assert q is not None and q.ignore_tlog and q.trusted_root is not None and q.key == p.key


def test_flag_signer_replaces_file_for_every_image(tmp_path: Path) -> None:
    cfg = project(tmp_path, '[[policy]]\nimages = ["rust"]\nkey = "cosign.pub"\n')
    opts = SignatureOptions(certificate_identity="a@b.c", certificate_oidc_issuer="https://i")
    policies = load_policies(cfg, opts)
    assert policies is not None
    for name in ("rust:1.70", "ghcr.io/x/y:z"):
        p = policies.policy_for(name)
        assert p is not None and p.keyless and p.certificate_identity == "a@b.c"
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
