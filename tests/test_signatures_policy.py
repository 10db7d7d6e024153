"""Policy construction rules and the lockman.toml ``[[policy]]`` loader."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lockman.errors import InputError
from lockman.signatures.keys import key_fingerprint, load_public_key_file
from lockman.signatures.policy import Policy, load_policy_file, policy_for
from tests.signing_helpers import TESTDATA

KEY = load_public_key_file(TESTDATA / "cosign.pub")


def test_policy_modes() -> None:
    assert not Policy(key=KEY).keyless
    p = Policy(certificate_identity="a@b.c", certificate_oidc_issuer_regexp="https://.*")
    assert p.keyless and p.describe() == "identity a@b.c issued by ~https://.*"
    assert Policy(key=KEY).describe() == f"key {key_fingerprint(KEY)}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs both certificate-identity"),
        ({"certificate_identity": "a@b.c"}, "needs both"),
        ({"certificate_oidc_issuer": "https://x"}, "needs both"),
        ({"key": KEY, "certificate_identity": "a@b.c"}, "not both"),
        (
            {"certificate_identity_regexp": "(", "certificate_oidc_issuer": "https://x"},
            "invalid regular expression",
        ),
    ],
)
def test_invalid_policies(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Policy(**kwargs)


def write(tmp_path: Path, text: str) -> Path:
    shutil.copy(TESTDATA / "cosign.pub", tmp_path / "cosign.pub")
    path = tmp_path / "lockman.toml"
    path.write_text(text)
    return path


def test_policy_file_first_match_wins(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[project]
name = "ignored: other tables belong to other layers"

[[policy]]
images = ["ghcr.io/cross-rs/special"]
certificate-identity-regexp = "https://github.com/cross-rs/.*"
certificate-oidc-issuer = "https://token.actions.githubusercontent.com"
insecure-ignore-sct = true

[[policy]]
images = ["ghcr.io/cross-rs/*", "docker.io/library/alpine"]
key = "cosign.pub"
insecure-ignore-tlog = true
""",
    )
    policies = load_policy_file(path)
    special = policies.policy_for("ghcr.io/cross-rs/special:1.0")
    assert special is not None and special.keyless and special.ignore_sct and not special.ignore_tlog
    other = policies.policy_for("ghcr.io/cross-rs/aarch64-unknown-linux-gnu:main")
    assert other is not None and other.key is not None and other.ignore_tlog
    assert key_fingerprint(other.key) == key_fingerprint(KEY)
    assert policy_for(policies, "docker.io/library/alpine@sha256:" + "a" * 64) is other
    assert policies.policy_for("docker.io/library/alpine-extra") is None
    assert policies.policy_for("quay.io/x/y") is None


def test_policy_file_trusted_root_relative(tmp_path: Path) -> None:
    shutil.copy(
        Path(__file__).resolve().parent.parent / "lockman/signatures/data/trusted_root.json",
        tmp_path / "root.json",
    )
    path = write(
        tmp_path,
        '[[policy]]\nimages = ["*"]\nkey = "cosign.pub"\ntrusted-root = "root.json"\n',
    )
    policy = load_policy_file(path).policy_for("anything")
    assert policy is not None and policy.trusted_root is not None
    assert policy.root().source.endswith("root.json")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[[policy]]\nimages = ["*"]\nkey = "missing.pub"\n',
            r"\[\[policy\]\] #1: key: .*missing\.pub: cannot read",
        ),
        ('[[policy]]\nimages = []\nkey = "cosign.pub"\n', "#1: images must be a non-empty list"),
        ('[[policy]]\nkey = "cosign.pub"\n', "#1: images must be"),
        ('[[policy]]\nimages = ["*"]\nkeys = "cosign.pub"\n', "#1: unknown key 'keys'"),
        (
            '[[policy]]\nimages = ["*"]\nkey = "cosign.pub"\ninsecure-ignore-tlog = "yes"\n',
            "insecure-ignore-tlog must be true or false",
        ),
        (
            '[[policy]]\nimages = ["*"]\ncertificate-identity = "a@b.c"\n',
            "#1: keyless verification needs both",
        ),
        (
            '[[policy]]\nimages = ["*"]\nkey = "cosign.pub"\ntrusted-root = "nope.json"\n',
            "#1: trusted-root: .*cannot read",
        ),
        ("policy = 3\n", "policy must be an array of tables"),
        ("[[policy]\n", "invalid TOML"),
        (
            '[[policy]]\nimages = ["*"]\nkey = "cosign.pub"\n[[policy]]\nimages = ["x"]\nkey = 1\n',
            "#2: key must be a non-empty string",
        ),
    ],
)
def test_bad_policy_file_names_file_table_and_key(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(InputError, match=message) as exc:
        load_policy_file(path)
    assert str(exc.value).startswith(str(path))


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot read policy file"):
        load_policy_file(tmp_path / "lockman.toml")


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("[::1]:5000/*", "[::1]:5000/team/app:v1", True),
        ("[::1]:5000/*", "1:5000/team/app:v1", False),  # not a character class
        ("localhost:5000/*", "LOCALHOST:5000/team/app:v1", True),
        ("Registry.Example/team/*", "registry.example/team/app", True),
        ("registry.example/team/*", "registry.example/TEAM/app", False),  # paths stay exact
        ("ghcr.io/acme/?pp", "ghcr.io/acme/app:1", True),
    ],
)
def test_policy_glob_host_case_and_brackets(pattern: str, name: str, matches: bool) -> None:
    from lockman.signatures.policy import PolicyRule

    rule = PolicyRule((pattern,), Policy(key=load_public_key_file(TESTDATA / "cosign.pub")))
    assert rule.matches(name) is matches
