"""One httpx transport per (scheme, host): that host's TLS trust, client certificate and proxy.

httpx fixes TLS settings and proxies per client, but registries differ: one has a private CA in
``certs.d``, one wants a client certificate, one is ``insecure`` in registries.conf, one sits
behind ``NO_PROXY``. This transport creates the right ``httpx.AsyncHTTPTransport`` the first
time a host is contacted and reuses it (and its keep-alive connections) afterwards.

Blob bodies go over separate HTTP/1.1 connections (a request carrying the :data:`BULK`
extension): over HTTP/2, httpcore moves a large body in 16 KiB frames with Python-level flow
control, at a third of the rate one HTTP/1.1 connection per blob reaches (``benchmarks/pull.py``).
Manifests and other small requests stay multiplexed on the host's HTTP/2 connection. Without a
proxy, the HTTP/2 pools run on :mod:`lockman.registry.network_backend` (asyncio's transports,
large reads), and the HTTP/1.1 ones (blobs; everything when HTTP/2 is off or the host does not
speak it) are :class:`~lockman.registry.bulk_http11.BulkConnectionPool`: asyncio's TLS decrypts
straight into one buffer per connection and a ``Content-Length`` body reaches the hasher in MiB
with one copy, where h11 and httpcore made five or six. Through a proxy, httpx and httpcore do
everything as they come.

A TLS host that does not speak HTTP/2 (token servers often, registries behind some proxies)
would open its connections one at a time: httpcore's HTTP/2-capable pool queues every request
behind a connection whose handshake is under way, in case it turns out to multiplex. So the
first request to a TLS host goes alone; the others wait for its handshake (or its answer) and
then go to the host's HTTP/2 connection, or, when the server chose HTTP/1.1, to a pool that
opens connections side by side. Seven token requests through a 20 ms link took 190 ms before,
one handshake after the other (``benchmarks/resolve.py``, token auth).

Proxies follow the usual environment: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` (either
case) and ``NO_PROXY`` (host names, ``.domain`` suffixes, IP addresses, CIDR ranges, ``*``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import urllib.request
from collections.abc import Callable

import httpcore
import httpx

from lockman.console import register_secret
from lockman.registry.bulk_http11 import BulkConnectionPool
from lockman.registry.hosts import host_only
from lockman.registry.network_backend import AsyncioBackend
from lockman.registry.tls import HostCerts, build_context, host_certs

log = logging.getLogger("lockman.transport")

BULK = "lockman.bulk"  # request extension: a blob body, sent over HTTP/1.1


def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy URL the environment asks for when talking to ``scheme://host``, if any."""
    proxies = urllib.request.getproxies_environment()
    url = proxies.get(scheme) or proxies.get("all")
    if not url:
        return None
    if _bypassed(host, proxies.get("no", "")):
        return None
    url = url if "://" in url else f"http://{url}"
    password = httpx.URL(url).password
    if password:
        register_secret(password)
    return url


def _bypassed(host: str, no_proxy: str) -> bool:
    if not no_proxy:
        return False
    # Undocumented in typeshed, but the very function urllib uses for no_proxy.
    if urllib.request.proxy_bypass_environment(host, {"no": no_proxy}):  # type: ignore[attr-defined]
        return True
    try:
        address = ipaddress.ip_address(host_only(host))
    except ValueError:
        return False
    for entry in no_proxy.split(","):
        entry = entry.strip()
        if "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


class HostTransport(httpx.AsyncBaseTransport):
    """Dispatch each request to the transport built for its scheme and host."""

    def __init__(
        self,
        *,
        http2: bool,
        limits: httpx.Limits,
        insecure: Callable[[str], bool] = lambda host: False,
    ) -> None:
        self._http2 = http2
        self._limits = limits
        self._insecure = insecure
        self._transports: dict[tuple[str, str, bool], httpx.AsyncHTTPTransport] = {}
        self._contexts: dict[tuple[HostCerts, bool], ssl.SSLContext] = {}
        self._speaks_h2: dict[str, bool] = {}  # TLS host -> whether its server chose HTTP/2
        self._first_contact: dict[str, asyncio.Event] = {}  # TLS host -> set once the above is known

    def _ssl_context(self, host: str) -> ssl.SSLContext:
        """Hosts with the same certs.d content (usually none) share one context."""
        key = (host_certs(host), self._insecure(host))
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._contexts[key] = build_context(key[0], key[1], host)
        return ctx

    def transport_for(self, url: httpx.URL, bulk: bool = False) -> httpx.AsyncHTTPTransport:
        scheme, host = url.scheme, url.netloc.decode("ascii")
        http2 = self._http2 and not bulk and self._speaks_h2.get(host, True)
        key = (scheme, host, http2)
        transport = self._transports.get(key)
        if transport is None:
            transport = self._transports[key] = self._new_transport(scheme, host, http2)
        return transport

    def _new_transport(self, scheme: str, host: str, http2: bool) -> httpx.AsyncHTTPTransport:
        proxy = proxy_for(scheme, host)
        if proxy:
            log.debug("%s: via proxy %s", host, httpx.URL(proxy).copy_with(username=None, password=None))
        # Plain HTTP needs no trust, but httpx builds a default context (loading a CA bundle)
        # unless given one: reuse the host's cached context instead. The HTTP/1.1 (blob) pool
        # shares it with the HTTP/2 one; httpcore sets the context's ALPN list just before each
        # handshake, so at worst a connection speaks the other version, never anything unsafe.
        ctx = self._ssl_context(host)
        transport = httpx.AsyncHTTPTransport(
            verify=ctx, http2=http2, limits=self._limits, proxy=proxy, trust_env=False
        )
        if proxy is None and isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
            limits = self._limits
            if not http2:  # blob bodies (and everything else when HTTP/2 is off or not spoken)
                transport._pool = BulkConnectionPool(
                    ssl_context=ctx,
                    max_connections=limits.max_connections,
                    max_keepalive_connections=limits.max_keepalive_connections,
                    keepalive_expiry=limits.keepalive_expiry,
                )
                return transport
            transport._pool = httpcore.AsyncConnectionPool(
                ssl_context=ctx,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                http1=True,
                http2=http2,
                network_backend=AsyncioBackend(on_tls=lambda alpn: self._learn(host, alpn == "h2")),
            )
        return transport

    def _learn(self, host: str, h2: bool) -> None:
        """The first handshake (or answer) from ``host`` says which protocol it speaks."""
        if host not in self._speaks_h2:
            self._speaks_h2[host] = h2
            if not h2:
                log.debug("%s: no HTTP/2 over TLS; HTTP/1.1 connections side by side", host)
        event = self._first_contact.get(host)
        if event is not None:
            event.set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        bulk = bool(request.extensions.get(BULK))
        url = request.url
        if bulk or not self._http2 or url.scheme != "https":
            return await self.transport_for(url, bulk).handle_async_request(request)
        host = url.netloc.decode("ascii")
        if host not in self._speaks_h2:
            event = self._first_contact.get(host)
            if event is None:  # this request opens the host's first connection
                self._first_contact[host] = asyncio.Event()
                response: httpx.Response | None = None
                try:
                    response = await self.transport_for(url).handle_async_request(request)
                    return response
                finally:  # a proxied or failed first contact tells no ALPN: go on regardless
                    if response is not None:
                        self._learn(host, response.extensions.get("http_version") == b"HTTP/2")
                    else:
                        self._first_contact[host].set()
            await event.wait()
        return await self.transport_for(url).handle_async_request(request)

    async def aclose(self) -> None:
        for t in self._transports.values():
            await t.aclose()
        self._transports.clear()
