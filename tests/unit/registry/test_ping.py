"""Pinger: one ``GET /v2/`` per registry, HTTPS first, plain HTTP only where allowed.

A scripted ``httpx.MockTransport`` stands in for registries that refuse TLS, answer like a
web server, or are asked by many requests at once: what a real docker-registry will not do.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

import httpx
import pytest

from lockman.errors import RegistryError
from lockman.registry import tls
from lockman.registry.ping import Pinger
from lockman.registry.responses import network_error
from tests.support.fake_registry import API_HEADERS

HOST = "registry.test"
Handler = Callable[[httpx.Request], httpx.Response]


def ping(handler: Handler, *, plain_http_ok: bool = False, times: int = 1) -> tuple[list[str], list[str], list[str]]:
    """Ping HOST ``times`` times at once: the bases, the requests made, the contacts reported."""
    seen: list[str] = []
    contacted: list[str] = []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.url.scheme}://{request.url.netloc.decode()}{request.url.path}")
        return handler(request)

    async def go() -> list[str]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(recording)) as http:

            async def send(request: httpx.Request) -> httpx.Response:
                try:
                    return await http.send(request)
                except httpx.HTTPError as e:  # as RegistryClient._send_raw maps them
                    raise network_error(request.url.netloc.decode(), e) from None

            pinger = Pinger(http, send, lambda host: plain_http_ok, lambda h, r: contacted.append(f"{h} {r.status_code}"))
            try:
                return list(await asyncio.gather(*(pinger.base(HOST) for _ in range(times))))
            finally:
                pinger.close()

    return asyncio.run(go()), seen, contacted


def refuse_tls(answer: httpx.Response, reason: str | None = None) -> Handler:
    """HTTPS fails (a TLS failure with OpenSSL's ``reason``, else a refused connection); HTTP answers."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            if reason is None:
                raise httpx.ConnectError("connection refused")
            cause = ssl.SSLError(1, "handshake failed")
            cause.reason = reason  # type: ignore[misc]
            raise httpx.ConnectError("handshake failed") from cause
        return answer

    return handler


def test_https_answer_is_the_base_and_is_handed_on() -> None:
    bases, seen, contacted = ping(lambda r: httpx.Response(401, headers=API_HEADERS))
    assert bases == [f"https://{HOST}"]
    assert seen == [f"https://{HOST}/v2/"]
    assert contacted == [f"{HOST} 401"]  # the challenge goes to auth, the version to the limits


def test_many_first_requests_share_one_ping() -> None:
    bases, seen, contacted = ping(lambda r: httpx.Response(200, headers=API_HEADERS), times=5)
    assert bases == [f"https://{HOST}"] * 5
    assert seen == [f"https://{HOST}/v2/"] and contacted == [f"{HOST} 200"]


def test_plain_http_where_allowed_when_https_fails() -> None:
    bases, seen, _ = ping(refuse_tls(httpx.Response(200, headers=API_HEADERS)), plain_http_ok=True)
    assert bases == [f"http://{HOST}"]
    assert seen == [f"https://{HOST}/v2/", f"http://{HOST}/v2/"]


def test_no_plain_http_where_not_allowed() -> None:
    with pytest.raises(RegistryError, match="cannot connect: connection refused") as caught:
        ping(refuse_tls(httpx.Response(200, headers=API_HEADERS)))
    assert caught.value.registry == HOST


def test_a_plain_http_server_gets_a_hint_where_plain_http_is_not_allowed() -> None:
    with pytest.raises(RegistryError) as caught:
        ping(refuse_tls(httpx.Response(200), reason="WRONG_VERSION_NUMBER"))
    assert str(caught.value) == f"{HOST}: cannot connect: handshake failed; {tls.plain_http_hint(HOST)}"


def test_a_web_server_is_not_a_registry() -> None:
    """Not 200/401, and no Docker-Distribution-Api-Version header: the status is kept as a field."""
    with pytest.raises(RegistryError) as caught:
        ping(lambda r: httpx.Response(404))
    e = caught.value
    assert (type(e), e.status, e.registry) == (RegistryError, 404, HOST)
    assert str(e) == f"{HOST}: not a registry: GET /v2/ answered HTTP 404"


def test_a_registry_that_404s_its_ping_still_counts() -> None:
    bases, _, contacted = ping(lambda r: httpx.Response(404, headers=API_HEADERS))
    assert bases == [f"https://{HOST}"] and contacted == [f"{HOST} 404"]


def test_after_a_tls_failure_the_plain_http_failure_is_the_error() -> None:
    """HTTPS failed its handshake (a plain-HTTP server, maybe) and HTTP failed too: the HTTP
    failure says more than the handshake error."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "http":
            raise httpx.ReadTimeout("no answer")
        return refuse_tls(httpx.Response(200), reason="WRONG_VERSION_NUMBER")(request)

    with pytest.raises(RegistryError, match=r"^registry.test: timed out \(no answer\)$"):
        ping(handler, plain_http_ok=True)


def test_a_failing_plain_http_answer_keeps_the_https_error() -> None:
    with pytest.raises(RegistryError, match=r"^registry.test: cannot connect: connection refused$"):
        ping(refuse_tls(httpx.Response(500)), plain_http_ok=True)
