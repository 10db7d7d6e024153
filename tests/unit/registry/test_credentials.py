"""Credential lookup rules (no network): Docker Hub keys, scoped keys, helpers, precedence."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from lockman.registry import credentials
from lockman.registry.credentials import Credential, CredentialStore
from tests.support.credentials import docker_config, helper_script


def auth(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize(
    "key",
    [
        "https://index.docker.io/v1/",
        "index.docker.io",
        "docker.io",
        "registry-1.docker.io",
        "https://registry-1.docker.io",
    ],
)
def test_docker_hub_keys(isolated_env: Path, key: str) -> None:
    docker_config(isolated_env, {"auths": {key: auth("hubuser", "hubpass")}})
    cred = CredentialStore().get("docker.io", "library/rust")
    assert cred is not None and (cred.username, cred.password) == ("hubuser", "hubpass")
    assert CredentialStore().get("ghcr.io", "x/y") is None


def test_most_specific_repository_key_wins(isolated_env: Path) -> None:
    docker_config(
        isolated_env,
        {
            "auths": {
                "https://reg.example/v1/": auth("host", "h"),  # a URL key names the host only
                "reg.example/team": auth("team", "t"),
                "reg.example/team/app": auth("app", "a"),
            }
        },
    )
    store = CredentialStore()
    assert store.get("reg.example", "team/app").username == "app"  # type: ignore[union-attr]
    assert store.get("reg.example", "team/other").username == "team"  # type: ignore[union-attr]
    assert store.get("reg.example", "solo").username == "host"  # type: ignore[union-attr]


def _write_auths(path: Path, user: str, *, legacy: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    auths = {"reg.example": auth(user, "pw")}
    path.write_text(json.dumps(auths if legacy else {"auths": auths}))


def test_search_order_is_containers_image_order(isolated_env: Path, tmp_path: Path, monkeypatch) -> None:
    """containers/image's getAuthFilePaths: the login file, XDG_CONFIG_HOME, docker's, ~/.dockercfg;
    the first file with credentials wins (a podman login beats an older docker login)."""
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setattr(credentials, "PER_UID_AUTH_FILE", str(tmp_path / "run" / "{uid}" / "auth.json"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    files = [
        (tmp_path / "run" / str(os.getuid()) / "auth.json", "runtime"),
        (tmp_path / "xdg" / "containers" / "auth.json", "config-home"),
        (tmp_path / "docker" / "config.json", "docker"),
        (isolated_env / ".dockercfg", "legacy"),
    ]
    assert [f.path for f in credentials.auth_files()] == [path for path, _ in files]
    for path, user in files:
        _write_auths(path, user, legacy=user == "legacy")
    for path, user in files:  # each file in turn is the best one left
        assert CredentialStore().get("reg.example", "app").username == user  # type: ignore[union-attr]
        path.unlink()
    assert CredentialStore().get("reg.example", "app") is None


def test_login_file_follows_xdg_runtime_dir_else_run_containers_uid(
    isolated_env: Path, tmp_path: Path, monkeypatch
) -> None:
    """As root without XDG_RUNTIME_DIR, ``podman login`` writes /run/containers/0/auth.json."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg-run"))
    assert credentials.auth_files()[0].path == tmp_path / "xdg-run" / "containers" / "auth.json"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setattr(credentials, "PER_UID_AUTH_FILE", "/run/containers/{uid}/auth.json")
    monkeypatch.setattr(credentials.os, "getuid", lambda: 0)
    first = credentials.auth_files()[0]
    assert (first.path, first.note) == (Path("/run/containers/0/auth.json"), "XDG_RUNTIME_DIR unset")


