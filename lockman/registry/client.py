"""The OCI distribution client: ping, resolve tags, fetch manifests by digest.

One ``httpx.AsyncClient`` per run (keep-alive, HTTP/2 where offered), a concurrency bound per
registry, one ping per registry, and every manifest fetched by digest hashed byte-for-byte.
Resolution costs one HEAD per reference; a GET happens only when the caller needs the body.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from lockman.errors import AuthError, RegistryError, VerificationError
from lockman.manifest import (
    ACCEPT,
    MANIFEST_TYPES,
    MAX_MANIFEST_BYTES,
    SCHEMA1_TYPES,
    Descriptor,
    Manifest,
    compute_digest,
    parse_manifest,
)
from lockman.reference import DOCKER_HUB, DOCKER_HUB_API, Reference, is_digest
from lockman.registry.auth import RegistryAuth
from lockman.registry.credentials import CredentialStore
from lockman.registry.hosts import default_ssl_context, plain_http_allowed
from lockman.registry.retry import BodyTooLarge, Retrier, RetryPolicy, attempts_note, retry_after

DEFAULT_CONCURRENCY = 16
DEFAULT_TIMEOUT = 30.0
USER_AGENT = "lockman"


class NotFound(RegistryError):
    """The registry does not have the manifest (or the repository)."""


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
        concurrency: int = DEFAULT_CONCURRENCY,
        credentials: CredentialStore | None = None,
        http2: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._timeout = timeout
        self.retrier = Retrier(timeout, retry or RetryPolicy.from_env())
        self._concurrency = concurrency
        self._credentials = credentials or CredentialStore()
        self._http2 = http2
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._bases: dict[str, asyncio.Task[str]] = {}
        self._limits: dict[str, asyncio.Semaphore] = {}
        self.requests: Counter[str] = Counter()
        self.auth: RegistryAuth

    async def __aenter__(self) -> RegistryClient:
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout),
            http2=self._http2,
            verify=default_ssl_context(),
            follow_redirects=True,
            transport=self._transport,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
            headers={"User-Agent": USER_AGENT},
            trust_env=True,
        )
        self.auth = RegistryAuth(self._credentials, self._send_raw, plain_http_allowed, _registry_name)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._bases.values():
            task.cancel()
        if self._http is not None:
            await self._http.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        assert self._http is not None, "use RegistryClient as an async context manager"
        return self._http

    # -- transport ---------------------------------------------------------------------------
    async def _send_raw(self, request: httpx.Request) -> httpx.Response:
        """Send without registry auth (pings, token requests), mapping network errors."""
        host = request.url.netloc.decode("ascii")
        self.requests[host] += 1
        try:
            return await self.retrier.send(self.http, request)
        except httpx.HTTPError as e:
            raise _network_error(host, e) from None
        except BodyTooLarge as e:
            raise RegistryError(f"{_registry_name(host)}: answer to {request.url.path} is {e}") from None

    async def _base(self, host: str) -> str:
        """Ping ``/v2/`` once per registry; learn its scheme and auth challenge."""
        task = self._bases.get(host)
        if task is None:
            task = asyncio.ensure_future(self._ping(host))
            self._bases[host] = task
        return await asyncio.shield(task)

    async def _ping(self, host: str) -> str:
        schemes = ["https", "http"] if plain_http_allowed(host) else ["https"]
        first_error: RegistryError | None = None
        for scheme in schemes:
            base = f"{scheme}://{host}"
            try:
                response = await self._send_raw(self.http.build_request("GET", f"{base}/v2/"))
            except RegistryError as e:
                # After a TLS handshake failure (a plain-HTTP server), the HTTP error says more.
                if first_error is None or getattr(first_error, "tls_handshake_failed", False):
                    first_error = e
                continue
            if response.status_code in (200, 401) or (
                response.status_code < 500 and "docker-distribution-api-version" in response.headers
            ):
                self.auth.learn(host, response)
                return base
            if scheme == "http" and first_error is not None:
                break
            first_error = first_error or RegistryError(
                f"{_registry_name(host)}: not a registry: GET /v2/ answered HTTP {response.status_code}"
            )
        assert first_error is not None
        raise first_error

    def _limit(self, host: str) -> asyncio.Semaphore:
        sem = self._limits.get(host)
        if sem is None:
            sem = self._limits[host] = asyncio.Semaphore(self._concurrency)
        return sem

    async def _request(
        self,
        method: str,
        ref: Reference,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        limit: int | None = MAX_MANIFEST_BYTES,
    ) -> httpx.Response:
        host = ref.api_host
        base = await self._base(host)
        request = self.http.build_request(method, f"{base}/v2/{ref.repository}/{path}", headers=headers)
        async with self._limit(host):
            self.requests[host] += 1
            try:
                response = await self.retrier.send(
                    self.http, request, auth=self.auth, stream=stream, limit=limit
                )
            except AuthError:
                raise
            except httpx.HTTPError as e:
                raise _network_error(host, e, _where(ref)) from None
            except BodyTooLarge as e:
                what = "declares" if e.declared else "sent more than"
                raise VerificationError(
                    f"{ref.familiar()}: manifest {what} {e.size if e.declared else e.limit} bytes, "
                    f"over the {e.limit}-byte limit"
                ) from None
        # Count the auth round trips that happened inside the flow.
        self.requests[host] += len(response.history)
        return response

    async def prefetch_tokens(self, refs: list[Reference]) -> None:
        """One token request per registry for all repositories this run will touch."""
        by_host: dict[str, set[str]] = {}
        for r in refs:
            by_host.setdefault(r.api_host, set()).add(r.repository)

        async def one(host: str, repos: set[str]) -> None:
            await self._base(host)
            await self.auth.prefetch(host, sorted(repos))

        await asyncio.gather(*(one(h, r) for h, r in by_host.items()))

    # -- manifests ---------------------------------------------------------------------------
    async def head_manifest(self, ref: Reference) -> Descriptor | None:
        """HEAD the manifest; None when the registry's answer cannot give a digest."""
        response = await self._request("HEAD", ref, f"manifests/{ref.reference}", headers={"Accept": ACCEPT})
        if response.status_code == 404:
            raise NotFound(f"{ref.familiar()}: manifest unknown to {_registry_name(ref.api_host)}")
        if response.status_code != 200:
            if response.status_code in (405, 400) or response.status_code >= 500:
                return None  # fall back to GET, which also reports lasting failures
            _raise_status(ref, response)
        digest = response.headers.get("docker-content-digest", "")
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if media_type in SCHEMA1_TYPES:
            raise VerificationError(
                f"{ref.familiar()}: Docker schema 1 manifests are not supported (deprecated and unverifiable)"
            )
        if not is_digest(digest) or media_type not in MANIFEST_TYPES:
            return None
        size = int(response.headers.get("content-length", "0") or 0)
        return Descriptor(media_type, digest, size)

    async def get_manifest(self, ref: Reference) -> Manifest:
        """GET a manifest; verify its bytes against the digest asked for (or the header's)."""
        what = ref.familiar()
        response = await self._request("GET", ref, f"manifests/{ref.reference}", headers={"Accept": ACCEPT})
        if response.status_code == 404:
            raise NotFound(f"{what}: manifest unknown to {_registry_name(ref.api_host)}")
        if response.status_code != 200:
            _raise_status(ref, response)
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
            raise VerificationError(
                f"{what}: digest mismatch: {source} {expected}, content hashes to {actual}"
            )
        if ref.digest and header_digest and is_digest(header_digest) and header_digest != expected:
            raise VerificationError(
                f"{what}: registry's Docker-Content-Digest {header_digest} does not match {expected}"
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


def _registry_name(host: str) -> str:
    return DOCKER_HUB if host == DOCKER_HUB_API else host


def _where(ref: Reference) -> str:
    """How an error names an image: the reference, after its registry when it does not show it."""
    registry = _registry_name(ref.api_host)
    familiar = ref.familiar()
    return familiar if familiar.startswith(f"{registry}/") else f"{registry}: {familiar}"


def _raise_status(ref: Reference, response: httpx.Response) -> None:
    status = response.status_code
    registry = _registry_name(ref.api_host)
    where = _where(ref)
    detail = _error_detail(response)
    if status == 401:
        raise AuthError(f"{registry}: authentication required for {ref.familiar()}")
    if status == 403:
        raise AuthError(f"{registry}: access to {ref.familiar()} denied{detail}")
    note = attempts_note(response)
    if status == 429:
        wait = retry_after(response)
        later = f"; it asks to wait {wait:.0f} s" if wait is not None else ""
        quota = ""
        if registry == DOCKER_HUB:
            quota = " (Docker Hub's pull limit is a rolling quota: log in, or try later)"
        raise RegistryError(f"{where}: too many requests (HTTP 429){detail}{later}{quota}{note}")
    raise RegistryError(f"{where}: HTTP {status}{detail}{note}")


def _error_detail(response: httpx.Response) -> str:
    """The registry's own error code, from its JSON error body, when it sent one."""
    try:
        body: Any = response.json()
    except (ValueError, httpx.ResponseNotRead, UnicodeDecodeError):
        return ""
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0]
        if isinstance(first, dict) and isinstance(first.get("code"), str):
            return f" ({first['code']})"
    return ""


