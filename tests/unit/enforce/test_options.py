"""SignatureOptions: which flags name a signer, which only modify a policy, and when signatures
are wanted at all (a command that wrongly thinks they are not skips every check)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lockman.enforce.options import SignatureOptions, policy_path

SIGNERS: list[dict[str, Any]] = [
    {"key": Path("cosign.pub")},
    {"certificate_identity": "a@b.c"},
    {"certificate_identity_regexp": ".*@b.c"},
    {"certificate_oidc_issuer": "https://issuer"},
    {"certificate_oidc_issuer_regexp": "https://.*"},
]
MODIFIERS: list[dict[str, Any]] = [
    {"trusted_root": Path("root.json")},
    {"predicate_type": "https://slsa.dev/provenance/v1"},
    {"certificate_github_workflow_trigger": "push"},
    {"certificate_github_workflow_sha": "0" * 40},
    {"certificate_github_workflow_name": "release"},
    {"certificate_github_workflow_repository": "o/r"},
    {"certificate_github_workflow_ref": "refs/tags/v1"},
    {"insecure_ignore_tlog": True},
    {"insecure_ignore_sct": True},
    {"recursive": True},
]
NEITHER: list[dict[str, Any]] = [
    {},
    {"tuf_url": "https://tuf.example"},
    {"tuf_root": Path("tuf-root.json")},
    {"tuf_offline": True},
]


def config(tmp_path: Path, *, policy: bool) -> Path:
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text('[container]\nimage = "rust:1.70"\n')
    if policy:
        policy_path(cfg).write_text('[[policy]]\nimages = ["rust"]\nkey = "cosign.pub"\n')
    return cfg


@pytest.mark.parametrize("flag", SIGNERS)
def test_each_signer_flag_names_a_signer_and_modifies_nothing(flag: dict[str, Any]) -> None:
    options = SignatureOptions(**flag)
    assert options.has_signer and not options.modifies


@pytest.mark.parametrize("flag", MODIFIERS)
def test_each_modifying_flag_modifies_and_names_no_signer(flag: dict[str, Any]) -> None:
    options = SignatureOptions(**flag)
    assert options.modifies and not options.has_signer


@pytest.mark.parametrize("flag", NEITHER)
def test_where_the_root_comes_from_neither_names_a_signer_nor_modifies(flag: dict[str, Any]) -> None:
    options = SignatureOptions(**flag)
    assert not options.has_signer and not options.modifies


def test_github_workflow_keeps_only_the_constraints_given() -> None:
    options = SignatureOptions(certificate_github_workflow_trigger="push", certificate_github_workflow_ref="refs/heads/main")
    assert options.github_workflow == {"trigger": "push", "ref": "refs/heads/main"}
    assert SignatureOptions().github_workflow == {}


@pytest.mark.parametrize("flag", SIGNERS + MODIFIERS)
def test_any_signer_or_modifying_flag_wants_signatures_without_a_policy_file(tmp_path: Path, flag: dict[str, Any]) -> None:
    assert SignatureOptions(**flag).wanted(config(tmp_path, policy=False))


def test_a_policy_file_alone_wants_signatures(tmp_path: Path) -> None:
    assert SignatureOptions().wanted(config(tmp_path, policy=True))
    assert SignatureOptions(tuf_offline=True).wanted(config(tmp_path, policy=True))


@pytest.mark.parametrize("flag", NEITHER)
def test_no_flag_and_no_policy_file_wants_nothing(tmp_path: Path, flag: dict[str, Any]) -> None:
    assert not SignatureOptions(**flag).wanted(config(tmp_path, policy=False))


def test_the_policy_file_sits_next_to_xcargo_toml(tmp_path: Path) -> None:
    assert policy_path(tmp_path / "sub" / "xcargo.toml") == tmp_path / "sub" / "lockman.toml"
