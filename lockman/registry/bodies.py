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

import zlib

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