def _network_error(host: str, e: httpx.HTTPError, where: str | None = None) -> RegistryError:
    """One line for a network failure, naming the image (``where``) when there is one."""
    registry = where or _registry_name(host)
    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return RegistryError(
                f"{registry}: TLS certificate not trusted ({cause.verify_message}); trust its CA "
                f"with SSL_CERT_FILE or /etc/docker/certs.d/{host}/ca.crt"
            )
        cause = cause.__cause__ or cause.__context__
    note = attempts_note(e)
    if _tls_handshake_failed(e):
        error = RegistryError(f"{registry}: cannot connect: {e or type(e).__name__}")
        error.tls_handshake_failed = True  # type: ignore[attr-defined]
        return error
    if isinstance(e, httpx.TimeoutException):
        return RegistryError(f"{registry}: timed out ({e or type(e).__name__}){note}")
    if isinstance(e, httpx.ConnectError):
        return RegistryError(f"{registry}: cannot connect: {e or type(e).__name__}{note}")
    if isinstance(e, httpx.TooManyRedirects):
        return RegistryError(f"{registry}: too many redirects (a redirect loop?)")
    return RegistryError(f"{registry}: network error: {type(e).__name__}: {e}{note}")


def _tls_handshake_failed(e: BaseException) -> bool:
    """TLS failed for a reason other than trust: typically a server that speaks plain HTTP."""
    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
