"""Reference grammar cases, many from distribution/reference's own tests."""

from __future__ import annotations

import pytest

from lockman.errors import InvalidReference
from lockman.model.reference import is_digest, parse, validate_digest

D256 = "sha256:" + "a" * 64
D512 = "sha512:" + "b" * 128


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("rust", "docker.io", "library/rust", "latest", None),
        ("rust:1.70", "docker.io", "library/rust", "1.70", None),
        ("library/rust:1.70-slim", "docker.io", "library/rust", "1.70-slim", None),
        ("docker.io/rust", "docker.io", "library/rust", "latest", None),
        ("index.docker.io/library/rust:1", "docker.io", "library/rust", "1", None),
        ("rustlang/rust:nightly", "docker.io", "rustlang/rust", "nightly", None),
        (
            "ghcr.io/cross-rs/aarch64-unknown-linux-gnu:0.2.5",
            "ghcr.io",
            "cross-rs/aarch64-unknown-linux-gnu",
            "0.2.5",
            None,
        ),
        ("localhost/foo", "localhost", "foo", "latest", None),
        ("localhost:5000/foo/bar:v1", "localhost:5000", "foo/bar", "v1", None),
        ("127.0.0.1:5000/a_b/c__d/e-f/g--h:t", "127.0.0.1:5000", "a_b/c__d/e-f/g--h", "t", None),
        ("[::1]:5000/foo:bar", "[::1]:5000", "foo", "bar", None),
        (f"rust@{D256}", "docker.io", "library/rust", None, D256),
        (f"rust:1.70@{D256}", "docker.io", "library/rust", "1.70", D256),
        (f"example.com/x@{D512}", "example.com", "x", None, D512),
        ("foo.com:8080/x", "foo.com:8080", "x", "latest", None),
        ("a" * 10 + ":" + "T" * 128, "docker.io", "library/" + "a" * 10, "T" * 128, None),
        ("Uppercase.io/x", "uppercase.io", "x", "latest", None),
        ("LOCALHOST:5000/team/app", "localhost:5000", "team/app", "latest", None),
        ("Docker.IO/rust", "docker.io", "library/rust", "latest", None),
        ("[::AB]:5000/x", "[::ab]:5000", "x", "latest", None),
    ],
)
def test_valid(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert parse(str(ref)) == parse(str(ref))  # canonical form re-parses
    assert str(parse(str(ref))) == str(ref)


def test_written_name_kept() -> None:
    assert parse("rust:1.70").written == "rust"
    assert parse(f"ghcr.io/a/b:c@{D256}").written == "ghcr.io/a/b"
    assert parse("rust").familiar() == "rust:latest"


def test_api_host() -> None:
    assert parse("rust").api_host == "registry-1.docker.io"
    assert parse("ghcr.io/x/y").api_host == "ghcr.io"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("Rust:1", "lowercase"),
        ("rust:", "not a valid tag"),
        ("rust:-x", "not a valid tag"),
        ("rust:" + "a" * 129, "longer than 128"),
        ("rust@sha256:abc", "64 lowercase hex"),
        ("rust@sha256:" + "A" * 64, "64 lowercase hex"),
        ("rust@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("rust@sha512:" + "a" * 64, "128 lowercase hex"),
        ("rust@", "invalid"),
        ("a//b", "invalid repository"),
        ("-foo", "invalid repository"),
        ("foo-", "invalid repository"),
        ("foo/", "invalid repository"),
        ("rust 1", "whitespace"),
        (" rust", "whitespace"),
        ("a@b@c", "more than one"),
        (":tag", "missing repository"),
        ("a" * 256, "longer than 255"),
        ("ex_ample.com/x", "invalid registry host"),
        ("foo/a___b", "invalid repository"),
    ],
)
def test_invalid(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReference) as exc:
        parse(text)
    assert fragment in str(exc.value)
    assert repr(text)[1:-1][:20] in str(exc.value)  # names the reference


def test_validate_digest() -> None:
    assert validate_digest(D256) == D256
    with pytest.raises(InvalidReference, match="unsupported"):
        validate_digest("sha1:" + "a" * 40)


