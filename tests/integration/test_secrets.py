"""No secret ever reaches stdout, stderr, debug logs or the lockfile, whatever the command."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from tests.support.credentials import docker_config, helper_script
from tests.support.fixtures import TOKEN_PASSWORD, TOKEN_REFRESH, unique_repo
from tests.support.registry import Registry
from tests.support.token_server import TokenServer


def forms(secret: str, user: str = "alice") -> list[str]:
    """The secret and the encodings it travels in (config.json's auth, the Basic header)."""
    return [secret, base64.b64encode(f"{user}:{secret}".encode()).decode()]


@pytest.mark.registry
def test_no_secret_in_any_output(
    tmp_path: Path,
    basic_registry: Registry,
    token_registry: Registry,
    token_server: TokenServer,
    run,
    isolated_env: Path,
    monkeypatch,
) -> None:
    monkeypatch.setenv("LOCKMAN_DEBUG", "1")  # the most talkative mode
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    basic_img = basic_registry.push_image(unique_repo("secret"), "v1")
    token_img = token_registry.push_image(unique_repo("secret"), "v1")
    images = [f"{basic_registry.host}/{basic_img.repo}:v1", f"{token_registry.host}/{token_img.repo}:v1"]
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(
        f'[container]\nimage = "{images[0]}"\n'
        f'[targets."aarch64-unknown-linux-gnu".container]\nimage = "{images[1]}"\n'
    )
    wrong = "wr0ng-but-still-secret-Pa55"
    secrets = [*forms(basic_registry.password or ""), *forms(TOKEN_PASSWORD), TOKEN_REFRESH, *forms(wrong)]
    seen: list[str] = []

    def every_command() -> None:
        for args in (
            ["update", "--config", cfg],
            ["update", "--check", "--config", cfg],
            ["update", "--dry-run", "--config", cfg],
            ["verify", "--config", cfg],
            ["verify", "--offline", "--config", cfg],
            ["resolve", *images],
        ):
            r = run(*args)
            seen.extend([r.out, r.err])
        monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(images) + "\n"))
        r = run("resolve", "-")
        seen.extend([r.out, r.err])
        lock = tmp_path / "xcargo.lock"
        if lock.exists():
            seen.append(lock.read_text())

    # 1. config.json auths for Basic, an identity token from a helper for the token registry.
    helper_script(
        bin_dir, "lmsecret", f"print(json.dumps({{'Username': '<token>', 'Secret': {TOKEN_REFRESH!r}}}))"
    )
    docker_config(
        isolated_env,
        {
            "auths": {basic_registry.host: {"auth": forms(basic_registry.password or "")[1]}},
            "credHelpers": {token_registry.host: "lmsecret"},
        },
    )
    every_command()
    assert "xcargo.lock: ok" in "".join(seen)  # the runs really authenticated
    assert "debug: " in "".join(seen) and "identity token from docker-credential-lmsecret" in "".join(seen)
    # 2. podman auth file with a password for the token registry (GET with Basic to the realm).
    docker_config(
        isolated_env,
        {"auths": {basic_registry.host: {"username": "alice", "password": basic_registry.password}}},
    )
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(  # the only file read while REGISTRY_AUTH_FILE is set
        json.dumps(
            {
                "auths": {
                    token_registry.host: {"auth": forms(TOKEN_PASSWORD)[1]},
                    basic_registry.host: {"username": "alice", "password": basic_registry.password},
                }
            }
        )
    )
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    every_command()
    # 3. Wrong passwords everywhere: failures must not quote them either.
    docker_config(
        isolated_env,
        {"auths": {h: {"auth": forms(wrong)[1]} for h in (basic_registry.host, token_registry.host)}},
    )
    monkeypatch.delenv("REGISTRY_AUTH_FILE")
    every_command()
    assert "authentication failed" in "".join(seen)

    everything = "\n".join(seen)
    assert token_server.issued  # bearer tokens were handed out …
    for secret in [*secrets, *token_server.issued]:
        assert secret not in everything  # … and, like every secret, never shown
