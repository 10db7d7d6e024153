"""python-tuf's downloads over lockman's own transport.

python-tuf's default fetcher is urllib3 with its own defaults: no ``certs.d``, its own reading
of the proxy variables, no lockman timeouts. A company TUF mirror sits behind the same proxy and
CA as its registries, so the trusted-root refresh must reach it the same way. python-tuf's
extension point for that is a ``FetcherInterface``; this one sends through
:class:`~lockman.registry.host_transport.HostTransport` (``HTTPS_PROXY``/``NO_PROXY``, the system
store plus ``SSL_CERT_FILE``/``SSL_CERT_DIR``, ``certs.d`` CAs and client certificates), with
lockman's timeouts, its whole-body deadline and a size cap of its own on top of the lengths
python-tuf allows per file.

python-tuf calls the fetcher synchronously, from whatever thread (the refresh can start inside
a run's event loop): the async transport runs on a private event loop in a thread of its own,
and each chunk is handed over as it arrives, so python-tuf's own length limits stop a download
early.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
from tuf.api.exceptions import DownloadError, DownloadHTTPError, DownloadLengthMismatchError
from tuf.ngclient.fetcher import FetcherInterface

from lockman.registry.bodies import IDENTITY, BodyTooLarge, BoundedDecoder, UnsupportedEncoding, bound_body
from lockman.registry.host_transport import HostTransport

MAX_TUF_FILE = 16 * 1024 * 1024
"""No TUF file lockman reads comes near this (Sigstore's are kilobytes; python-tuf's own largest
default, for targets metadata, is 5 MB): past it a body is refused whatever python-tuf allows."""

_T = TypeVar("_T")


async def _next_chunk(raw: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await raw.__anext__()
    except StopAsyncIteration:  # None instead: a Future cannot carry this one across threads
        return None


async def _close(raw: AsyncIterator[bytes], response: httpx.Response) -> None:
    if isinstance(raw, AsyncGenerator):
        await raw.aclose()
    await response.aclose()


class TransportFetcher(FetcherInterface):
    """A ``FetcherInterface`` on lockman's transport; close it (or use ``with``) when done."""

    def __init__(self, *, timeout: float, cap: int = MAX_TUF_FILE, user_agent: str = "lockman") -> None:
        self._timeout = timeout
        self._cap = cap
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lockman-tuf-fetch", daemon=True)
        self._thread.start()
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            transport=HostTransport(http2=False, limits=limits),
            follow_redirects=True,
            limits=limits,
            headers={"User-Agent": user_agent, "Accept-Encoding": IDENTITY},
            trust_env=False,  # proxies and CA variables are honoured by HostTransport
        )

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _send(self, url: str) -> httpx.Response:
        response = await self._client.send(self._client.build_request("GET", url), stream=True)
        if response.status_code >= 400:
            await response.aclose()
            raise DownloadHTTPError(f"{url}: HTTP {response.status_code}", response.status_code)
        bound_body(response, self._timeout, self._cap)
        return response

    def _fetch(self, url: str) -> Iterator[bytes]:
        """Send now (python-tuf wraps what this raises); the body comes in chunks as it arrives."""
        response = self._run(self._send(url))
        return self._chunks(url, response)

    def _chunks(self, url: str, response: httpx.Response) -> Iterator[bytes]:
        raw = response.aiter_raw()
        try:
            decoder = BoundedDecoder(response.headers.get("content-encoding", ""), self._cap)
            while (chunk := self._run(_next_chunk(raw))) is not None:
                yield decoder.decode(chunk)
            yield decoder.flush()
        except BodyTooLarge as exc:
            raise DownloadLengthMismatchError(f"{url}: {exc}") from None
        except (httpx.HTTPError, UnsupportedEncoding, OSError) as exc:
            raise DownloadError(f"{url}: {type(exc).__name__}: {exc}") from exc
        finally:  # also when python-tuf stops reading past its own limit: the connection is dropped
            if self._loop.is_closed():
                pass  # close() already ended every connection
            elif threading.current_thread() is self._thread:  # finalized by the GC on the loop's thread
                self._loop.create_task(_close(raw, response))
            else:
                self._run(_close(raw, response))

    def close(self) -> None:
        """Close the connections, then stop the loop and its thread."""
        if self._loop.is_closed():
            return
        try:
            self._run(self._client.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def __enter__(self) -> TransportFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
