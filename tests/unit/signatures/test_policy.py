"""Policy construction rules and the lockman.toml ``[[policy]]`` loader."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lockman.errors import InputError, VerificationError
from lockman.signatures.keys import key_fingerprint, load_public_key_file
from lockman.signatures.policy import (
    Exact,
    GithubWorkflow,
    KeylessPolicy,
    KeyPolicy,
    build_policy,
    load_policy_file,
    policy_for,
)
from tests.support.paths import ROOT as REPO
from tests.support.signing_helpers import TESTDATA

KEY = load_public_key_file(TESTDATA / "cosign.pub")


def test_policy_modes() -> None:
    assert build_policy(key=KEY) == KeyPolicy(key=KEY)
    p = build_policy(certificate_identity="a@b.c", certificate_oidc_issuer_regexp="https://.*")
    assert isinstance(p, KeylessPolicy) and p.describe() == "identity a@b.c issued by ~https://.*"
    assert build_policy(key=KEY).describe() == f"key {key_fingerprint(KEY)}"


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
        build_policy(**kwargs)


# ---------------------------------------------------------------- identities a policy must refuse

ISSUER = "https://issuer.lockman.test"


def _leaf(identity: str = "signer@lockman.test", **kw: object):
    from tests.support.signing_helpers import FakeFulcio, new_key

    return FakeFulcio().leaf(new_key("p256"), identity=identity, with_sct=False, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("policy", "refusal"),
    [
        ({"certificate_identity": "other@lockman.test"}, r"identity 'signer@lockman.test' does not match 'other@"),
        ({"certificate_identity_regexp": r"other@.*"}, r"does not match regexp 'other@\.\*'"),
        ({"certificate_identity_regexp": r"signer@lockman"}, r"does not match regexp"),  # anchored: whole SAN
        ({"certificate_oidc_issuer": "https://evil.test"}, r"issuer 'https://issuer.lockman.test' != expected"),
        ({"certificate_oidc_issuer_regexp": r"https://evil\..*"}, r"issuer .* does not match 'https://evil"),
        ({"certificate_oidc_issuer_regexp": r"https://issuer"}, r"issuer .* does not match"),  # anchored
    ],
)
def test_certificate_outside_the_policy_refused(policy: dict, refusal: str) -> None:
    args = {"certificate_identity": "signer@lockman.test", "certificate_oidc_issuer": ISSUER, **policy}
    if "certificate_identity_regexp" in policy:
        del args["certificate_identity"]
    if "certificate_oidc_issuer_regexp" in policy:
        del args["certificate_oidc_issuer"]
    with pytest.raises(VerificationError, match=refusal):
        build_policy(**args).match_identity(_leaf())


def test_both_identity_constraints_must_hold() -> None:
    both = build_policy(
        certificate_identity="signer@lockman.test",
        certificate_identity_regexp=r".*@lockman\.test",
        certificate_oidc_issuer_regexp=r"https://issuer\.lockman\.test",
    )
    assert both.match_identity(_leaf()) == ("signer@lockman.test", ISSUER)
    with pytest.raises(VerificationError, match=r"does not match 'signer@lockman.test'"):
        both.match_identity(_leaf("signer@lockman.test.evil"))
    strict = build_policy(
        certificate_identity="signer@lockman.test",
        certificate_identity_regexp=r"nobody@.*",
        certificate_oidc_issuer=ISSUER,
    )
    with pytest.raises(VerificationError, match=r"does not match"):
        strict.match_identity(_leaf())


def test_certificate_without_issuer_extension_refused() -> None:
    policy = build_policy(certificate_identity="signer@lockman.test", certificate_oidc_issuer_regexp=".*")
    with pytest.raises(VerificationError, match=r"^certificate has no OIDC issuer extension$"):
        policy.match_identity(_leaf(omit=("issuer_v1", "issuer_v2")))


def test_invalid_issuer_regexp_refused() -> None:
    with pytest.raises(InputError, match=r"certificate-oidc-issuer-regexp: invalid regular expression '\['"):
        build_policy(certificate_identity="a@b.c", certificate_oidc_issuer_regexp="[")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"certificate_oidc_issuer": "https://x"},
        {"certificate_identity_regexp": ".*"},
        {"key": KEY, "certificate_oidc_issuer": "https://x"},
        {"key": KEY, "certificate_identity_regexp": ".*"},
    ],
)
def test_half_a_keyless_policy_or_key_plus_identity_refused(kwargs: dict) -> None:
    with pytest.raises(InputError, match=r"needs both|not both"):
        build_policy(**kwargs)


def test_policy_only_for_matching_images(tmp_path: Path) -> None:
    path = write(tmp_path, '[[policy]]\nimages = ["ghcr.io/acme/*"]\nkey = "cosign.pub"\n')
    policies = load_policy_file(path)
    assert policy_for(policies, "ghcr.io/acme/app:1") is not None
    assert policy_for(policies, "docker.io/library/rust:1") is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("policy = [1]\n", r"#1: must be a table"),
        ('policy = "x"\n', r"policy must be an array of tables"),
        ('[[policy]]\nimages = "ghcr.io/*"\nkey = "cosign.pub"\n', r"#1: images must be a non-empty list"),
        ('[[policy]]\nimages = ["ghcr.io/*", ""]\nkey = "cosign.pub"\n', r"#1: images must be a non-empty list"),
        ('[[policy]]\nimages = ["ghcr.io/*", 3]\nkey = "cosign.pub"\n', r"#1: images must be a non-empty list"),
        ('[[policy]]\nimages = ["*"]\nkey = ""\n', r"#1: key must be a non-empty string"),
        ('[[policy]]\nimages = ["*"]\nkey = "nokey.pub"\n', r"#1: key: .*nokey.pub: not a PEM public key"),
        (
            '[[policy]]\nimages = ["*"]\nkey = "cosign.pub"\ntrusted-root = "cosign.pub"\n',
            r"#1: trusted-root: .*not valid JSON",
        ),
        (
            '[[policy]]\nimages = ["*"]\nkey = "cosign.pub"\ncertificate-identity = "a@b.c"\n',
            r"#1: give either a key or certificate identity/issuer, not both$",
        ),
    ],
)
def test_more_bad_policy_files(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "nokey.pub").write_text("not a key")
    with pytest.raises(InputError, match=message):
        load_policy_file(write(tmp_path, body))


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
    assert isinstance(special, KeylessPolicy) and special.ignore_sct and not special.ignore_tlog
    other = policies.policy_for("ghcr.io/cross-rs/aarch64-unknown-linux-gnu:main")
    assert isinstance(other, KeyPolicy) and other.ignore_tlog
    assert key_fingerprint(other.key) == key_fingerprint(KEY)
    assert policy_for(policies, "docker.io/library/alpine@sha256:" + "a" * 64) is other
    assert policies.policy_for("docker.io/library/alpine-extra") is None
    assert policies.policy_for("quay.io/x/y") is None


def test_policy_file_trusted_root_relative(tmp_path: Path) -> None:
    shutil.copy(
        REPO / "lockman/signatures/data/trusted_root.json",
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
        ("alpine:latest", "alpine:Latest", False),  # no host to fold: tags stay exact
        ("myhost/*", "MyHost/app", True),  # an upper-case first component is a host (docker's rule)
    ],
)
def test_policy_glob_host_case_and_brackets(pattern: str, name: str, matches: bool) -> None:
    from lockman.signatures.policy import PolicyRule

    rule = PolicyRule((pattern,), build_policy(key=load_public_key_file(TESTDATA / "cosign.pub")))
    assert rule.matches(name) is matches


# ---------------------------------------------------------------- attestations and GitHub workflows

GH = "https://token.actions.githubusercontent.com"


def test_predicate_type_shorthands_and_uris() -> None:
    p = build_policy(key=KEY, predicate_type="slsaprovenance1")
    assert p.predicate_type == "https://slsa.dev/provenance/v1"
    assert p.describe().endswith(", attestation https://slsa.dev/provenance/v1")
    assert build_policy(key=KEY, predicate_type="https://example.test/p/v1").predicate_type == "https://example.test/p/v1"
    with pytest.raises(InputError, match=r"predicate type 'slsa' is neither a URI nor one of"):
        build_policy(key=KEY, predicate_type="slsa")


def test_workflow_constraints_need_keyless_and_known_names() -> None:
    with pytest.raises(InputError, match=r"needs keyless verification"):
        build_policy(key=KEY, github_workflow=(("repository", "o/r"),))
    with pytest.raises(InputError, match=r"unknown certificate-github-workflow-branch"):
        build_policy(certificate_identity="a", certificate_oidc_issuer=GH, github_workflow=(("branch", "main"),))


def _workflow_leaf(extensions: tuple[tuple[str, bytes], ...]):
    from tests.support.signing_helpers import FakeFulcio, new_key

    return FakeFulcio().leaf(new_key("p256"), identity="https://github.com/o/r/w@x", issuer=GH, extensions=extensions)


def test_workflow_claims_matched_in_both_encodings() -> None:
    from lockman.errors import VerificationError
    from tests.support.signing_helpers import _der_utf8

    policy = build_policy(
        certificate_identity="https://github.com/o/r/w@x",
        certificate_oidc_issuer=GH,
        github_workflow=(("trigger", "push"), ("repository", "o/r"), ("ref", "refs/tags/v1")),
    )
    old = (("1.3.6.1.4.1.57264.1.2", b"push"), ("1.3.6.1.4.1.57264.1.5", b"o/r"), ("1.3.6.1.4.1.57264.1.6", b"refs/tags/v1"))
    assert policy.match_identity(_workflow_leaf(old)) == ("https://github.com/o/r/w@x", GH)
    # newer DER UTF8String forms (.1.20 trigger, .1.14 ref) are read when the old ones are absent
    newer = (("1.3.6.1.4.1.57264.1.20", _der_utf8("push")), old[1], ("1.3.6.1.4.1.57264.1.14", _der_utf8("refs/tags/v1")))
    assert policy.match_identity(_workflow_leaf(newer))[0] == "https://github.com/o/r/w@x"
    same = (*old, ("1.3.6.1.4.1.57264.1.20", _der_utf8("push")))  # both encodings, agreeing
    assert policy.match_identity(_workflow_leaf(same))[0] == "https://github.com/o/r/w@x"
    with pytest.raises(VerificationError, match=r"^certificate GitHub workflow repository 'e/r' != expected 'o/r'$"):
        policy.match_identity(_workflow_leaf((old[0], ("1.3.6.1.4.1.57264.1.5", b"e/r"), old[2])))
    with pytest.raises(VerificationError, match=r"^certificate GitHub workflow trigger absent != expected 'push'$"):
        policy.match_identity(_workflow_leaf(old[1:]))
    with pytest.raises(VerificationError, match=r"GitHub workflow trigger extensions disagree"):
        policy.match_identity(_workflow_leaf((*old, ("1.3.6.1.4.1.57264.1.20", _der_utf8("pull_request")))))


def test_policy_file_attestation_and_workflow_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[policy]]\nimages = ["*"]\ncertificate-identity = "a"\ncertificate-oidc-issuer = "https://i"\n'
        'type = "slsaprovenance1"\ncertificate-github-workflow-repository = "o/r"\n',
    )
    p = policy_for(load_policy_file(path), "x")
    assert p is not None and p.predicate_type == "https://slsa.dev/provenance/v1"
    assert isinstance(p, KeylessPolicy) and p.github_workflow == GithubWorkflow(repository="o/r")
    both = write(tmp_path, '[[policy]]\nimages = ["*"]\nkey = "cosign.pub"\ntype = "spdx"\npredicate-type = "https://x"\n')
    with pytest.raises(InputError, match=r"#1: give type or predicate-type, not both"):
        load_policy_file(both)
    bad = write(tmp_path, '[[policy]]\nimages = ["*"]\nkey = "cosign.pub"\ncertificate-github-workflow-sha = 1\n')
    with pytest.raises(InputError, match=r"#1: certificate-github-workflow-sha must be a non-empty string"):
        load_policy_file(bad)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("type = 1", r"#1: type must be a non-empty string$"),
        ('type = ""', r"#1: type must be a non-empty string$"),
        ('certificate-github-workflow-sha = ""', r"#1: certificate-github-workflow-sha must be a non-empty string$"),
    ],
)
def test_policy_file_bad_attestation_values(tmp_path: Path, line: str, message: str) -> None:
    head = '[[policy]]\nimages = ["*"]\ncertificate-identity = "a"\ncertificate-oidc-issuer = "https://i"\n'
    with pytest.raises(InputError, match=message):
        load_policy_file(write(tmp_path, head + line + "\n"))


def test_identity_regexp_alone_matches() -> None:
    policy = build_policy(certificate_identity_regexp=r"https://github\.com/o/.*", certificate_oidc_issuer=GH)
    assert policy.match_identity(_workflow_leaf(()))[0] == "https://github.com/o/r/w@x"


# ---------------------------------------------------------------- Docker Hub spellings (issue 23)

# One image, every way docker accepts to write it.
_RUST_SPELLINGS = [
    "rust:1.70",
    "library/rust:1.70",
    "docker.io/rust:1.70",
    "docker.io/library/rust:1.70",
    "index.docker.io/rust:1.70",
    "index.docker.io/library/rust:1.70",
    "registry-1.docker.io/library/rust:1.70",
    "Docker.IO/library/rust:1.70",
    "rust:1.70@sha256:" + "a" * 64,
]
# Every way to write a rule that covers it.
_RUST_RULES = [
    "docker.io/library/*",
    "docker.io/library/rust",
    "docker.io/library/rust:*",
    "docker.io/library/rust:1.70",
    "index.docker.io/library/*",
    "registry-1.docker.io/library/rust",
    "docker.io/rust",
    "docker.io/*",
    "rust",
    "rust:1.70",
    "rust*",
    "library/rust",
    "library/*",
    "*",
]


@pytest.mark.parametrize("name", _RUST_SPELLINGS)
@pytest.mark.parametrize("pattern", _RUST_RULES)
def test_every_spelling_is_matched_by_every_way_of_writing_the_rule(pattern: str, name: str) -> None:
    from lockman.signatures.policy import PolicyRule

    rule = PolicyRule((pattern,), build_policy(key=load_public_key_file(TESTDATA / "cosign.pub")))
    assert rule.matches(name), f"{pattern!r} does not cover {name!r}"


@pytest.mark.parametrize(
    ("pattern", "name"),
    [
        ("docker.io/library/*", "ghcr.io/library/rust:1.70"),
        ("docker.io/library/*", "docker.io/someorg/rust:1.70"),
        ("docker.io/library/*", "someorg/rust:1.70"),
        ("rust", "rustc:1.70"),
        ("rust", "docker.io/library/rust-nightly:1"),
        ("rust", "ghcr.io/rust:1"),
        ("rust:1.70", "rust:1.71"),
        ("library/rust", "quay.io/library/rust:1"),
        ("docker.io/*", "ghcr.io/x/y:1"),
        ("ghcr.io/acme/*", "docker.io/acme/app:1"),
        ("index.docker.io/library/*", "index.example/library/rust:1"),
    ],
)
def test_normalising_names_covers_no_other_image(pattern: str, name: str) -> None:
    from lockman.signatures.policy import PolicyRule

    rule = PolicyRule((pattern,), build_policy(key=load_public_key_file(TESTDATA / "cosign.pub")))
    assert not rule.matches(name)


def test_first_matching_rule_wins_whatever_the_spelling(tmp_path: Path) -> None:
    """``rust`` spelled out in full still gets the rule for ``rust``, not a later catch-all."""
    (tmp_path / "other.pub").write_bytes((TESTDATA / "cosign.pub").read_bytes())
    path = write(
        tmp_path,
        '[[policy]]\nimages = ["rust"]\nkey = "cosign.pub"\n'
        '[[policy]]\nimages = ["*"]\ncertificate-identity = "a@b.c"\ncertificate-oidc-issuer = "https://i"\n',
    )
    policies = load_policy_file(path)
    for name in ("index.docker.io/library/rust:1.70", "docker.io/rust", "rust@sha256:" + "b" * 64):
        p = policies.policy_for(name)
        assert isinstance(p, KeyPolicy), name
    p = policies.policy_for("ghcr.io/x/rust:1")
    assert isinstance(p, KeylessPolicy) and p.identity.subject == Exact("a@b.c")


# ---------------------------------------------------------------- the typed model: key | keyless


def test_a_key_policy_cannot_hold_an_identity_nor_a_keyless_one_lack_it() -> None:
    """The combinations load time used to refuse cannot even be built (sigstore-python's policies
    are objects one composes, not a bag of optional fields)."""
    from lockman.signatures.policy import Identity, Regexp

    identity = Identity(Exact("a@b.c"), Regexp.compile(r"https://.*", "issuer"))
    with pytest.raises(TypeError):
        KeyPolicy(key=KEY, identity=identity)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        KeylessPolicy()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        GithubWorkflow(branch="main")  # type: ignore[call-arg]
    built = KeylessPolicy(identity=identity, ignore_sct=True)
    assert built == build_policy(certificate_identity="a@b.c", certificate_oidc_issuer_regexp=r"https://.*", ignore_sct=True)
    with pytest.raises(InputError, match=r"^x: invalid regular expression '\('"):
        Regexp.compile("(", "x")


def test_exact_and_regexp_together_describe_the_exact_value() -> None:
    from lockman.signatures.policy import ExactAndRegexp

    p = build_policy(
        certificate_identity="a@b.c",
        certificate_identity_regexp=r".*@b\.c",
        certificate_oidc_issuer="https://i",
        certificate_oidc_issuer_regexp=r"https://.*",
    )
    assert isinstance(p, KeylessPolicy) and isinstance(p.identity.subject, ExactAndRegexp)
    assert p.describe() == "identity a@b.c issued by https://i"
    with pytest.raises(VerificationError, match=r"^certificate issuer 'https://issuer.lockman.test' != expected"):
        p.match_identity(_leaf())
    regexp_after_exact = build_policy(
        certificate_identity="signer@lockman.test",
        certificate_oidc_issuer=ISSUER,
        certificate_oidc_issuer_regexp=r"https://evil\..*",
    )
    with pytest.raises(VerificationError, match=r"^certificate issuer .* does not match 'https://evil"):
        regexp_after_exact.match_identity(_leaf())


def test_describe_names_workflow_claims_then_attestation() -> None:
    p = build_policy(
        certificate_identity_regexp=r".*",
        certificate_oidc_issuer="https://i",
        predicate_type="slsaprovenance1",
        github_workflow=(("ref", "refs/tags/v1"), ("trigger", "push")),
    )
    assert p.describe() == (
        "identity ~.* issued by https://i, workflow trigger push, workflow ref refs/tags/v1, "
        "attestation https://slsa.dev/provenance/v1"
    )
    keyed = build_policy(key=KEY, predicate_type="spdx")
    assert keyed.describe() == f"key {key_fingerprint(KEY)}, attestation https://spdx.dev/Document"


def test_override_puts_the_command_line_modifiers_on_a_file_policy() -> None:
    from lockman.signatures.policy import override
    from lockman.signatures.trust import TrustedRoot

    keyed = build_policy(key=KEY, ignore_tlog=True, ignore_sct=True)
    assert override(keyed) == keyed  # nothing given: nothing changes, nothing is switched back on
    root = TrustedRoot()
    over = override(keyed, trusted_root=root, predicate_type="spdx")
    assert over == KeyPolicy(
        key=KEY, trusted_root=root, ignore_tlog=True, ignore_sct=True, predicate_type="https://spdx.dev/Document"
    )
    plain = build_policy(certificate_identity="a", certificate_oidc_issuer="https://i")
    over = override(plain, ignore_tlog=True, ignore_sct=True, github_workflow=(("sha", "0" * 40),))
    assert isinstance(over, KeylessPolicy) and over.ignore_tlog and over.ignore_sct
    assert over.github_workflow == GithubWorkflow(sha="0" * 40) and over.identity == plain.identity
    with pytest.raises(InputError, match=r"^policy: certificate-github-workflow-\* needs keyless verification, not a key$"):
        override(keyed, github_workflow=(("sha", "0" * 40),))
    with pytest.raises(InputError, match=r"unknown certificate-github-workflow-branch"):
        override(plain, github_workflow=(("branch", "main"),))


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        # A rule naming a digest covers the image pinned by tag and digest, however it is spelled.
        ("docker.io/library/rust@sha256:*", f"rust:1.70@sha256:{'a' * 64}", True),
        # A wildcard in the first component may stand for the Hub host: tried against the
        # normalised name as written, not as a Hub namespace.
        ("docker*/app", "app:1", True),
        ("?????????/library/app", "app:1", True),
        ("?????????/library/app", "ghcr.io/library/app:1", False),
        # Other hosts are matched as written (their names normalise to themselves).
        ("ghcr.io/acme/*", "GHCR.IO/acme/app:1", True),
        ("localhost:5000/*", "localhost:5000/app", True),
        ("myhost/*", "docker.io/myhost/app", True),  # a lower-case first component is a Hub namespace
        # A pattern without a slash is a Hub repository, even one named like the Hub's host.
        ("docker.io", "index.docker.io/library/docker.io:1", True),
    ],
)
def test_policy_glob_normalised_forms(pattern: str, name: str, matches: bool) -> None:
    from lockman.signatures.policy import PolicyRule

    rule = PolicyRule((pattern,), build_policy(key=load_public_key_file(TESTDATA / "cosign.pub")))
    assert rule.matches(name) is matches