def test_reference_longer_than_any_valid_one_is_refused_up_front() -> None:
    """The host has no length limit of its own: only the overall cap refuses a kilobyte-long one."""
    host = ("a" * 60 + ".") * 21 + "com"
    assert parse(("a" * 60 + ".") * 19 + "com/foo:bar").repository == "foo"  # long, yet under the cap
    with pytest.raises(InvalidReference, match=r": longer than any valid reference$"):
        parse(f"{host}/foo:bar")


def test_name_length_is_checked_on_the_qualified_repository() -> None:
    """distribution/reference limits the path after qualification: ``a``*250 is ``library/a…`` (258)."""
    with pytest.raises(InvalidReference, match="longer than 255"):
        parse("a" * 250)
    with pytest.raises(InvalidReference, match="longer than 255"):
        parse("docker.io/" + "a" * 250)  # the fully qualified spelling fails the same way
    assert parse("library/" + "a" * 247).repository == "library/" + "a" * 247
    assert parse("example.com/" + "a" * 255).registry == "example.com"  # the host does not count


def test_image_ids_are_not_names() -> None:
    with pytest.raises(InvalidReference, match="image ID or bare digest"):
        parse("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a")
    assert parse("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3").name.endswith("c1b3")
    with pytest.raises(InvalidReference, match="bare digest"):
        parse("sha256:" + "a" * 64)  # not Docker Hub's library/sha256 with a tag
    assert parse("a" * 70).repository == "library/" + "a" * 70  # only exactly 64 hex is an image ID


# ---------------------------------------------------------------- forged names and digests: each check's refusal


@pytest.mark.parametrize(
    "value",
    [
        "sha256:../../../../etc/passwd",  # is_digest guards cache paths: no traversal
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha256:" + "A" * 64,
        "sha256:" + "g" * 64,
        "sha256" + "a" * 64,
        "md5:" + "a" * 32,
        "",
    ],
)
def test_is_digest_refuses_what_is_not_a_digest(value: str) -> None:
    assert is_digest(value) is False
    with pytest.raises(InvalidReference, match=r"invalid digest"):
        validate_digest(value)


def test_is_digest_accepts_both_registered_algorithms() -> None:
    assert is_digest(D256) and is_digest(D512)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("sha256", r"expected 'sha256:<64 hex>'"),
        ("sha256:" + "a" * 63, r"sha256 needs 64 lowercase hex"),
        ("sha512:" + "a" * 127, r"sha512 needs 128 lowercase hex"),
    ],
)
def test_validate_digest_names_the_problem(value: str, reason: str) -> None:
    with pytest.raises(InvalidReference, match=reason):
        validate_digest(value, what="lock digest")


def test_first_component_is_a_host_only_by_docker_rule() -> None:
    """``.``, ``:``, ``localhost`` or upper case make a host; a lone word is a Hub repository."""
    assert (parse("example.com").registry, parse("example.com").repository) == ("docker.io", "library/example.com")
    assert parse("localhost").repository == "library/localhost"
    upper = parse("MyHost/app")
    assert upper.registry.lower() == "myhost" and upper.repository == "app"


def test_not_a_string_refused() -> None:
    with pytest.raises(InvalidReference, match=r"not a string"):
        parse(None)  # type: ignore[arg-type]


def test_invalid_path_with_upper_case_is_not_called_a_case_problem() -> None:
    with pytest.raises(InvalidReference, match=r"invalid repository name 'foo/Bar//x'"):
        parse("foo/Bar//x")


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("rust:1.70", "repository:library/rust:pull"),
        ("ghcr.io/team/app@" + D256, "repository:team/app:pull"),
        ("localhost:5000/a/manifests/b", "repository:a/manifests/b:pull"),
    ],
)
def test_scope_is_the_repository_within_its_registry(text: str, scope: str) -> None:
    """As ggcr's ``Repository.Scope``: the repository without registry, tag or digest."""
    assert parse(text).scope("pull") == scope
    assert parse(text).scope("push") == scope.replace(":pull", ":push")
