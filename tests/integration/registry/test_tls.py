"""TLS trust (SSL_CERT_FILE, certs.d, client certificates) and proxies, against real registries."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lockman.errors import InputError
from lockman.model import lockfile
from lockman.registry import system_trust
from tests.support.faultproxy import FaultProxy
from tests.support.fixtures import unique_repo
from tests.support.paths import ROOT as REPO
from tests.support.registry import Registry, TLSSetup, start_tls


@pytest.fixture(scope="module")
def mtls_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSSetup]:
    setup = start_tls(tmp_path_factory.mktemp("mtls"), client_certs=True)
    yield setup
    setup.registry.stop()


def _project(tmp_path: Path, reg: Registry) -> tuple[Path, str]:
    repo = unique_repo("tls")
    img = reg.push_image(repo, "v1")
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{reg.host}/{repo}:v1"\n')
    return cfg, img.digest


@pytest.mark.registry
def test_untrusted_certificate_is_refused_with_advice(tmp_path: Path, tls_setup: TLSSetup, run) -> None:
    cfg, _ = _project(tmp_path, tls_setup.registry)
    for cmd in (["update"], ["resolve", f"{tls_setup.registry.host}/x/y:1"]):
        args = [*cmd, "--config", cfg] if cmd == ["update"] else cmd
        r = run(*args)
        assert r.code == 3, r.err
        line = r.err.strip()
        assert "\n" not in line and "Traceback" not in line
        assert f"{tls_setup.registry.host}: TLS certificate not trusted" in line
        assert f"certs.d/{tls_setup.registry.host}/ca.crt" in line and "SSL_CERT_FILE" in line
    assert not (tmp_path / "xcargo.lock").exists()


@pytest.mark.registry
def test_trusted_via_ssl_cert_file(tmp_path: Path, tls_setup: TLSSetup, run, monkeypatch) -> None:
    cfg, digest = _project(tmp_path, tls_setup.registry)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_setup.ca_pem))
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert lockfile.read(tmp_path / "xcargo.lock").images[0].digest == digest
    assert run("verify", "--config", cfg).code == 0


@pytest.mark.registry
def test_blob_bodies_use_http11_beside_http2(tmp_path: Path, tls_setup: TLSSetup, monkeypatch) -> None:
    """Manifests multiplex on the registry's HTTP/2 connection; a blob body gets its own HTTP/1.1
    connection (bulk transfer in Python's HTTP/2 stack was a third as fast). Bytes still verified."""
    import asyncio

    from lockman.model import reference
    from lockman.registry.blobs import read_blob
    from lockman.registry.client import RegistryClient
    from tests.support.registry import sha256

    reg = tls_setup.registry
    repo = unique_repo("h2")
    img = reg.push_image(repo, "v1", layer_size=300_000)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_setup.ca_pem))

    async def go() -> tuple[str, str, bytes]:
        ref = reference.parse(f"{reg.host}/{repo}:v1")
        async with RegistryClient(http2=True) as client:
            manifest = await client.get_manifest(ref)
            ping = await client.http.get(f"https://{reg.host}/v2/")
            layer = manifest.layers[0]
            async with client.stream_blob(ref, layer.digest, size=layer.size) as response:
                blob_version = response.http_version
            data = await read_blob(client, ref, layer, what="layer", limit=1 << 20)
            return ping.http_version, blob_version, data

    ping_version, blob_version, data = asyncio.run(go())
    assert ping_version == "HTTP/2"
    assert blob_version == "HTTP/1.1"
    assert sha256(data) == sha256(img.layers[0])