def test_registry_auth_file_is_the_only_file(isolated_env: Path, tmp_path: Path, monkeypatch) -> None:
    """podman and skopeo pass REGISTRY_AUTH_FILE as --authfile, which switches the other files off
    (containers/image#1751): what is only in docker's config.json is not used."""
    d = tmp_path / "dockercfg"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"auths": {"reg.example": auth("docker", "d"), "other.example": auth("d2", "x")}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    podman = tmp_path / "auth.json"
    podman.write_text(json.dumps({"auths": {"reg.example": auth("podman", "p")}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(podman))
    store = CredentialStore()
    assert store.get("reg.example").username == "podman"  # type: ignore[union-attr]
    assert store.get("other.example") is None
    assert store.source("other.example") == (
        f"looked in {podman} (REGISTRY_AUTH_FILE; no other file is read when it is set)"
    )


def test_looked_in_names_every_place_asked_in_order(isolated_env: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setattr(credentials, "PER_UID_AUTH_FILE", "/nonexistent/containers/{uid}/auth.json")
    monkeypatch.setattr(credentials.os, "getuid", lambda: 0)
    docker_config(isolated_env, {"credsStore": "lmnothing-here"})  # not on PATH: anonymous
    store = CredentialStore()
    assert store.get("reg.example", "app") is None
    docker = isolated_env / ".docker" / "config.json"
    assert store.source("reg.example", "app") == "looked in " + ", ".join(
        [
            "/nonexistent/containers/0/auth.json (XDG_RUNTIME_DIR unset)",
            str(isolated_env / ".config" / "containers" / "auth.json"),
            f"docker-credential-lmnothing-here ({docker} credsStore)",
            f"{docker} (DOCKER_CONFIG unset)",
            str(isolated_env / ".dockercfg"),
        ]
    )


def test_dockercfg_legacy_format_keys_by_host(isolated_env: Path) -> None:
    """~/.dockercfg is the auths table itself, with URL keys (containers/image reads it last)."""
    (isolated_env / ".dockercfg").write_text(json.dumps({"https://reg.example/v1/": auth("old", "o")}))
    cred = CredentialStore().get("reg.example", "team/app")
    assert cred is not None and cred.username == "old"


def test_helper_gets_hub_server_url(isolated_env: Path, tmp_path: Path, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    helper_script(
        bin_dir,
        "lmhub",
        "assert server == 'https://index.docker.io/v1/', server\n"
        "print(json.dumps({'Username': 'u', 'Secret': 'hub-secret'}))",
    )
    docker_config(isolated_env, {"credHelpers": {"docker.io": "lmhub"}})
    cred = CredentialStore().get("docker.io", "library/rust")
    assert cred is not None and cred.password == "hub-secret"


def test_unreadable_config_is_a_warning_not_a_failure(isolated_env: Path, caplog) -> None:
    d = isolated_env / ".docker"
    d.mkdir()
    (d / "config.json").write_text("{not json")
    assert CredentialStore().get("reg.example") is None
    assert "ignoring unreadable credentials file" in caplog.text


def test_credential_repr_hides_secrets() -> None:
    c = Credential(username="u", password="very-secret-value", identity_token="tok-secret-value")
    assert "secret" not in repr(c) and "secret" not in str(c)


def test_xdg_config_home_auth_json(isolated_env: Path, tmp_path: Path, monkeypatch) -> None:
    """podman and go-containerregistry read $XDG_CONFIG_HOME/containers/auth.json; so does lockman."""
    xdg = tmp_path / "xdg"
    (xdg / "containers").mkdir(parents=True)
    (xdg / "containers" / "auth.json").write_text(json.dumps({"auths": {"reg.example": auth("xdg", "x")}}))
    assert CredentialStore().get("reg.example", "app") is None  # ~/.config is not where it is
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    assert CredentialStore().get("reg.example", "app").username == "xdg"  # type: ignore[union-attr]


def test_exact_hub_key_wins_over_file_order(isolated_env: Path) -> None:
    """containers/image's order: the exact key ``docker.io`` before a key that only normalises to it."""
    docker_config(
        isolated_env,
        {"auths": {"index.docker.io": auth("index", "i"), "docker.io": auth("exact", "e")}},
    )
    assert CredentialStore().get("docker.io", "library/rust").username == "exact"  # type: ignore[union-attr]


# ---------------------------------------------------------------- which credential, and only for whom


def test_credentials_are_masked_as_soon_as_read() -> None:
    from lockman.console import redact

    Credential(username="mask-user", password="mask-pass-123", identity_token="mask-identity-456")
    encoded = base64.b64encode(b"mask-user:mask-pass-123").decode()
    assert redact(f"p mask-pass-123 i mask-identity-456 a {encoded}") == "p *** i *** a ***"


@pytest.mark.parametrize("key", ["https://reg.example/v1/", "https://reg.example/v2/"])
def test_versioned_auths_keys(isolated_env: Path, key: str) -> None:
    docker_config(isolated_env, {"auths": {key: auth("versioned", "v")}})
    assert CredentialStore().get("reg.example", "x").username == "versioned"  # type: ignore[union-attr]


def test_scheme_less_key_with_a_path_is_a_namespace(isolated_env: Path) -> None:
    """containers/image: without a scheme, ``host/path`` scopes the entry to that namespace."""
    docker_config(isolated_env, {"auths": {"reg.example/v2": auth("namespaced", "n")}})
    assert CredentialStore().get("reg.example", "x") is None
    assert CredentialStore().get("reg.example", "v2/x").username == "namespaced"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"auth": 12345, "username": "u", "password": "p"}, ("u", "p")),  # non-string auth ignored
        ({"auth": "", "username": "u", "password": "p"}, ("u", "p")),  # empty auth ignored
        ({"username": "only-user"}, ("only-user", "")),
        ({"password": "only-password"}, ("", "only-password")),
        ({"auth": "!!!not base64!!!", "username": "u", "password": "p"}, None),
        ({}, None),
    ],
)
def test_auths_entry_shapes(isolated_env: Path, entry: dict, expected: tuple | None) -> None:
    docker_config(isolated_env, {"auths": {"reg.example": entry}})
    cred = CredentialStore().get("reg.example")
    assert (None if cred is None else (cred.username, cred.password)) == expected


