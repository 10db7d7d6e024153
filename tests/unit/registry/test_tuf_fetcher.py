"""The TUF refresh goes over lockman's transport: its CAs, its proxies, its timeouts and caps.

A real TUF repository (tests/support/tuf_repo.py) served over TLS by a private CA, directly or
through an HTTP CONNECT proxy named by HTTPS_PROXY; a server that never ends a body.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import trustme
from tuf.api.exceptions import DownloadError, DownloadLengthMismatchError

from lockman.registry.trust_update import fetch_trusted_root
from lockman.registry.tuf_fetcher import TransportFetcher
from tests.support.listener import ConnectProxy, Listener
from tests.support.tuf_repo import Endless, TufRepo, serve

DOC = json.dumps({"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}).encode()


@pytest.fixture
def repo(tmp_path: Path) -> TufRepo:
    r = TufRepo(tmp_path / "repo")
    r.add_target("trusted_root.json", DOC)
    return r


@pytest.fixture
def ca(tmp_path: Path) -> trustme.CA:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "private-ca.pem"))
    return ca


def _refresh(url: str, repo: TufRepo, tmp_path: Path, **kw: float):
    return fetch_trusted_root(url, cache_dir=tmp_path / "cache", bootstrap_root=repo.root_bytes(), **kw)


def test_private_ca_from_ssl_cert_file(repo: TufRepo, ca: trustme.CA, tmp_path: Path, monkeypatch) -> None:
    with serve(repo.dir, tls=ca) as url:
        untrusted = _refresh(url, repo, tmp_path)
        assert untrusted.data is None and untrusted.warning is not None
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.warning
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "private-ca.pem"))
        got = _refresh(url, repo, tmp_path)
    assert got.warning is None and got.data == DOC


def test_private_ca_from_certs_d(repo: TufRepo, ca: trustme.CA, tmp_path: Path, monkeypatch) -> None:
    """The per-host CA directory registries use (docker's and podman's certs.d) serves the TUF
    mirror on that host too; python-tuf's own fetcher knew nothing of it."""
    with serve(repo.dir, tls=ca) as url:
        host = url.removeprefix("https://")
        (tmp_path / "certs.d" / host).mkdir(parents=True)
        ca.cert_pem.write_to_path(str(tmp_path / "certs.d" / host / "ca.crt"))
        monkeypatch.setenv("LOCKMAN_CERTS_D", str(tmp_path / "certs.d"))
        got = _refresh(url, repo, tmp_path)
    assert got.warning is None and got.data == DOC


def test_through_the_connect_proxy_of_https_proxy(repo: TufRepo, ca: trustme.CA, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "private-ca.pem"))
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    proxy = ConnectProxy()
    try:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        with serve(repo.dir, tls=ca) as url:
            got = _refresh(url, repo, tmp_path)
            host = url.removeprefix("https://")
            assert got.warning is None and got.data == DOC
            assert proxy.tunnels and set(proxy.tunnels) == {host}
            # NO_PROXY as lockman reads it for registries (a CIDR range here) bypasses the proxy.
            tunnels = len(proxy.tunnels)
            monkeypatch.setenv("NO_PROXY", "127.0.0.0/8")
            again = _refresh(url, repo, tmp_path)
            assert again.warning is None and len(proxy.tunnels) == tunnels
    finally:
        proxy.close()


def test_an_endless_metadata_body_is_cut_off(repo: TufRepo, tmp_path: Path) -> None:
    """python-tuf's length limit for timestamp.json stops the download as it streams in, and the
    connection is dropped: the server gets to send little more than the limit."""
    endless = Endless(paths=("/timestamp.json",))
    started = time.monotonic()
    with serve(repo.dir, endless=endless) as url:
        got = _refresh(url, repo, tmp_path)
    assert got.data is None and got.warning is not None
    assert "too large" in got.warning and "DownloadLengthMismatchError" in got.warning
    assert time.monotonic() - started < 20
    assert endless.sent < 64 * 1024 * 1024  # kernel buffers aside, far from the 1 GiB on offer


def test_lockmans_own_cap_holds_whatever_python_tuf_allows(repo: TufRepo) -> None:
    endless = Endless(paths=("/timestamp.json",))
    with serve(repo.dir, endless=endless) as url, TransportFetcher(timeout=5, cap=256 * 1024) as fetcher:
        with pytest.raises(DownloadLengthMismatchError, match=r"over the 262144-byte limit"):
            fetcher.download_bytes(f"{url}/timestamp.json", max_length=1 << 30)
        assert fetcher.download_bytes(f"{url}/1.root.json", 1 << 20) == repo.root_bytes()


class _Drip(Listener):
    """An HTTP server that sends its headers, then one byte of body every 0.2 s."""

    def accepted(self, sock: socket.socket) -> None:
        sock.recv(4096)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
        for _ in range(200):
            sock.sendall(b"{")
            time.sleep(0.2)


def test_a_trickled_body_meets_the_whole_body_deadline() -> None:
    """Each byte comes well within the read timeout; the body as a whole must still end in time
    (lockman's deadline for a body, not only python-tuf's gap timeout)."""
    drip = _Drip()
    try:
        with TransportFetcher(timeout=1, cap=16 * 1024) as fetcher:
            started = time.monotonic()
            with pytest.raises(DownloadError, match=r"ReadTimeout: body not complete within"):
                fetcher.download_bytes(f"http://127.0.0.1:{drip.port}/timestamp.json", max_length=1 << 20)
            assert time.monotonic() - started < 10
    finally:
        drip.close()
