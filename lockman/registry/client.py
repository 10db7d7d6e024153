"""The OCI distribution client: ping, resolve tags, fetch manifests by digest.

One ``httpx.AsyncClient`` per run (keep-alive, HTTP/2 where offered), a concurrency bound per
registry, one ping per registry, and every manifest fetched by digest hashed byte-for-byte.
Resolution costs one HEAD per reference; a GET happens only when the caller needs the body.

:class:`RegistryClient` composes the parts, split as ggcr's ``remote/transport`` is: ping.py
(first contact, scheme), endpoints.py (mirrors, per-host limits), auth.py, retry.py,
responses.py (answer → error) and fetch.py (manifests, blobs, referrers); here are the
sending itself, request counts, quota warnings and token prefetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import TYPE_CHECKING

import httpx

from lockman import env
from lockman.errors import AuthError, LockmanError, NotFound, RegistryError, TooLarge
from lockman.model.manifest import MAX_MANIFEST_BYTES, Descriptor, Manifest
from lockman.model.reference import Reference
from lockman.registry import ratelimit
from lockman.registry.auth import SCOPE, RegistryAuth
from lockman.registry.bodies import IDENTITY, UnsupportedEncoding
from lockman.registry.credentials import CredentialStore
from lockman.registry.endpoints import Endpoints
from lockman.registry.fetch import Fetcher, Resolved
from lockman.registry.host_transport import BULK, HostTransport
from lockman.registry.ping import Pinger
from lockman.registry.registries_conf import Endpoint, RegistriesConf
from lockman.registry.responses import (
    NETWORK_ERRORS,
    HandshakeFailed,
    RangeNotSatisfiable,
    answered_by,
    network_error,
    registry_name,
)
from lockman.registry.retry import BodyTooLarge, GaveUp, Retrier, RetryPolicy

if TYPE_CHECKING:
    from lockman.registry.cache import ManifestCache

_network_error = network_error  # where it lived before lockman.registry.responses
__all__ = [
    "NETWORK_ERRORS",
    "HandshakeFailed",
    "NotFound",
    "RangeNotSatisfiable",
    "RegistryClient",
    "Resolved",
]
TOKEN_SCOPES_PER_REQUEST = 32  # keeps a batched token (sent on every request) well under 8 KiB
DEFAULT_TIMEOUT = 30.0
USER_AGENT = "lockman"

log = logging.getLogger("lockman.client")


def configured_concurrency() -> int | None:
    """``LOCKMAN_CONCURRENCY`` when set to a positive integer, else None (protocol default)."""
    value: int | None = env.get("LOCKMAN_CONCURRENCY")
    return value


def http2_enabled() -> bool:
    """HTTP/2 on TLS registries unless ``LOCKMAN_HTTP2=0`` (for comparison, or a broken middlebox)."""
    return env.get("LOCKMAN_HTTP2") is not False


class RegistryClient:
    """Async registry client; use as ``async with RegistryClient() as c:``."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        concurrency: int | None = None,
        credentials: CredentialStore | None = None,
        http2: bool | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        registries: RegistriesConf | None = None,
        cache: ManifestCache | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._timeout = timeout
        self.retrier = Retrier(timeout, retry or RetryPolicy.from_env())
        self._concurrency = concurrency or configured_concurrency()
        self._credentials = credentials or CredentialStore()
        self._http2 = http2_enabled() if http2 is None else http2
        self._transport = transport
        self._registries = registries
        self._warned: set[str] = set()
        self._fetch = Fetcher(self._request, timeout, cache, self._has_credentials)
        self._http: httpx.AsyncClient | None = None
        self.requests: Counter[str] = Counter()
        self.auth: RegistryAuth
        self.pinger: Pinger
        self._endpoints: Endpoints

    async def __aenter__(self) -> RegistryClient:
        if self._http2:
            from lockman.registry import http2

            http2.install()
        self._endpoints = Endpoints(self._registries or RegistriesConf.load(), self._concurrency)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        # Per-host TLS trust, client certificates and proxies (see host_transport.py).
        transport = self._transport or HostTransport(
            http2=self._http2, limits=limits, insecure=self._endpoints.is_insecure
        )
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout),
            http2=self._http2,
            follow_redirects=True,
            transport=transport,
            limits=limits,
            # identity: digests are over stored bytes, and caps then count what is decoded.
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": IDENTITY},
            trust_env=False,  # proxies and CA variables are honoured by HostTransport
        )
        plain_http_ok = self._endpoints.plain_http_ok
        self.auth = RegistryAuth(self._credentials, self._send_raw, plain_http_ok, registry_name)
        self.pinger = Pinger(self._http, self._send_raw, plain_http_ok, self._contacted)
        return self

    def endpoints(self, ref: Reference) -> list[Endpoint]:
        """Where to ask for ``ref``: registries.conf mirrors in order, then its location."""
        return self._endpoints.endpoints(ref)

    def is_insecure(self, host: str) -> bool:
        """Marked insecure (registries.conf, ``--insecure-registry``): what an engine that
        pulls from ``host`` after lockman must be told too."""
        return self._endpoints.is_insecure(host)

    def plain_http_ok(self, host: str) -> bool:
        """Plain HTTP or unverified TLS allowed: loopback (as docker allows) or insecure."""
        return self._endpoints.plain_http_ok(host)

    def _has_credentials(self, response: httpx.Response) -> bool:
        registry = answered_by(response)
        try:
            return self._credentials.get(registry) is not None
        except LockmanError:
            return False

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            self.pinger.close()
            await self._http.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        assert self._http is not None, "use RegistryClient as an async context manager"
        return self._http

    # -- transport ---------------------------------------------------------------------------
    async def _send_raw(self, request: httpx.Request) -> httpx.Response:
        """Send without registry auth (pings, token requests), mapping network errors.

        A POST (the OAuth2 refresh-token grant) is not redirected: a 307 would re-send its body,
        the identity token, to wherever the ``Location`` points.
        """
        host = request.url.netloc.decode("ascii")
        self.requests[host] += 1
        request.headers.setdefault("Accept-Encoding", IDENTITY)  # token requests are built bare
        registry = registry_name(host)
        try:
            return await self.retrier.send(self.http, request, follow_redirects=request.method != "POST")
        except GaveUp as e:
            raise network_error(host, e.error, attempts=e.attempts) from None
        except NETWORK_ERRORS as e:
            raise network_error(host, e) from None
        except BodyTooLarge as e:
            raise RegistryError(f"answer to {request.url.path} is {e}", registry=registry) from None
        except UnsupportedEncoding as e:
            raise RegistryError(f"answer to {request.url.path} {e}", registry=registry) from None

    def _contacted(self, host: str, ping: httpx.Response) -> None:
        self.auth.learn(host, ping)
        self._endpoints.set_limit(host, ping.http_version)

    async def _request(
        self,
        method: str,
        ref: Reference,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        limit: int | None = MAX_MANIFEST_BYTES,
        bulk: bool = False,
    ) -> httpx.Response:
        """Send to the first endpoint (mirror or location) that answers usefully (endpoints.py)."""

        async def at(where: Reference, retry: bool) -> httpx.Response:
            return await self._request_at(
                method, where, path, headers=headers, stream=stream, limit=limit, retry=retry, bulk=bulk
            )

        return await self._endpoints.first_useful(ref, at)

    async def _request_at(
        self,
        method: str,
        ref: Reference,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        limit: int | None = MAX_MANIFEST_BYTES,
        retry: bool = True,
        bulk: bool = False,
    ) -> httpx.Response:
        host = ref.api_host
        base = await self.pinger.base(host)
        request = self.http.build_request(
            method,
            f"{base}/v2/{ref.repository}/{path}",
            headers=headers,
            extensions={SCOPE: ref.scope("pull"), **({BULK: True} if bulk else {})},
        )
        async with self._endpoints.limit(host):
            self.requests[host] += 1
            try:
                response = await self.retrier.send(
                    self.http, request, auth=self.auth, stream=stream, limit=limit, retry=retry
                )
            except AuthError:
                raise
            except GaveUp as e:
                raise network_error(host, e.error, ref, attempts=e.attempts) from None
            except NETWORK_ERRORS as e:
                raise network_error(host, e, ref) from None
            except BodyTooLarge as e:
                what = "declares" if e.declared else "sent more than"
                raise TooLarge(
                    f"manifest {what} {e.size if e.declared else e.limit} bytes, "
                    f"over the {e.limit}-byte limit",
                    subject=ref.familiar(),
                ) from None
            except UnsupportedEncoding as e:
                raise RegistryError(
                    f"registry {e}", subject=ref.familiar(), registry=registry_name(host)
                ) from None
        # Count the auth round trips that happened inside the flow.
        self.requests[host] += len(response.history)
        self._observe_quota(host, response)
        return response

    def _observe_quota(self, host: str, response: httpx.Response) -> None:
        """Warn once per run when Docker Hub says few pulls are left in its window."""
        if not ratelimit.is_docker_hub(host) or f"quota:{host}" in self._warned:
            return
        q = ratelimit.quota(response.headers)
        if q is not None and q.low and response.status_code != 429:
            self._warned.add(f"quota:{host}")
            said = ratelimit.low_quota_warning(registry_name(host), q, self._has_credentials(response))
            log.warning("%s", said)

    async def prefetch_tokens(self, refs: list[Reference]) -> None:
        """Ping every registry and fetch its tokens up front, all in parallel.

        Repositories are batched, up to ``TOKEN_SCOPES_PER_REQUEST`` scopes per token request:
        one round trip instead of one per repository, while the token (sent with every request)
        stays small enough for proxies' header limits. Best effort: a failure here is reported by
        the request that meets it, with its reference.
        """
        by_host: dict[str, dict[str, None]] = {}
        for r in refs:
            try:
                first = self.endpoints(r)[0].ref
            except LockmanError:
                continue
            by_host.setdefault(first.api_host, {})[first.repository] = None

        async def one(host: str, unique: dict[str, None]) -> None:
            repos, n = list(unique), TOKEN_SCOPES_PER_REQUEST
            try:
                await self.pinger.base(host)
                await asyncio.gather(
                    *(self.auth.prefetch(host, repos[i : i + n]) for i in range(0, len(repos), n))
                )
            except RegistryError as e:
                log.debug("token prefetch for %s failed: %s", host, e)

        await asyncio.gather(*(one(h, r) for h, r in by_host.items()))

    # -- fetching (fetch.py) -------------------------------------------------------------------
    async def head_manifest(self, ref: Reference) -> Descriptor | None:
        """HEAD the manifest; None when the registry's answer cannot give a digest."""
        return await self._fetch.head_manifest(ref)

    def cached_manifest(self, ref: Reference) -> Manifest | None:
        """The manifest for ``ref``'s digest from the local cache (re-hashed), without a request."""
        return self._fetch.cached_manifest(ref)

    async def get_manifest(self, ref: Reference) -> Manifest:
        """GET a manifest, verified against the digest asked for (or the header's); once per digest."""
        return await self._fetch.get_manifest(ref)

    async def resolve(self, ref: Reference, *, want_manifest: bool = False) -> Resolved:
        """Tag (or digest) → descriptor, by HEAD; GET only when HEAD cannot tell or asked to."""
        return await self._fetch.resolve(ref, want_manifest=want_manifest)

    async def fetch_small_blob(self, ref: Reference, digest: str, max_bytes: int) -> bytes:
        """GET a blob of at most ``max_bytes`` into memory, checked against ``digest``."""
        return await self._fetch.fetch_small_blob(ref, digest, max_bytes)

    async def get_referrers(self, ref: Reference, digest: str) -> Manifest | None:
        """``GET /v2/<name>/referrers/<digest>`` (OCI 1.1); None where the API is missing."""
        return await self._fetch.get_referrers(ref, digest)

    def stream_blob(
        self, ref: Reference, digest: str, *, offset: int = 0, size: int | None = None
    ) -> contextlib.AbstractAsyncContextManager[httpx.Response]:
        """Open ``GET /v2/<name>/blobs/<digest>`` as a stream (from ``offset`` with a Range)."""
        return self._fetch.stream_blob(ref, digest, offset=offset, size=size)
