"""Reading response bodies under a cap on *decoded* bytes.

lockman asks every registry for ``identity`` encoding (a digest is over the bytes as stored, and
the distribution spec never needs transport compression). A server may compress anyway; httpx
would then inflate each network chunk in one call, so 1.5 MB of gzip on the wire becomes 1.5 GiB
in memory before any size check sees it. Here the raw stream is inflated with zlib's
``max_length``, so no more than the cap (plus one network chunk of input) is ever held, and a
body that decodes past the cap is refused. Encodings other than gzip and deflate were never
offered, so they are refused rather than decoded.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

IDENTITY = "identity"


class BodyTooLarge(Exception):
    """A response body (declared or decoded) over the limit; never retried."""

    def __init__(self, size: int, limit: int, declared: bool) -> None:
        super().__init__(f"{size} bytes over the {limit}-byte limit")
        self.size, self.limit, self.declared = size, limit, declared


class UnsupportedEncoding(Exception):
    """The server sent a ``Content-Encoding`` that lockman never offered and does not decode."""

    def __init__(self, encoding: str) -> None:
        super().__init__(f"sent Content-Encoding {encoding[:40]!r}, which lockman did not ask for")


class BoundedDecoder:
    """Decode a body chunk by chunk, failing as soon as more than ``limit`` bytes come out."""

    def __init__(self, content_encoding: str, limit: int) -> None:
        encoding = content_encoding.strip().lower()
        self.limit = limit
        self.total = 0
        self._zlib: zlib._Decompress | None = None
        self._deflate_guess = False
        if encoding in ("", IDENTITY):
            pass
        elif encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj()
            self._deflate_guess = True  # zlib-wrapped per RFC, raw deflate in practice too
        else:
            raise UnsupportedEncoding(content_encoding)

    def _count(self, n: int) -> None:
        self.total += n
        if self.total > self.limit:
            raise BodyTooLarge(self.total, self.limit, declared=False)

    def decode(self, chunk: bytes) -> bytes:
        if self._zlib is None:
            self._count(len(chunk))
            return chunk
        try:
            # At most one byte past what the cap allows: enough to know the cap is exceeded.
            out = self._zlib.decompress(chunk, self.limit - self.total + 1)
        except zlib.error:
            if not self._deflate_guess:
                raise httpx.DecodingError("invalid compressed body") from None
            self._deflate_guess = False
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            return self.decode(chunk)
        self._deflate_guess = False
        self._count(len(out))
        return out

    def flush(self) -> bytes:
        if self._zlib is None:
            return b""
        out = self._zlib.flush(self.limit - self.total + 1)
        self._count(len(out))
        return out


def declared_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """Read the whole body, decoded, refusing it past ``limit`` bytes; ``response.content`` works after.

    A declared ``Content-Length`` over the limit is refused before reading (for an identity
    body; a compressed one is judged by what it decodes to).
    """
    try:
        data = response.content  # already in memory (a response built around bytes)
    except httpx.ResponseNotRead:
        pass
    else:
        if len(data) > limit:
            raise BodyTooLarge(len(data), limit, declared=False)
        return data
    encoding = response.headers.get("content-encoding", "")
    declared = declared_length(response)
    if response.request.method != "HEAD" and declared is not None and declared > limit and not encoding:
        await response.aclose()
        raise BodyTooLarge(declared, limit, declared=True)
    try:
        decoder = BoundedDecoder(encoding, limit)
        chunks: list[bytes] = []
        async for raw in response.aiter_raw():
            chunks.append(decoder.decode(raw))
        chunks.append(decoder.flush())
    except BaseException:
        await response.aclose()
        raise
    data = b"".join(chunks)
    response._content = data  # what aread() would have set: the decoded body, read once
    return data


# A streamed body (a blob) must arrive within the timeout plus this much time per byte: a
# server trickling one byte a second never holds a run for long, a slow link still gets a layer.
MIN_BODY_RATE = 64 * 1024  # bytes per second


def body_deadline(timeout: float, size: int) -> float:
    """Seconds a streamed body of ``size`` bytes may take, all reads together."""
    return timeout + max(size, 0) / MIN_BODY_RATE


class DeadlineStream(httpx.AsyncByteStream):
    """The response stream, with every read bounded by one deadline for the whole body.

    httpx's read timeout bounds each read; a server sending a byte just before it expires would
    never be stopped. Each chunk is awaited under what is left of the overall deadline, and the
    deadline missed is an ``httpx.ReadTimeout`` like any other slow read.
    """

    def __init__(self, inner: Any, seconds: float, request: httpx.Request) -> None:
        self._inner, self._seconds, self._request = inner, seconds, request
        self._deadline = asyncio.get_running_loop().time() + seconds

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self._inner.__aiter__()
        while True:
            try:
                async with asyncio.timeout_at(self._deadline):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise httpx.ReadTimeout(
                    f"body not complete within {round(self._seconds, 1):g} s", request=self._request
                ) from None
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def bound_body(response: httpx.Response, timeout: float, size: int) -> None:
    """Make ``response``'s (still unread) body fail once it takes longer than its deadline."""
    response.stream = DeadlineStream(response.stream, body_deadline(timeout, size), response.request)
