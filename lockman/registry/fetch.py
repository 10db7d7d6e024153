"""Fetching: manifests by HEAD and GET (hashed, de-duplicated, cached), small blobs, referrers
and blob streams, over whichever endpoint answers.

As ggcr's ``remote/fetcher.go`` (``fetchManifest``, ``headManifest``, ``fetchBlob``), apart
from the transport: a :class:`Fetcher` is given the client's mirror-aware ``request`` and
turns answers into verified content or lockman errors (responses.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx

from lockman.errors import (
    DigestMismatch,
    LockmanError,
    RegistryError,
    TooLarge,
    UnsupportedMediaType,
    about,
)
from lockman.model.digest import Digest
from lockman.model.manifest import (
    ACCEPT,
    MANIFEST_TYPES,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    SCHEMA1_TYPES,
    Descriptor,
    Manifest,
    parse_manifest,
)
from lockman.model.reference import Reference, is_digest
from lockman.registry.bodies import UnsupportedEncoding, bound_body, declared_length, read_capped
from lockman.registry.responses import (
    NETWORK_ERRORS,
    RangeNotSatisfiable,
    answered_by,
    network_error,
    not_found,
    raise_status,
    registry_name,
)
from lockman.registry.retry import ERROR_BODY_LIMIT, BodyTooLarge

if TYPE_CHECKING:
    from lockman.registry.cache import ManifestCache


class Request(Protocol):
    """The client's ``_request``: one request to the first endpoint that answers usefully."""

    def __call__(
        self,
        method: str,
        ref: Reference,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        limit: int | None = MAX_MANIFEST_BYTES,
        bulk: bool = False,
    ) -> Awaitable[httpx.Response]: ...


@dataclass(frozen=True)
class Resolved:
    """What a tag points at. ``manifest`` is set when it was fetched (and verified) on the way."""

    ref: Reference
    descriptor: Descriptor
    manifest: Manifest | None = None

    @property
    def digest(self) -> str:
        return self.descriptor.digest


class Fetcher:
    """What to ask a registry for content, and how to check what it sends."""

    def __init__(
        self,
        request: Request,
        timeout: float,
        cache: ManifestCache | None,
        has_credentials: Callable[[httpx.Response], bool],
    ) -> None:
        self._request = request
        self._timeout = timeout
        self._cache = cache
        self._has_credentials = has_credentials
        self._by_digest: dict[tuple[str, str, str], asyncio.Task[Manifest]] = {}

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
        if cached is None:
            return None
        with about(ref.familiar()):
            return parse_manifest(cached, None, ref.digest)

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
                    with about(ref.familiar()):
                        return parse_manifest(cached, None, ref.digest)
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
            expected = Digest.of(raw)
        actual = Digest.of(raw, Digest.parse(expected).algorithm)
        if actual != expected:
            source = "asked for" if ref.digest else "registry's Docker-Content-Digest"
            raise DigestMismatch(
                f"digest mismatch: {source} {expected}, content hashes to {actual}", subject=what
            )
        if ref.digest and header_digest and is_digest(header_digest) and header_digest != expected:
            raise DigestMismatch(
                f"registry's Docker-Content-Digest {header_digest} does not match {expected}", subject=what
            )
        with about(what):
            return parse_manifest(raw, response.headers.get("content-type"), expected)

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
        actual = Digest.of(data, Digest.parse(digest).algorithm)
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
        with about(f"{ref.familiar()}: referrers of {digest}"):
            return parse_manifest(raw, OCI_INDEX, Digest.of(raw))

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