def test_helper_for_another_registry_is_not_asked(isolated_env: Path, tmp_path: Path, monkeypatch) -> None:
    """credHelpers names hosts: another host's helper never answers for this one."""
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    helper_script(bin_dir, "lmother", "print(json.dumps({'Username': 'u', 'Secret': 'other-host-secret'}))")
    docker_config(
        isolated_env,
        {"credHelpers": {"other.example": "lmother"}, "auths": {"reg.example": auth("mine", "m")}},
    )
    cred = CredentialStore().get("reg.example", "x")
    assert cred is not None and (cred.username, cred.password) == ("mine", "m")


@pytest.mark.parametrize("helper", ["", 12345, None])
def test_blank_or_odd_helper_names_fall_through_to_auths(isolated_env: Path, helper: object) -> None:
    docker_config(
        isolated_env,
        {"credHelpers": {"reg.example": helper}, "credsStore": helper, "auths": {"reg.example": auth("a", "b")}},
    )
    cred = CredentialStore().get("reg.example")
    assert cred is not None and cred.username == "a"


@pytest.mark.parametrize(
    ("said", "problem"),
    [
        ("credentials not found in native keychain", ""),
        ("no credentials for reg.example", ""),
        ("the specified item does not exist", ""),
        ("keychain locked: boom", "docker-credential-lmfail failed (exit 1: keychain locked: boom)"),
    ],
)
def test_helper_failures_anonymous_or_reported(
    isolated_env: Path, tmp_path: Path, monkeypatch, said: str, problem: str
) -> None:
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    helper_script(bin_dir, "lmfail", f"print({said!r}); sys.exit(1)")
    docker_config(isolated_env, {"credHelpers": {"reg.example": "lmfail"}})
    store = CredentialStore()
    assert store.get("reg.example") is None
    assert store.problem("reg.example") == problem


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("https://::1:6555/v2/", "[::1]:6555"),  # docker/cli's table: the last group is a port
        # Not a port: the key is left as written, never turned into a bracketed host ``[fe80:]:abcd``.
        # (docker's url.Parse refuses it and falls back to "https:"; either way it names no other host.)
        ("https://fe80::abcd/v2/", "fe80::abcd"),
    ],
)
def test_ipv6_key_gets_brackets_only_around_a_real_port(key: str, host: str) -> None:
    from lockman.registry.credentials import convert_to_hostname

    assert convert_to_hostname(key) == host