@pytest.mark.registry
def test_trusted_via_ssl_cert_dir(tmp_path: Path, tls_setup: TLSSetup, run, monkeypatch) -> None:
    import subprocess

    cfg, _ = _project(tmp_path, tls_setup.registry)
    d = tmp_path / "cadir"
    d.mkdir()
    (d / "test-ca.pem").write_bytes(tls_setup.ca_pem.read_bytes())
    subprocess.run(["openssl", "rehash", str(d)], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_DIR", str(d))
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err


@pytest.mark.registry
def test_trusted_via_certs_d(tmp_path: Path, tls_setup: TLSSetup, run, monkeypatch) -> None:
    cfg, _ = _project(tmp_path, tls_setup.registry)
    docker_d, podman_d = tmp_path / "docker-certs.d", tmp_path / "containers-certs.d"
    host_dir = podman_d / tls_setup.registry.host
    host_dir.mkdir(parents=True)
    (host_dir / "ca.crt").write_bytes(tls_setup.ca_pem.read_bytes())
    monkeypatch.setenv("LOCKMAN_CERTS_D", f"{docker_d}:{podman_d}")
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    # The CA file for another host does not help this one.
    other = podman_d / "127.0.0.1:1"
    host_dir.rename(other)
    r = run("update", "--config", cfg)
    assert r.code == 3 and "not trusted" in r.err


@pytest.mark.registry
def test_client_certificate_from_certs_d(tmp_path: Path, mtls_setup: TLSSetup, run, monkeypatch) -> None:
    cfg, digest = _project(tmp_path, mtls_setup.registry)
    host_dir = tmp_path / "certs.d" / mtls_setup.registry.host
    host_dir.mkdir(parents=True)
    (host_dir / "ca.crt").write_bytes(mtls_setup.ca_pem.read_bytes())
    monkeypatch.setenv("LOCKMAN_CERTS_D", str(tmp_path / "certs.d"))
    r = run("update", "--config", cfg)
    assert r.code == 3, r.err  # trusted, but the registry wants a client certificate
    assert mtls_setup.registry.host in r.err and r.err.count("\n") == 1
    # TLS 1.3 reports a missing client certificate after the handshake: the alert (and with
    # it the hint) arrives only when it wins the race against the connection's close.
    if "refused the TLS handshake" in r.err:
        assert "client.cert and client.key" in r.err

    client = mtls_setup.ca.issue_cert("lockman-client")
    (host_dir / "client.cert").write_bytes(b"".join(c.bytes() for c in client.cert_chain_pems))
    (host_dir / "client.key").write_bytes(client.private_key_pem.bytes())
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert lockfile.read(tmp_path / "xcargo.lock").images[0].digest == digest

    (host_dir / "client.key").unlink()
    r = run("update", "--config", cfg)
    assert r.code == 2 and "client.cert: client certificate without its key client.key" in r.err


# -- proxies -----------------------------------------------------------------------------------------
@pytest.mark.registry
def test_http_proxy_and_no_proxy(tmp_path: Path, registry: Registry, run, monkeypatch) -> None:
    repo = unique_repo("proxy")
    img = registry.push_image(repo, "v1")
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{registry.host}/{repo}:v1"\n')
    proxy = FaultProxy("127.0.0.1", registry.port).start()  # forwards absolute-form requests
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://{proxy.host}")
        monkeypatch.setenv("HTTPS_PROXY", f"http://{proxy.host}")
        monkeypatch.setenv("NO_PROXY", "example.com")
        r = run("update", "--config", cfg)
        assert r.code == 0, r.err
        assert img.digest in (tmp_path / "xcargo.lock").read_text()
        via_proxy = [p for _, p, _ in proxy.requests if p.startswith(f"http://{registry.host}/v2/")]
        assert any("/manifests/v1" in p for p in via_proxy), proxy.requests

        seen = len(proxy.requests)
        for no_proxy in ("127.0.0.1", "127.0.0.0/8", "*"):
            monkeypatch.setenv("NO_PROXY", no_proxy)
            assert run("update", "--config", cfg).code == 0
            assert len(proxy.requests) == seen, no_proxy
    finally:
        proxy.stop()


# -- the system store, loaded early by the `lockman` process -----------------------------------
def _lockman_process(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real console entry point (``python -m lockman``), where the early load happens."""
    return subprocess.run(
        [sys.executable, "-m", "lockman", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost", **env},
        cwd=REPO,
        check=False,
        timeout=60,
    )


@pytest.mark.registry
def test_lockman_process_trusts_ssl_cert_file(tls_setup: TLSSetup) -> None:
    reg = tls_setup.registry
    repo = unique_repo("early")
    digest = reg.push_image(repo, "v1").digest
    env = {"SSL_CERT_FILE": str(tls_setup.ca_pem), "LOCKMAN_CERTS_D": ""}
    p = _lockman_process("resolve", f"{reg.host}/{repo}:v1", env=env)
    assert (p.returncode, p.stdout.strip()) == (0, f"{reg.host}/{repo}:v1@{digest}"), p.stderr
    p = _lockman_process("resolve", f"{reg.host}/{repo}:v1", env={"LOCKMAN_CERTS_D": ""})
    assert p.returncode == 3 and "TLS certificate not trusted" in p.stderr


@pytest.mark.registry
def test_lockman_process_names_a_bad_ca_bundle(tmp_path: Path, tls_setup: TLSSetup) -> None:
    bad = tmp_path / "bundle.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    p = _lockman_process("resolve", f"{tls_setup.registry.host}/x/y:1", env={"SSL_CERT_FILE": str(bad)})
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and f"{bad}: not a usable CA bundle" in p.stderr
    assert "Traceback" not in p.stderr


def _subjects(ctx: ssl.SSLContext) -> set[str]:
    return {str(dict(x[0] for x in c["subject"])) for c in ctx.get_ca_certs()}


def _recording_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    threads: list[str] = []
    real = system_trust._load

    def load(sources: tuple[str, ...]) -> ssl.SSLContext:
        threads.append(threading.current_thread().name)
        return real(sources)

    monkeypatch.setattr(system_trust, "_load", load)
    return threads


def test_early_context_is_handed_out_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trustme

    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    threads = _recording_loads(monkeypatch)
    system_trust.start_early()
    first, second = system_trust.client_context(), system_trust.client_context()
    assert threads == ["lockman-trust", "MainThread"]  # loaded early once, then as before
    assert first is not second  # hosts with certs.d CAs get their own, never a shared one
    assert _subjects(first) == _subjects(second) and len(_subjects(first)) >= 1


def test_early_context_is_dropped_when_the_environment_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trustme

    old, new = tmp_path / "old.pem", tmp_path / "new.pem"
    trustme.CA(organization_name="lockman old test CA").cert_pem.write_to_path(str(old))
    trustme.CA(organization_name="lockman new test CA").cert_pem.write_to_path(str(new))
    monkeypatch.setenv("SSL_CERT_FILE", str(old))
    threads = _recording_loads(monkeypatch)
    system_trust.start_early()
    monkeypatch.setenv("SSL_CERT_FILE", str(new))
    ctx = system_trust.client_context()
    names = " ".join(_subjects(ctx))
    assert "lockman new test CA" in names and "lockman old test CA" not in names
    assert threads[-1] == "MainThread"


def test_early_failure_is_reported_by_the_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(bad))
    system_trust.start_early()
    with pytest.raises(InputError, match=f"{bad}: not a usable CA bundle"):
        system_trust.client_context()


def test_missing_ssl_cert_file_is_ignored_as_openssl_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-bundle.pem"))
    system_trust.start_early()
    early = system_trust.client_context()
    late = system_trust.client_context()
    assert isinstance(early, ssl.SSLContext) and isinstance(late, ssl.SSLContext)
