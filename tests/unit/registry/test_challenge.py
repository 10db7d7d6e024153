from __future__ import annotations

from lockman.registry.auth import scope_for_path
from lockman.registry.challenge import parse_challenges


def test_bearer_with_quoted_comma_scope() -> None:
    (c,) = parse_challenges(
        ['Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"']
    )
    assert c.scheme == "bearer"
    assert c.params == {
        "realm": "https://auth.example/token",
        "service": "reg",
        "scope": "repository:a/b:pull,push",
    }


def test_several_challenges_in_one_header_and_across_headers() -> None:
    cs = parse_challenges(
        ['Basic realm="r1", Bearer realm="https://t", error="insufficient_scope"', 'Basic realm="x\\"y"']
    )
    assert [c.scheme for c in cs] == ["basic", "bearer", "basic"]
    assert cs[1].params["error"] == "insufficient_scope"
    assert cs[2].realm == 'x"y'


def test_unquoted_values_and_garbage() -> None:
    (c,) = parse_challenges(["bearer realm=https://t,service=s"])
    assert c.params == {"realm": "https://t", "service": "s"}
    assert parse_challenges([""]) == []


def test_scope_from_path() -> None:
    assert scope_for_path("/v2/a/b/manifests/latest") == "repository:a/b:pull"
    assert scope_for_path("/v2/a/blobs/sha256:x") == "repository:a:pull"
    assert scope_for_path("/v2/") is None


def test_trailing_separators_and_blank_values() -> None:
    (c,) = parse_challenges(['Basic realm="r" ,  , '])
    assert (c.scheme, c.params) == ("basic", {"realm": "r"})
    assert parse_challenges(["   ", ", ,"]) == []


def test_parameter_after_a_non_comma_separator_is_not_read() -> None:
    """``;`` does not separate auth-params (RFC 7235): nothing after it may set the realm."""
    (c,) = parse_challenges(['Bearer realm="https://auth.example/token";realm="https://evil.example/t"'])
    assert c.realm == "https://auth.example/token"