@pytest.mark.parametrize(
    ("printed", "secret"),
    [
        ("json.dumps({'Username': 'u', 'Secret': 'failing-s3cret-whole'})", "failing-s3cret-whole"),
        ("'{\"Username\": \"u\", \"Secret\": \"failing-s3cret-half'", "failing-s3cret-half"),  # cut short
        ("json.dumps(['failing-s3cret-list'])", None),  # not an answer: nothing to mask, no crash
        ("json.dumps({'Secret': 12345678})", None),
    ],
)
def test_failing_helper_secret_is_masked_even_from_a_broken_answer(
    isolated_env: Path, tmp_path: Path, monkeypatch, printed: str, secret: str | None
) -> None:
    """A helper that fails after printing (part of) its answer: the secret is masked before any
    message can quote it."""
    from lockman import console

    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(console, "_secrets", set())
    helper_script(bin_dir, "lmbroken", f"print({printed}); sys.exit(1)")
    docker_config(isolated_env, {"credHelpers": {"reg.example": "lmbroken"}})
    store = CredentialStore()
    assert store.get("reg.example") is None
    assert store.problem("reg.example").startswith("docker-credential-lmbroken failed (exit 1")
    if secret is not None:
        assert console.redact(f"said {secret}") == "said ***"
    else:
        assert console._secrets == set()


def test_helper_saying_not_found_on_stderr_is_anonymous(isolated_env: Path, tmp_path: Path, monkeypatch) -> None:
    """A helper may say "not found" on stderr rather than stdout: still anonymous, no problem."""
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    helper_script(bin_dir, "lmquiet", "print('credentials not found in native keychain', file=sys.stderr); sys.exit(1)")
    docker_config(isolated_env, {"credHelpers": {"reg.example": "lmquiet"}})
    store = CredentialStore()
    assert store.get("reg.example") is None
    assert store.problem("reg.example") == ""


def test_auth_files_named_as_devices(isolated_env: Path, monkeypatch, caplog) -> None:
    """REGISTRY_AUTH_FILE=/dev/null is no credentials, quietly; /dev/zero is ignored with a warning
    after 4 MiB (it was read until memory ran out); either way no other file is read, as podman."""
    xdg = isolated_env / "xdg"
    (xdg / "containers").mkdir(parents=True)
    (xdg / "containers" / "auth.json").write_text(json.dumps({"auths": {"reg.example": auth("x", "y")}}))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    assert CredentialStore().get("reg.example").username == "x"  # type: ignore[union-attr]
    monkeypatch.setenv("REGISTRY_AUTH_FILE", "/dev/null")
    assert CredentialStore().get("reg.example") is None
    assert "ignoring" not in caplog.text
    monkeypatch.setenv("REGISTRY_AUTH_FILE", "/dev/zero")
    assert CredentialStore().get("reg.example") is None
    assert "ignoring credentials file: /dev/zero: larger than 4 MiB" in caplog.text


@pytest.mark.parametrize("store", ["", ["x/y"], {"a": "b/c"}])
def test_empty_or_non_string_creds_store_runs_nothing(
    isolated_env: Path, tmp_path: Path, monkeypatch, store: object
) -> None:
    """docker reads such a credsStore as no store: no program is looked up or run, nothing is
    reported, and auths answers (a ``docker-credential-`` on PATH would otherwise run)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "ran"
    planted = bin_dir / "docker-credential-"
    planted.write_text(f"#!/bin/sh\ntouch {marker}\necho '{{\"Username\":\"u\",\"Secret\":\"s\"}}'\n")
    planted.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    docker_config(isolated_env, {"credsStore": store, "auths": {"reg.example": auth("a", "b")}})
    store_ = CredentialStore()
    cred = store_.get("reg.example")
    assert cred is not None and cred.username == "a"
    assert not marker.exists() and store_.problem("reg.example") == ""


def test_a_host_with_a_helper_is_asked_only_of_that_helper(isolated_env: Path, tmp_path: Path, monkeypatch) -> None:
    """docker's rule: when credHelpers names a helper for the host, that helper alone answers for
    it in that file; its "not found" is not topped up from credsStore or auths beside it."""
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    helper_script(bin_dir, "lmnone", "print('credentials not found in native keychain'); sys.exit(1)")
    helper_script(bin_dir, "lmstore", "print(json.dumps({'Username': 'store', 'Secret': 's'}))")
    docker_config(
        isolated_env,
        {"credHelpers": {"reg.example": "lmnone"}, "credsStore": "lmstore", "auths": {"reg.example": auth("a", "b")}},
    )
    store = CredentialStore()
    assert store.get("reg.example") is None
    assert store.problem("reg.example") == ""
