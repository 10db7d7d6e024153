"""lockman.registry.hosts: plain HTTP only for loopback registries, registries marked insecure,
and hosts named by ``--insecure-registry`` (exactly, or on any port when no port is given)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lockman.errors import InputError
from lockman.registry.hosts import (
    allow_insecure_for_run,
    host_only,
    insecure_for_run,
    is_loopback,
    plain_http_allowed,
)


@pytest.fixture(autouse=True)
def no_insecure_hosts() -> Iterator[None]:
    allow_insecure_for_run(())
    yield
    allow_insecure_for_run(())


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("registry.test", "registry.test"),
        ("registry.test:5000", "registry.test"),
        ("[::1]:5000", "::1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
    ],
)
def test_host_only_strips_the_port_and_brackets(host: str, expected: str) -> None:
    assert host_only(host) == expected


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:5000", "app.localhost:80", "127.0.0.1", "127.8.9.10:5000", "[::1]:5000", "::1"],
)
def test_loopback_registries_may_use_plain_http(host: str) -> None:
    assert is_loopback(host) and plain_http_allowed(host)


@pytest.mark.parametrize(
    "host",
    [
        "registry.test",
        "localhost.evil.test",
        "mylocalhost",
        "10.0.0.1:5000",
        "128.0.0.1",
        "[::2]:5000",
        "docker.io",
    ],
)
def test_other_registries_must_use_https(host: str) -> None:
    assert not is_loopback(host) and not plain_http_allowed(host)


def test_registries_conf_insecure_allows_plain_http() -> None:
    assert plain_http_allowed("registry.test", insecure=True)


def test_insecure_registry_flag_without_port_matches_any_port() -> None:
    allow_insecure_for_run(["Registry.Test"])
    assert insecure_for_run("registry.test") and insecure_for_run("registry.test:5000")
    assert plain_http_allowed("REGISTRY.TEST:443")
    assert not insecure_for_run("other.test") and not insecure_for_run("sub.registry.test")


def test_insecure_registry_flag_with_port_matches_that_port_only() -> None:
    allow_insecure_for_run(["registry.test:5000", "[fd00::1]:5000"])
    assert insecure_for_run("registry.test:5000") and insecure_for_run("[fd00::1]:5000")
    assert not insecure_for_run("registry.test") and not insecure_for_run("registry.test:5001")


def test_insecure_registry_flag_is_for_this_run_only() -> None:
    allow_insecure_for_run(["registry.test"])
    allow_insecure_for_run([])
    assert not plain_http_allowed("registry.test")


@pytest.mark.parametrize(
    "bad",
    [
        "*",
        "https://registry.test",
        "registry.test/path",
        "registry.test:port",
        "",
        "a b",
        "*.test",
        "reg_istry.test",
    ],
)
def test_insecure_registry_flag_refuses_what_is_not_one_host(bad: str) -> None:
    with pytest.raises(
        InputError, match=r"^--insecure-registry .*expected a registry host, HOST or HOST:PORT"
    ):
        allow_insecure_for_run(["registry.test", bad])
    assert not insecure_for_run("registry.test")  # nothing is allowed from a bad flag list
