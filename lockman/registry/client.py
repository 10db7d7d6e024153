"""The OCI distribution client: ping, resolve tags, fetch manifests by digest.

One ``httpx.AsyncClient`` per run (keep-alive, HTTP/2 where offered), a concurrency bound per
registry, one ping per registry, and every manifest fetched by digest hashed byte-for-byte.
Resolution costs one HEAD per reference; a GET happens only when the caller needs the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from lockman import env
from lockman.console import err
from lockman.errors import (
    AuthError,
    DigestMismatch,
    LockmanError,
    NotFound,
    RegistryError,
    TooLarge,
    UnsupportedMediaType,
)
from lockman.model.manifest import (
    ACCEPT,
    MANIFEST_TYPES,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    SCHEMA1_TYPES,
    Descriptor,
    Manifest,
    compute_digest,
    parse_manifest,
)
from lockman.model.reference import Reference, is_digest
from lockman.registry import ratelimit
from lockman.registry.auth import SCOPE, RegistryAuth
from lockman.registry.bodies import IDENTITY, UnsupportedEncoding, bound_body, declared_length, read_capped
from lockman.registry.credentials import CredentialStore
from lockman.registry.endpoints import Endpoints
from lockman.registry.host_transport import BULK, HostTransport
from lockman.registry.ping import Pinger
from lockman.registry.registries_conf import Endpoint, RegistriesConf
from lockman.registry.responses import (
    NETWORK_ERRORS,
    HandshakeFailed,
    RangeNotSatisfiable,
    answered_by,
    network_error,
    not_found,
    raise_status,
    registry_name,
)
from lockman.registry.retry import ERROR_BODY_LIMIT, BodyTooLarge, GaveUp, Retrier, RetryPolicy

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
DEFAULT_CONCURRENCY = 16  # requests in flight per registry over HTTP/1.1 (one connection each)
DEFAULT_H2_CONCURRENCY = 64  # streams in flight on a registry's one HTTP/2 connection
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


@dataclass(frozen=True)
class Resolved:
    """What a tag points at. ``manifest`` is set when it was fetched (and verified) on the way."""

    ref: Reference
    descriptor: Descriptor
    manifest: Manifest | None = None

    @property
    def digest(self) -> str:
        return self.descriptor.digest


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
        self._cache = cache
        self._by_digest: dict[tuple[str, str, str], asyncio.Task[Manifest]] = {}
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
            err(ratelimit.low_quota_warning(registry_name(host), q, self._has_credentials(response)))

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

    # -- manifests ---------------------------------------------------------------------------
    async def head_manifest(self, ref: Reference) -> Descriptor | None:
        """HEAD the manifest; None when the registry's answer cannot give a digest."""
        response = await self._request("HEAD", ref, f"manifests/{ref.reference}", headers={"Accept": ACCEPT})
        if response.status_code == 404:
            raise not_found(ref.familiar(), "manifest unknown to", answered_by(response), response)
        if response.status_code != 200:
            if response.status_code in (405, 400) or response.status_code >= 500:
                return None  # fall back to GET, which also reports lasting failures
            raise_status(ref, response, self._has_credentials(response))
        digest = response.headers.get("docker-content-digest", "")
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if media_type in SCHEMA1_TYPES:
            raise UnsupportedMediaType(
                "Docker schema 1 manifests are not supported (deprecated and unverifiable)",
                subject=ref.familiar(),
            )
        if not is_digest(digest) or media_type not in MANIFEST_TYPES:
            return None
        size = int(response.headers.get("content-length", "0") or 0)
        return Descriptor(media_type, digest, size)

    def cached_manifest(self, ref: Reference) -> Manifest | None:
        """The manifest for ``ref``'s digest from the local cache (re-hashed), without a request."""
        if self._cache is None or ref.digest is None:
            return None
        cached = self._cache.get(ref.digest)
        return None if cached is None else parse_manifest(cached, None, ref.digest, what=ref.familiar())

    async def get_manifest(self, ref: Reference) -> Manifest:
        """GET a manifest; verify its bytes against the digest asked for (or the header's).

        A fetch by digest happens once per run and repository, however many walks, platforms or
        index entries ask for it (content under a digest cannot change; a registry that lists
        one child many times gets one request). With a manifest cache, a fetch by digest whose
        bytes are cached (and still hash right) costs one HEAD instead of a GET.
        """
        if ref.digest is None:
            return await self._get_manifest_once(ref)
        key = (ref.api_host, ref.repository, ref.digest)
        task = self._by_digest.get(key)
        if task is None:
            task = self._by_digest[key] = asyncio.ensure_future(self._get_manifest_once(ref))
        try:
            return await asyncio.shield(task)
        except LockmanError:
            if self._by_digest.get(key) is task:
                del self._by_digest[key]  # a failure is not remembered: a later ask tries again
            raise

    async def _get_manifest_once(self, ref: Reference) -> Manifest:
        if self._cache is not None and ref.digest is not None:
            cached = self._cache.get(ref.digest)
            if cached is not None:
                desc = await self.head_manifest(ref)
                if desc is not None and desc.digest == ref.digest:
                    return parse_manifest(cached, None, ref.digest, what=ref.familiar())
        manifest = await self._get_manifest(ref)
        if self._cache is not None and ref.digest is not None:
            self._cache.put(manifest.digest, manifest.raw)
        return manifest

    async def _get_manifest(self, ref: Reference) -> Manifest:
        what = ref.familiar()
        response = await self._request("GET", ref, f"manifests/{ref.reference}", headers={"Accept": ACCEPT})
        if response.status_code == 404:
            raise not_found(what, "manifest unknown to", answered_by(response), response)
        if response.status_code != 200:
            raise_status(ref, response, self._has_credentials(response))
        raw = response.content  # read under the size cap; a truncated body was retried
        header_digest = response.headers.get("docker-content-digest")
        if ref.digest is not None:
            expected = ref.digest
        elif header_digest and is_digest(header_digest):
            expected = header_digest
        else:
            expected = compute_digest(raw)
        actual = compute_digest(raw, expected.partition(":")[0])
        if actual != expected:
            source = "asked for" if ref.digest else "registry's Docker-Content-Digest"
            raise DigestMismatch(
                f"digest mismatch: {source} {expected}, content hashes to {actual}", subject=what
            )
        if ref.digest and header_digest and is_digest(header_digest) and header_digest != expected:
            raise DigestMismatch(
                f"registry's Docker-Content-Digest {header_digest} does not match {expected}", subject=what
            )
        return parse_manifest(raw, response.headers.get("content-type"), expected, what=what)

    async def resolve(self, ref: Reference, *, want_manifest: bool = False) -> Resolved:
        """Tag (or digest) → descriptor, by HEAD; GET only when HEAD cannot tell or asked to."""
        if not want_manifest:
            desc = await self.head_manifest(ref)
            if desc is not None:
                return Resolved(ref, desc)
        manifest = await self.get_manifest(ref)
        return Resolved(ref, Descriptor(manifest.media_type, manifest.digest, len(manifest.raw)), manifest)

    # -- small blobs and referrers (signature material) -------------------------------------
    async def fetch_small_blob(self, ref: Reference, digest: str, max_bytes: int) -> bytes:
        """GET a blob of at most ``max_bytes`` into memory and check it hashes to ``digest``.

        For signature payloads and bundles, which are small; image layers go through the pull
        path. A blob larger than the bound is refused rather than buffered.
        """
        subject, blob = ref.familiar(), f"blob {digest}"
        response = await self._request("GET", ref, f"blobs/{digest}", stream=True)
        bound_body(response, self._timeout, max_bytes)
        try:
            if response.status_code == 404:
                raise not_found(subject, f"{blob}: unknown to", registry_name(ref.api_host), response)
            if response.status_code != 200:
                raise_status(ref, response)
            try:
                data = await read_capped(response, max_bytes)
            except BodyTooLarge:
                raise TooLarge(f"{blob}: larger than the {max_bytes}-byte limit", subject=subject) from None
            except UnsupportedEncoding as e:
                raise RegistryError(f"{blob}: registry {e}", subject=subject) from None
            except NETWORK_ERRORS as e:
                raise network_error(ref.api_host, e) from None
        finally:
            await response.aclose()
        actual = compute_digest(data, digest.partition(":")[0])
        if actual != digest:
            raise DigestMismatch(f"{blob}: digest mismatch: content hashes to {actual}", subject=subject)
        return data

    async def get_referrers(self, ref: Reference, digest: str) -> Manifest | None:
        """``GET /v2/<name>/referrers/<digest>`` (OCI 1.1); None where the API is missing (404).

        The answer is an index built by the registry, so there is no digest to check it against.
        """
        response = await self._request("GET", ref, f"referrers/{digest}", headers={"Accept": OCI_INDEX})
        if response.status_code in (400, 404, 405, 406):
            return None  # no referrers API here (the spec says 404; older registries vary)
        if response.status_code != 200:
            raise_status(ref, response)
        raw = response.content
        if len(raw) > MAX_MANIFEST_BYTES:
            raise TooLarge(f"referrers index exceeds {MAX_MANIFEST_BYTES} bytes", subject=ref.familiar())
        what = f"{ref.familiar()}: referrers of {digest}"
        return parse_manifest(raw, OCI_INDEX, compute_digest(raw), what=what)

    # -- blobs -------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def stream_blob(
        self, ref: Reference, digest: str, *, offset: int = 0, size: int | None = None
    ) -> AsyncIterator[httpx.Response]:
        """Open ``GET /v2/<name>/blobs/<digest>`` as a stream (from ``offset`` with a Range).

        Yields the response with status 200 or 206; the caller reads ``aiter_raw()`` and hashes
        (lockman.registry.blobs does). Redirects to object storage are followed; httpx drops
        ``Authorization`` whenever a redirect leaves the registry's origin. ``identity`` encoding
        so the bytes received are the blob's bytes and Range offsets mean blob offsets.

        The body is bounded in time as a whole (``--timeout`` plus a second per 64 KiB of
        ``size``, the bytes still expected; by default the declared length), not only per read.
        """
        headers = {"Accept-Encoding": "identity"}
        if offset > 0:
            headers["Range"] = f"bytes={offset}-"
        what = f"{ref.with_digest(None).with_tag(None).familiar()}@{digest}"
        response = await self._request("GET", ref, f"blobs/{digest}", headers=headers, stream=True, bulk=True)
        expected = size if size is not None else declared_length(response) or 0
        bound_body(response, self._timeout, expected)
        try:
            if response.status_code == 404:
                raise not_found(what, "blob unknown to", registry_name(ref.api_host), response)
            if response.status_code == 416 and offset > 0:
                raise RangeNotSatisfiable(
                    f"registry refused to resume at byte {offset}", subject=what, status=416
                )
            if response.status_code not in (200, 206):
                with contextlib.suppress(BodyTooLarge, UnsupportedEncoding, *NETWORK_ERRORS):
                    await read_capped(response, ERROR_BODY_LIMIT)  # for its error code, if small
                raise_status(ref, response)
            yield response
        finally:
            await response.aclose()

