"""First contact with a registry: ``GET /v2/`` once, to learn its scheme and auth challenge.

As ggcr's ``remote/transport/ping.go``: every request to a registry waits for its one ping,
which picks HTTPS (or plain HTTP, where allowed, when HTTPS fails) and hands the answer on
(the challenge to auth, the HTTP version to the per-host limit).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx

from lockman.errors import RegistryError
from lockman.registry import tls
from lockman.registry.responses import HandshakeFailed, registry_name

Send = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Pinger:
    """One ping per registry per run; concurrent first requests share it."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        send: Send,
        plain_http_ok: Callable[[str], bool],
        contacted: Callable[[str, httpx.Response], None],
    ) -> None:
        self.http = http
        self._send_raw = send
        self._plain_http_ok = plain_http_ok
        self._contacted = contacted  # told the ping's answer: auth learns, limits are set
        self._bases: dict[str, asyncio.Task[str]] = {}

    async def base(self, host: str) -> str:
        """Ping ``/v2/`` once per registry; learn its scheme and auth challenge."""
        task = self._bases.get(host)
        if task is None:
            task = asyncio.ensure_future(self._ping(host))
            self._bases[host] = task
        return await asyncio.shield(task)

    async def _ping(self, host: str) -> str:
        schemes = ["https", "http"] if self._plain_http_ok(host) else ["https"]
        first_error: RegistryError | None = None
        for scheme in schemes:
            base = f"{scheme}://{host}"
            try:
                response = await self._send_raw(self.http.build_request("GET", f"{base}/v2/"))
            except RegistryError as e:
                # After a TLS handshake failure (a plain-HTTP server), the HTTP error says more.
                if first_error is None or isinstance(first_error, HandshakeFailed):
                    first_error = e
                continue
            if response.status_code in (200, 401) or (
                response.status_code < 500 and "docker-distribution-api-version" in response.headers
            ):
                self._contacted(host, response)
                return base
            if scheme == "http" and first_error is not None:
                break
            first_error = first_error or RegistryError(
                f"not a registry: GET /v2/ answered HTTP {response.status_code}",
                registry=registry_name(host),
                status=response.status_code,
            )
        assert first_error is not None
        if "http" not in schemes and isinstance(first_error, HandshakeFailed) and first_error.plain_http:
            raise RegistryError(
                f"{first_error.message}; {tls.plain_http_hint(host)}", registry=first_error.registry
            )
        raise first_error

    def close(self) -> None:
        for task in self._bases.values():
            task.cancel()
