"""Where a request goes: registries.conf endpoint order with mirror fallback, and how many at once.

As ggcr splits endpoints from fetching (and containers/image's ``pkg/sysregistriesv2`` orders
mirrors before the location): mirrors are asked first, in order; one that cannot help hands
over to the next, and the primary location's answer is final. Requests in flight are bounded
per host, more where HTTP/2 multiplexes one connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import httpx

from lockman.errors import RegistryError
from lockman.model.reference import Reference
from lockman.registry.hosts import insecure_for_run, plain_http_allowed
from lockman.registry.registries_conf import Endpoint, RegistriesConf

DEFAULT_CONCURRENCY = 16  # requests in flight per registry over HTTP/1.1 (one connection each)
DEFAULT_H2_CONCURRENCY = 64  # streams in flight on a registry's one HTTP/2 connection

log = logging.getLogger("lockman.endpoints")

# Sends the request to one endpoint's reference; ``retry`` is False for a mirror (the next
# endpoint is the better retry).
SendTo = Callable[[Reference, bool], Awaitable[httpx.Response]]


class Endpoints:
    """The endpoint order and per-host limits for one run."""

    def __init__(self, registries: RegistriesConf, concurrency: int | None) -> None:
        self._registries = registries
        self._concurrency = concurrency
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._warned: set[str] = set()

    def is_insecure(self, host: str) -> bool:
        """Marked insecure in registries.conf, or by ``--insecure-registry`` for this run."""
        return insecure_for_run(host) or self._registries.is_insecure(host)

    def plain_http_ok(self, host: str) -> bool:
        """Loopback registries (as docker allows) and those marked insecure."""
        return plain_http_allowed(host, self.is_insecure(host))

    def endpoints(self, ref: Reference) -> list[Endpoint]:
        """Where to ask for ``ref``: registries.conf mirrors in order, then its location."""
        return self._registries.endpoints(ref)

    def set_limit(self, host: str, http_version: str) -> None:
        """Bound requests in flight to this registry; HTTP/2 multiplexes one connection, so more."""
        default = DEFAULT_H2_CONCURRENCY if http_version == "HTTP/2" else DEFAULT_CONCURRENCY
        self._limits[host] = asyncio.Semaphore(self._concurrency or default)

    def limit(self, host: str) -> asyncio.Semaphore:
        sem = self._limits.get(host)
        if sem is None:
            sem = self._limits[host] = asyncio.Semaphore(self._concurrency or DEFAULT_CONCURRENCY)
        return sem

    async def first_useful(self, ref: Reference, send: SendTo) -> httpx.Response:
        """Send to the first endpoint (mirror or location) that answers usefully.

        A mirror that cannot be reached, refuses us, fails or lacks the content hands over to
        the next endpoint; the primary location's answer (or error) is final.
        """
        endpoints = self.endpoints(ref)
        for ep in endpoints[:-1]:
            try:
                response = await send(ep.ref, False)
            except RegistryError as e:
                self._mirror_failed(ref, ep, str(e), None)
                continue
            if not _try_next_endpoint(response.status_code):
                return response
            await response.aclose()
            self._mirror_failed(ref, ep, f"HTTP {response.status_code}", response.status_code)
        return await send(endpoints[-1].ref, True)

    def _mirror_failed(self, ref: Reference, ep: Endpoint, why: str, status: int | None) -> None:
        """A mirror without the image is routine (debug); any other failure is said once per host."""
        if status == 404:
            log.debug("mirror %s does not have %s; trying the next location", ep.host, ref.familiar())
            return
        if ep.host not in self._warned:
            self._warned.add(ep.host)
            log.warning("mirror %s for %s failed (%s); using the next location", ep.host, ref.registry, why)


def _try_next_endpoint(status: int) -> bool:
    """Statuses after which a mirror hands over to the next location."""
    return status in (401, 403, 404, 408, 429) or status >= 500
