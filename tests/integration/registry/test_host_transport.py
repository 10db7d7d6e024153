"""Which connections a burst of requests to a TLS host opens: side by side for an HTTP/1.1-only
server, one multiplexed connection for an HTTP/2 one (the real docker-registry)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from pathlib import Path

import httpx
import pytest
import trustme

from lockman.registry.host_transport import HostTransport
from tests.support.listener import ConnectProxy, CountingRelay
from tests.support.listener import Listener as _Listener
from tests.support.registry import TLSSetup

BURST = 4


class HeldHandshakes(_Listener):
    """A TLS server that speaks only HTTP/1.1 and holds every handshake after the first until
    ``BURST - 1`` of them wait together (or 3 s pass): ``most_waiting`` is how many connections
    the client had opened side by side while none of them was usable yet."""

    def __init__(self, ca: trustme.CA) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1").configure_cert(self.ctx)
        self.ctx.set_alpn_protocols(["http/1.1"])
        self.cond = threading.Condition()
        self.connections = 0
        self.waiting = 0
        self.most_waiting = 0
        self.released = False
        self.requests = 0
        super().__init__()

    def accepted(self, sock: socket.socket) -> None:
        with self.cond:
            self.connections += 1
            first = self.connections == 1
        if not first:
            with self.cond:
                self.waiting += 1
                self.most_waiting = max(self.most_waiting, self.waiting)
                self.cond.notify_all()
                self.cond.wait_for(lambda: self.waiting >= BURST - 1 or self.released, timeout=3)
                self.released = True  # the burst is in: let everyone through
                self.waiting -= 1
        try:
            with self.ctx.wrap_socket(sock, server_side=True) as tls, tls.makefile("rb") as rfile:
                while True:
                    line = rfile.readline()
                    if not line:
                        return
                    while rfile.readline() not in (b"\r\n", b""):
                        pass
                    with self.cond:
                        self.requests += 1
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except (OSError, ssl.SSLError):
            return


def _burst(url: str, n: int = BURST) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        async with httpx.AsyncClient(transport=HostTransport(http2=True, limits=limits)) as client:
            return await asyncio.gather(*(client.get(f"{url}/{i}") for i in range(n)))

    return asyncio.run(go())


def test_http11_only_tls_server_gets_its_connections_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    monkeypatch.setenv("LOCKMAN_CERTS_D", "")
    server = HeldHandshakes(ca)
    try:
        responses = _burst(f"https://127.0.0.1:{server.port}")
    finally:
        server.close()
    assert [(r.status_code, r.http_version) for r in responses] == [(200, "HTTP/1.1")] * BURST
    assert server.requests == BURST
    # One connection first (to learn the protocol), then the rest opened together; before, each
    # waited for the previous one's handshake, so at most one was ever waiting.
    assert server.most_waiting == BURST - 1


@pytest.mark.registry
def test_http2_registry_burst_shares_one_connection(tls_setup: TLSSetup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_setup.ca_pem))
    monkeypatch.setenv("LOCKMAN_CERTS_D", "")
    relay = CountingRelay(tls_setup.registry.port)
    try:
        responses = _burst(f"https://127.0.0.1:{relay.port}/v2", n=16)
    finally:
        relay.close()
    assert {(r.status_code, r.http_version) for r in responses} == {(404, "HTTP/2")}
    assert relay.connections == 1


def _burst_within(url: str, n: int, seconds: float = 20) -> list[httpx.Response | BaseException]:
    """Like :func:`_burst`, but a request still waiting after ``seconds`` fails the test."""

    async def go() -> list[httpx.Response | BaseException]:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        async with httpx.AsyncClient(transport=HostTransport(http2=True, limits=limits)) as client:
            burst = asyncio.gather(*(client.get(f"{url}/{i}") for i in range(n)), return_exceptions=True)
            return await asyncio.wait_for(burst, seconds)

    return asyncio.run(go())


@pytest.mark.registry
def test_https_through_a_connect_proxy_sends_the_whole_burst(
    tls_setup: TLSSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No ALPN callback through a proxy: the first answer must release the others.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_setup.ca_pem))
    monkeypatch.setenv("LOCKMAN_CERTS_D", "")
    proxy = ConnectProxy()
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    try:
        responses = _burst_within(f"https://{tls_setup.registry.host}/v2", n=8)
    finally:
        proxy.close()
    assert all(isinstance(r, httpx.Response) and r.status_code == 404 for r in responses), responses
    assert proxy.tunnels and set(proxy.tunnels) == {tls_setup.registry.host}


def test_a_failed_first_contact_releases_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKMAN_CERTS_D", "")
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]  # closed again: nothing listens there
    results = _burst_within(f"https://127.0.0.1:{port}", n=BURST)
    assert [type(r) for r in results] == [httpx.ConnectError] * BURST
