from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lockman.cli import main
from tests.support.faultproxy import FaultProxy
from tests.support.osv_server import OsvServer
from tests.support.registry import Registry, htpasswd_line, require_tool
from tests.support.token_server import TokenServer
from tests.support.token_server import token_registry as make_token_registry

TOKEN_PASSWORD = "t0ken-Pa55word-for-tests"
TOKEN_REFRESH = "refresh-t0ken-for-tests-0123456789"

_counter = itertools.count()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test sees the developer's credentials, registries.conf, caches or proxies."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var in (
        "DOCKER_CONFIG",
        "REGISTRY_AUTH_FILE",
        "XDG_RUNTIME_DIR",
        "CONTAINERS_REGISTRIES_CONF",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "NO_COLOR",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "REGISTRIES_CONFIG_PATH",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    # Nor root's podman/skopeo logins (/run/containers/0/auth.json), in-process or in a subprocess.
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(home / "run"))
    import lockman.registry.credentials as credentials

    monkeypatch.setattr(credentials, "PER_UID_AUTH_FILE", str(home / "run-containers" / "{uid}" / "auth.json"))
    # Nor this machine's registries.conf, certs.d directories or debug switch.
    (home / "registries.conf").write_text("")
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(home / "registries.conf"))
    import lockman.registry.registries_conf as registries_conf

    monkeypatch.setattr(registries_conf, "SYSTEM_CONF", home / "etc" / "registries.conf")
    monkeypatch.setattr(registries_conf, "SYSTEM_CONF_D", home / "etc" / "registries.conf.d")
    monkeypatch.setenv("LOCKMAN_CERTS_D", str(home / "certs.d"))
    monkeypatch.delenv("LOCKMAN_DEBUG", raising=False)
    # Secrets registered for redaction by one test must not redact another test's output.
    import lockman.console

    monkeypatch.setattr(lockman.console, "_secrets", set())
    monkeypatch.setenv("LOCKMAN_LOCK_DIR", str(home / "locks"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    # Real retries, tiny waits: fault tests stay fast (lockman.registry.retry reads these).
    monkeypatch.setenv("LOCKMAN_RETRY_WAIT_INITIAL", "0.01")
    monkeypatch.setenv("LOCKMAN_RETRY_WAIT_MAX", "0.05")
    monkeypatch.setenv("LOCKMAN_RETRY_JITTER", "0.01")
    # Air-gapped like CI: the Sigstore trusted root is never fetched over TUF unless a test asks.
    monkeypatch.setenv("LOCKMAN_TUF_OFFLINE", "1")
    monkeypatch.delenv("LOCKMAN_TUF_URL", raising=False)
    # Nor OSV: a closed loopback port unless a test starts its own (tests/support/osv_server.py).
    monkeypatch.setenv("LOCKMAN_OSV_URL", "http://127.0.0.1:9")
    for var in ("LOCKMAN_RETRY_ATTEMPTS", "LOCKMAN_RETRY_AFTER_MAX"):
        monkeypatch.delenv(var, raising=False)
    # Log records rendered as a lockman run renders them (warning: … on stderr), whichever test
    # ran first: a library does not install handlers itself, the CLI does at start.
    lockman.console.set_verbosity()
    lockman.console.configure_logging()
    return home


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A plain-HTTP, anonymous docker-registry shared by the session (tests use unique repos)."""
    reg = Registry(tmp_path_factory.mktemp("registry")).start()
    yield reg
    reg.stop()


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry of the test's own, which it may stop."""
    reg = Registry(tmp_path / "registry").start()
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """docker-registry with htpasswd auth; user ``alice``, password in ``.password``."""
    root = tmp_path_factory.mktemp("basic-registry")
    root.mkdir(exist_ok=True)
    password = "s3cret-Pa55word-for-tests"
    (root / "htpasswd").write_text(htpasswd_line("alice", password) + "\n")
    reg = Registry(
        root,
        auth={"htpasswd": {"realm": "lockman-test", "path": str(root / "htpasswd")}},
        username="alice",
        password=password,
    ).start()
    yield reg
    reg.stop()


def unique_repo(prefix: str = "test") -> str:
    return f"{prefix}/r{next(_counter)}-{os.getpid()}"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def skopeo_installed() -> None:
    require_tool("skopeo")


@pytest.fixture
def openssl_installed() -> None:
    """The openssl command line (a TSA in the timestamp tests)."""
    require_tool("openssl")


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]):
    """Run the CLI in-process: ``run("update", "--config", p)`` → Result(code, out, err)."""

    def _run(*args: str) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return _run


@pytest.fixture
def fault_proxy(registry: Registry) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the shared registry; add rules per test."""
    proxy = FaultProxy("127.0.0.1", registry.port).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def token_server() -> Iterator[TokenServer]:
    """A Docker token server (ES256 JWTs); user ``alice`` and a refresh token for her."""
    server = TokenServer(users={"alice": TOKEN_PASSWORD}, refresh_tokens={TOKEN_REFRESH: "alice"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory, token_server: TokenServer) -> Iterator[Registry]:
    """docker-registry with ``auth: token`` trusting ``token_server``."""
    reg = make_token_registry(tmp_path_factory.mktemp("token-registry"), token_server).start()
    yield reg
    reg.stop()


@pytest.fixture
def osv_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OsvServer]:
    """A loopback OSV service answering from testdata/osv/records; LOCKMAN_OSV_URL points at it."""
    server = OsvServer().start()
    monkeypatch.setenv("LOCKMAN_OSV_URL", server.url)
    yield server
    server.stop()
