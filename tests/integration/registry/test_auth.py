"""Credentials from docker and podman stores against real registries (htpasswd and token auth)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lockman.model import lockfile
from tests.support.credentials import b64, docker_config, helper_script
from tests.support.fixtures import TOKEN_PASSWORD, TOKEN_REFRESH, unique_repo
from tests.support.registry import Registry
from tests.support.token_server import TokenServer


def write_config(tmp_path: Path, images: list[str]) -> Path:
    cfg = tmp_path / "xcargo.toml"
    body = f'[container]\nimage = "{images[0]}"\n'
    triples = ["aarch64-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf", "riscv64gc-unknown-linux-gnu"]
    for triple, image in zip(triples, images[1:], strict=False):
        body += f'[targets."{triple}".container]\nimage = "{image}"\n'
    cfg.write_text(body)
    return cfg


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", f"{d}{os.pathsep}{os.environ['PATH']}")
    return d


# -- htpasswd (Basic) ------------------------------------------------------------------------------
@pytest.mark.registry
def test_basic_no_credentials_then_username_password_fields(
    tmp_path: Path, basic_registry: Registry, run, isolated_env: Path
) -> None:
    reg = basic_registry
    repo = unique_repo("basic")
    img = reg.push_image(repo, "v1")
    cfg = write_config(tmp_path, [f"{reg.host}/{repo}:v1"])
    r = run("update", "--config", cfg)
    assert r.code == 3
    assert r.err.count("\n") == 1 and f"{reg.host}: authentication required" in r.err
    assert "docker login" in r.err
    # A bot's trimmed environment is the usual cause: say which files were read.
    docker_path = isolated_env / ".docker" / "config.json"
    runtime = os.environ["XDG_RUNTIME_DIR"]
    assert (
        f"looked in {runtime}/containers/auth.json, {isolated_env}/.config/containers/auth.json, "
        f"{docker_path} (DOCKER_CONFIG unset), {isolated_env}/.dockercfg;"
    ) in r.err

    docker_config(
        isolated_env, {"auths": {reg.host: {"username": "alice", "password": "wrong-Pa55word-basic"}}}
    )
    r = run("update", "--config", cfg)
    assert r.code == 3 and f"{reg.host}: authentication failed" in r.err
    assert f"from {docker_path} auths" in r.err and "wrong-Pa55word" not in r.err
    assert not (tmp_path / "xcargo.lock").exists()

    docker_config(isolated_env, {"auths": {reg.host: {"username": "alice", "password": reg.password}}})
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert img.digest in (tmp_path / "xcargo.lock").read_text()


@pytest.mark.registry
def test_repository_scoped_key_wins_over_host_key(
    tmp_path: Path, basic_registry: Registry, run, isolated_env: Path
) -> None:
    reg = basic_registry
    repo = unique_repo("scoped")
    reg.push_image(repo, "v1")
    cfg = write_config(tmp_path, [f"{reg.host}/{repo}:v1"])
    docker_config(
        isolated_env,
        {
            "auths": {
                reg.host: {"auth": b64("alice", "wrong-host-wide")},
                f"{reg.host}/{repo.split('/')[0]}": {"auth": b64("alice", reg.password)},
            }
        },
    )
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err


@pytest.mark.registry
@pytest.mark.parametrize("where", ["REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "home"])
def test_podman_auth_files(
    tmp_path: Path, basic_registry: Registry, run, isolated_env: Path, monkeypatch, where: str
) -> None:
    reg = basic_registry
    repo = unique_repo("podman")
    img = reg.push_image(repo, "v1")
    cfg = write_config(tmp_path, [f"{reg.host}/{repo}:v1"])
    content = json.dumps({"auths": {reg.host: {"auth": b64("alice", reg.password)}}})
    if where == "REGISTRY_AUTH_FILE":
        path = tmp_path / "my-auth.json"
        monkeypatch.setenv("REGISTRY_AUTH_FILE", str(path))
    elif where == "XDG_RUNTIME_DIR":
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
        path = tmp_path / "run" / "containers" / "auth.json"
    else:
        path = isolated_env / ".config" / "containers" / "auth.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert img.digest in (tmp_path / "xcargo.lock").read_text()


@pytest.mark.registry
@pytest.mark.usefixtures("skopeo_installed")
def test_skopeo_login_is_found_before_an_older_docker_login(
    tmp_path: Path, basic_registry: Registry, run, isolated_env: Path, monkeypatch
) -> None:
    """A real ``skopeo login`` (as podman's) writes the file containers/image reads first; lockman
    reads it first too, so a stale docker login for the same host does not shadow it."""
    reg = basic_registry
    repo = unique_repo("skopeo-login")
    img = reg.push_image(repo, "v1")
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    login = subprocess.run(
        ["skopeo", "login", "--tls-verify=false", "--username", "alice", "--password-stdin", reg.host],
        input=reg.password,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert login.returncode == 0, login.stderr
    assert reg.host in json.loads((runtime / "containers" / "auth.json").read_text())["auths"]
    docker_config(isolated_env, {"auths": {reg.host: {"auth": b64("alice", "stale-Pa55word")}}})
    cfg = write_config(tmp_path, [f"{reg.host}/{repo}:v1"])
    r = run("-v", "update", "--config", cfg)
    assert r.code == 0, r.err
    assert img.digest in (tmp_path / "xcargo.lock").read_text()
    assert f"from {runtime / 'containers' / 'auth.json'}" in r.err and "stale-Pa55word" not in r.err


@pytest.mark.registry
def test_credential_helper_on_path(
    tmp_path: Path, basic_registry: Registry, registry: Registry, run, isolated_env: Path, bin_dir: Path
) -> None:
    reg = basic_registry
    repo = unique_repo("helper")
    img = reg.push_image(repo, "v1")
    log = tmp_path / "helper.log"
    helper_script(
        bin_dir,
        "lmgood",
        f"open({str(log)!r}, 'a').write(server + '\\n')\n"
        f"if server != {reg.host!r}:\n"
        "    print('credentials not found in native keychain'); sys.exit(1)\n"
        f"print(json.dumps({{'ServerURL': server, 'Username': 'alice', 'Secret': {reg.password!r}}}))",
    )
    helper_script(
        bin_dir, "lmbroken", "print('segfault: the keychain exploded', file=sys.stderr); sys.exit(2)"
    )
    # A broken store and a broken helper for another host must not matter for this host.
    docker_config(
        isolated_env,
        {"credsStore": "lmbroken", "credHelpers": {reg.host: "lmgood", "other.example:5000": "lmbroken"}},
    )
    other_repo = unique_repo("anon")
    registry.push_image(other_repo, "v1")
    cfg = write_config(tmp_path, [f"{reg.host}/{repo}:v1", f"{registry.host}/{other_repo}:v1"])
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert r.err == ""  # nothing to report: the anonymous registry never consulted a helper
    assert img.digest in (tmp_path / "xcargo.lock").read_text()
    assert log.read_text().splitlines() == [reg.host]  # asked once, for this host only


@pytest.mark.registry
def test_missing_or_empty_helper_means_anonymous_and_broken_helper_is_named(
    tmp_path: Path,
    basic_registry: Registry,
    registry: Registry,
    run,
    isolated_env: Path,
    bin_dir: Path,
    monkeypatch,
) -> None:
    reg = basic_registry
    repo, anon = unique_repo("nohelper"), unique_repo("anon")
    reg.push_image(repo, "v1")
    registry.push_image(anon, "v1")
    cfg = write_config(tmp_path, [f"{registry.host}/{anon}:v1"])
    # A credsStore that is not installed (docker-credential-desktop on a CI box): anonymous.
    docker_config(isolated_env, {"credsStore": "desktop-not-installed"})
    r = run("update", "--config", cfg)
    assert r.code == 0 and r.err == ""

    cfg = write_config(tmp_path, [f"{reg.host}/{repo}:v1", f"{registry.host}/{anon}:v1"])
    monkeypatch.setenv("LOCKMAN_DEBUG", "1")
    r = run("update", "--config", cfg)
    assert r.code == 3
    assert "docker-credential-desktop-not-installed not found" in r.err  # a debug line
    assert f"{reg.host}: authentication required" in r.err
    monkeypatch.delenv("LOCKMAN_DEBUG")

    helper_script(
        bin_dir, "lmbroken", "print('segfault: the keychain exploded', file=sys.stderr); sys.exit(2)"
    )
    docker_config(isolated_env, {"credHelpers": {reg.host: "lmbroken"}})
    r = run("update", "--config", cfg)
    assert r.code == 3
    errors = [ln for ln in r.err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1  # the anonymous registry's image resolved fine
    assert f"{reg.host}: authentication required (docker-credential-lmbroken failed" in errors[0]
    assert "keychain exploded" in errors[0]


# -- token auth ------------------------------------------------------------------------------------
@pytest.mark.registry
def test_token_reused_across_repositories(
    tmp_path: Path, token_registry: Registry, token_server: TokenServer, run, isolated_env: Path
) -> None:
    reg = token_registry
    base = unique_repo("tok")
    imgs = [reg.push_image(f"{base}/{n}", "v1") for n in ("a", "b", "c")]
    idx = reg.push_index(f"{base}/d", "v1", ["linux/amd64", "linux/arm64"], attestation=False)
    cfg = write_config(tmp_path, [f"{reg.host}/{base}/{n}:v1" for n in ("a", "b", "c", "d")])

    before = len(token_server.hits)
    r = run("update", "--config", cfg)
    assert r.code == 3 and f"{reg.host}: authentication required" in r.err  # anonymous refused
    assert {h.user for h in token_server.hits[before:]} == {None}

    docker_config(isolated_env, {"auths": {reg.host: {"auth": b64("alice", TOKEN_PASSWORD)}}})
    before = len(token_server.hits)
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    hits = token_server.hits[before:]
    assert len(hits) == 1, hits  # one token for all four repositories
    assert hits[0].user == "alice"
    assert sorted(hits[0].scopes) == [f"repository:{base}/{n}:pull" for n in ("a", "b", "c", "d")]
    digests = {i.name.rsplit("/", 1)[1]: i.digest for i in lockfile.read(tmp_path / "xcargo.lock").images}
    assert digests == {"a": imgs[0].digest, "b": imgs[1].digest, "c": imgs[2].digest, "d": idx.digest}

    before = len(token_server.hits)
    v = run("verify", "--config", cfg)  # fetches 4 manifests + 2 platform children by digest
    assert v.code == 0, v.err
    assert len(token_server.hits) == before + 1


@pytest.mark.registry
def test_insufficient_scope_gets_a_token_for_the_scope_asked(
    tmp_path: Path, token_registry: Registry, token_server: TokenServer, run, isolated_env: Path
) -> None:
    """A cached token that lacks a repository: the registry's insufficient_scope challenge names
    the scope it wants, and lockman fetches a token for exactly that, once."""
    reg = token_registry
    base = unique_repo("scope")
    imgs = [reg.push_image(f"{base}/{n}", "v1") for n in ("a", "b")]
    cfg = write_config(tmp_path, [f"{reg.host}/{base}/{n}:v1" for n in ("a", "b")])
    docker_config(isolated_env, {"auths": {reg.host: {"auth": b64("alice", TOKEN_PASSWORD)}}})
    before, log_mark = len(token_server.hits), len(reg.access_log_lines())
    token_server.max_grants = 1  # the batched token covers only the first repository
    try:
        r = run("update", "--config", cfg)
    finally:
        token_server.max_grants = None
    assert r.code == 0, r.err
    hits = token_server.hits[before:]
    assert len(hits) == 2, hits
    assert sorted(hits[0].scopes) == [f"repository:{base}/a:pull", f"repository:{base}/b:pull"]
    assert hits[1].scopes == [f"repository:{base}/b:pull"]  # exactly what the challenge named
    refused = [ln for ln in reg.access_log_lines()[log_mark:] if '" 401 ' in ln and '"GET /v2/ ' not in ln]
    assert len(refused) == 1 and f"/{base}/b/manifests/v1" in refused[0]
    locked = {i.name.rsplit("/", 1)[1]: i.digest for i in lockfile.read(tmp_path / "xcargo.lock").images}
    assert locked == {"a": imgs[0].digest, "b": imgs[1].digest}


@pytest.mark.registry
def test_token_wrong_password_and_public_anonymous(
    tmp_path: Path, token_registry: Registry, run, isolated_env: Path
) -> None:
    reg = token_registry
    pub = reg.push_image(unique_repo("public"), "v1")
    cfg = write_config(tmp_path, [f"{reg.host}/{pub.repo}:v1"])
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err  # anonymous token grants pull on public/…

    priv = reg.push_image(unique_repo("private"), "v1")
    cfg = write_config(tmp_path, [f"{reg.host}/{priv.repo}:v1"])
    docker_config(isolated_env, {"auths": {reg.host: {"auth": b64("alice", "not-the-password")}}})
    r = run("update", "--config", cfg)
    assert r.code == 3 and r.err.count("\n") == 1
    assert f"{reg.host}: authentication failed" in r.err
    assert f"from {isolated_env / '.docker' / 'config.json'} auths" in r.err


@pytest.mark.registry
@pytest.mark.parametrize("source", ["identitytoken", "helper"])
def test_identity_token_refresh_grant(
    tmp_path: Path,
    token_registry: Registry,
    token_server: TokenServer,
    run,
    isolated_env: Path,
    bin_dir: Path,
    source: str,
) -> None:
    reg = token_registry
    img = reg.push_image(unique_repo("ident"), "v1")
    cfg = write_config(tmp_path, [f"{reg.host}/{img.repo}:v1"])
    if source == "identitytoken":
        docker_config(isolated_env, {"auths": {reg.host: {"identitytoken": TOKEN_REFRESH}}})
    else:
        helper_script(
            bin_dir, "lmtok", f"print(json.dumps({{'Username': '<token>', 'Secret': {TOKEN_REFRESH!r}}}))"
        )
        docker_config(isolated_env, {"credHelpers": {reg.host: "lmtok"}})
    before = len(token_server.hits)
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    (hit,) = token_server.hits[before:]
    assert (hit.method, hit.grant, hit.user) == ("POST", "refresh_token", "alice")
    assert hit.scopes == [f"repository:{img.repo}:pull"]
    assert TOKEN_REFRESH not in r.out + r.err
