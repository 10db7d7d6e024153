"""HTTP/1.1 connections for blob bodies: the bytes decrypted straight into one buffer, handed on in MiB.

With httpcore's HTTP/1.1 connection every body byte was copied five or six times before the
hasher saw it: asyncio's TLS transport decrypts one 16 KiB record per ``SSLObject.read`` into a
new bytes object and joins them, the network backend joins those again, h11 appends them to its
receive buffer and slices every ``Data`` event out of it twice, and httpcore copies each event
once more. On a 64 MiB layer that was most of the event loop's CPU time.

Here the socket side is an :class:`asyncio.BufferedProtocol`: asyncio's TLS transport decrypts
into our buffer (``sslproto`` passes ``SSLObject.read`` a slice of the memoryview we return), a
plain socket ``recv_into``\\ s it. h11 parses the request head and the response head only; a
response framed by ``Content-Length`` goes to the caller straight from the buffer, counted here,
in chunks of about :data:`CHUNK` (one copy, into the bytes object the caller gets). Chunked and
unframed bodies are fed to h11 as before: correct, not fast, and rare for blobs.

A connection is kept for the next request only when the body was read exactly to its length,
nothing came after it, and neither side asked to close; anything else (a caller stopping early,
extra bytes, EOF or an error before the end, a timeout, a cancellation) closes it. Errors are
httpcore's (``ConnectError``, ``ReadError``, ``ReadTimeout``, ``RemoteProtocolError``...),
chained to the ``OSError`` / ``ssl.SSLError`` behind them, so httpx maps them as usual; the pool
(:class:`BulkConnectionPool`) is httpcore's own, with its limits, pool timeout and keep-alive
expiry, only its connections are these.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import h11
import httpcore

from lockman.registry.network_backend import Endpoint

# The caller gets a body in chunks of at least this much (but its last): each chunk crosses
# httpx's stream layers, the body deadline and the hasher's hand-over once.
CHUNK = 1 << 20
# What one connection buffers; reading pauses while it is full (a consumer that lags).
BUFFER = 2 << 20
MAX_HEAD = 100 * 1024  # a response head larger than this is refused (httpcore's bound)


class _Receiver(Endpoint, asyncio.BufferedProtocol):
    """One buffer the transport writes into; wakes the reader once it holds what it waits for."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self.buf = bytearray(BUFFER)
        self.view = memoryview(self.buf)
        self.start = 0  # unread bytes are buf[start:end]
        self.end = 0
        self.want = 1
        self.last_arrival = 0.0

    @property
    def buffered(self) -> int:
        return self.end - self.start

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.end == len(self.buf):  # reading pauses before this; stay correct regardless
            self._make_room()
        # A memoryview: sslproto reads into buf[offset:], which must not be a copy.
        return self.view[self.end :]

    def _make_room(self) -> None:
        unread = bytes(self.view[self.start : self.end])
        if self.start == 0:  # full of unread bytes: a larger buffer
            self.buf = bytearray(2 * len(self.buf))
            self.view = memoryview(self.buf)
        self.buf[: len(unread)] = unread
        self.start, self.end = 0, len(unread)

    def buffer_updated(self, nbytes: int) -> None:
        self.end += nbytes
        self.last_arrival = self._loop.time()
        full = self.end == len(self.buf)
        if full and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        if self.end - self.start >= self.want or full:
            self._wake()

    def take(self, n: int) -> bytes:
        """The next ``n`` buffered bytes (at most what is buffered), as bytes of their own."""
        n = min(n, self.end - self.start)
        data = bytes(self.view[self.start : self.start + n])
        self.start += n
        if self.start == self.end:
            self.start = self.end = 0
        if self.reading_paused and self.end - self.start <= len(self.buf) // 2 and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return data


class _State(enum.Enum):
    NEW = "NEW"
    ACTIVE = "ACTIVE"
    IDLE = "IDLE"
    CLOSED = "CLOSED"


def _reason(e: BaseException) -> str:
    return str(e) or type(e).__name__


class BulkConnection(httpcore.AsyncConnectionInterface):
    """One HTTP/1.1 connection (plain or TLS) to ``origin``, opened by its first request."""

    def __init__(
        self, origin: httpcore.Origin, ssl_context: ssl.SSLContext | None, keepalive_expiry: float | None
    ) -> None:
        self._origin = origin
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._expire_at: float | None = None
        self._state = _State.NEW
        self._requests = 0
        self._receiver: _Receiver | None = None
        self._transport: asyncio.Transport | None = None

    # -- httpcore's connection interface ----------------------------------------------------

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        if not self.can_handle_request(request.url.origin):
            raise RuntimeError(f"request to {request.url.origin} on a connection to {self._origin}")
        if self._state not in (_State.NEW, _State.IDLE):
            raise httpcore.ConnectionNotAvailable()
        self._state = _State.ACTIVE
        self._expire_at = None
        self._requests += 1
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        try:
            if self._transport is None:
                sni = request.extensions.get("sni_hostname")
                await self._connect(timeouts.get("connect"), sni if isinstance(sni, str) else None)
            h11_state = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
            # A server may answer (an error) before reading the whole request: read that answer.
            with contextlib.suppress(httpcore.WriteError):
                await self._send_request(h11_state, request, timeouts.get("write"))
            head = await self._receive_head(h11_state, timeouts.get("read"))
        except BaseException:
            self._close()
            raise
        body = _Body(self, h11_state, request, head, timeouts.get("read"))
        return httpcore.Response(
            status=head.status_code,
            headers=head.headers.raw_items(),
            content=body,
            extensions={"http_version": b"HTTP/" + head.http_version, "reason_phrase": head.reason},
        )

    async def aclose(self) -> None:
        self._close()

    def can_handle_request(self, origin: httpcore.Origin) -> bool:
        return origin == self._origin

    def is_available(self) -> bool:
        return self._state is _State.IDLE

    def has_expired(self) -> bool:
        if self._state is not _State.IDLE:
            return False
        if self._expire_at is not None and time.monotonic() > self._expire_at:
            return True
        r = self._receiver
        return r is None or r.eof or r.buffered > 0  # an idle connection the server spoke on is done

    def is_idle(self) -> bool:
        return self._state is _State.IDLE

    def is_closed(self) -> bool:
        return self._state is _State.CLOSED

    def info(self) -> str:
        return f"{str(self._origin)!r}, HTTP/1.1, {self._state.name}, Request Count: {self._requests}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} [{self.info()}]>"

    # -- the socket -----------------------------------------------------------------------

    async def _connect(self, timeout: float | None, sni: str | None) -> None:
        loop = asyncio.get_running_loop()
        host = self._origin.host.decode("ascii")
        receiver = _Receiver(loop)
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_connection(lambda: receiver, host, self._origin.port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection within {timeout:g} s") from None
        except OSError as e:
            raise httpcore.ConnectError(_reason(e)) from e
        if self._origin.scheme == b"https":
            ctx = self._ssl_context if self._ssl_context is not None else ssl.create_default_context()
            # Set just before start_tls builds its SSLObject, with no await between: the context
            # may be shared with an HTTP/2 pool that offers h2 on its own handshakes.
            ctx.set_alpn_protocols(["http/1.1"])
            try:
                async with asyncio.timeout(timeout):
                    tls = await loop.start_tls(transport, receiver, ctx, server_hostname=sni or host)
            except TimeoutError:
                transport.abort()
                raise httpcore.ConnectTimeout(f"TLS handshake not done within {timeout:g} s") from None
            except OSError as e:  # ssl.SSLError (certificate, hostname) included
                transport.abort()
                raise httpcore.ConnectError(_reason(e)) from e
            if tls is None:
                transport.abort()
                raise httpcore.ConnectError("connection closed during the TLS handshake")
            transport = tls
        assert isinstance(transport, asyncio.Transport)
        receiver.transport = transport
        self._transport, self._receiver = transport, receiver

    def _close(self) -> None:
        self._state = _State.CLOSED
        if self._transport is not None:
            self._transport.close()

    async def _write(self, data: bytes, timeout: float | None) -> None:
        r, transport = self._receiver, self._transport
        assert r is not None and transport is not None
        await r.send(transport, data, timeout)

    async def _fill(self, want: int, timeout: float | None) -> None:
        """Wait until ``want`` bytes are buffered (or the buffer is full, or the stream ended).

        ``timeout`` bounds the time without any byte arriving, as a socket read timeout would.
        """
        r = self._receiver
        assert r is not None
        if r.buffered >= want or r.eof:
            return
        loop = asyncio.get_running_loop()
        waiter = r.waiter = loop.create_future()
        r.want = want
        began = loop.time()
        timer: asyncio.TimerHandle | None = None

        def check() -> None:
            nonlocal timer
            quiet_since = max(began, r.last_arrival)
            assert timeout is not None
            if loop.time() - quiet_since >= timeout:
                if not waiter.done():
                    waiter.set_exception(httpcore.ReadTimeout(f"no data within {timeout:g} s"))
            else:
                timer = loop.call_at(quiet_since + timeout, check)

        if timeout is not None:
            timer = loop.call_at(began + timeout, check)
        try:
            await waiter
        finally:
            r.waiter = None
            r.want = 1
            if timer is not None:
                timer.cancel()

    def _ended(self) -> BaseException:
        """What a read met instead of data: the transport's error, if it had one."""
        r = self._receiver
        assert r is not None
        if r.error is not None:
            error = httpcore.ReadError(_reason(r.error))
            error.__cause__ = error.__context__ = r.error  # as `raise ... from` in its handler would
            return error
        return httpcore.RemoteProtocolError("server closed the connection")

    # -- HTTP -------------------------------------------------------------------------------

    async def _send_request(
        self, h11_state: h11.Connection, request: httpcore.Request, timeout: float | None
    ) -> None:
        try:
            head = h11_state.send(
                h11.Request(method=request.method, target=request.url.target, headers=request.headers)
            )
        except h11.LocalProtocolError as e:
            raise httpcore.LocalProtocolError(_reason(e)) from e
        assert head is not None
        await self._write(head, timeout)
        stream = request.stream
        assert hasattr(stream, "__aiter__")
        async for chunk in stream:
            data = h11_state.send(h11.Data(data=chunk))
            if data:
                await self._write(data, timeout)
        end = h11_state.send(h11.EndOfMessage())
        if end:
            await self._write(end, timeout)

    async def _receive_event(self, h11_state: h11.Connection, timeout: float | None) -> Any:
        """h11's next event, feeding it what arrives (up to the end of a head, when one is there)."""
        r = self._receiver
        assert r is not None
        while True:
            try:
                event = h11_state.next_event()
            except h11.RemoteProtocolError as e:
                raise httpcore.RemoteProtocolError(_reason(e)) from e
            if event is not h11.NEED_DATA:
                return event
            await self._fill(1, timeout)
            if not r.buffered:
                if r.error is not None:
                    raise self._ended()
                if h11_state.their_state is h11.SEND_RESPONSE:
                    raise httpcore.RemoteProtocolError("Server disconnected without sending a response.")
                h11_state.receive_data(b"")
                continue
            if h11_state.their_state is h11.SEND_RESPONSE:
                # Only the head: the body after it stays in the buffer for the fast path.
                head_end = r.buf.find(b"\r\n\r\n", r.start, r.end)
                h11_state.receive_data(r.take(head_end + 4 - r.start if head_end >= 0 else r.buffered))
            else:
                h11_state.receive_data(r.take(r.buffered))

    async def _receive_head(self, h11_state: h11.Connection, timeout: float | None) -> h11.Response:
        while True:
            event = await self._receive_event(h11_state, timeout)
            if isinstance(event, h11.Response):
                return event
            if not isinstance(event, h11.InformationalResponse):  # 100 Continue and the like
                raise httpcore.RemoteProtocolError(f"unexpected {type(event).__name__} before the response")

    def _finished(self, reusable: bool) -> None:
        """The response is over: keep the connection for the next request or close it."""
        r = self._receiver
        if reusable and self._state is _State.ACTIVE and r is not None and not r.buffered and not r.eof:
            self._state = _State.IDLE
            if self._keepalive_expiry is not None:
                self._expire_at = time.monotonic() + self._keepalive_expiry
        else:
            self._close()


def _content_length(request: httpcore.Request, head: h11.Response) -> int | None:
    """The body's length when ``Content-Length`` alone frames it (what h11 would decide)."""
    if head.status_code in (204, 304) or request.method in (b"HEAD", b"CONNECT"):
        return None
    length: int | None = None
    for name, value in head.headers:  # h11 has lower-cased, validated and de-duplicated these
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            length = int(value)
    return length


def _keep_alive(head: h11.Response) -> bool:
    if head.http_version != b"1.1":
        return False
    for name, value in head.headers:
        if name == b"connection" and b"close" in (v.strip() for v in value.lower().split(b",")):
            return False
    return True


class _Body:
    """A response body; closing it before its end closes the connection."""

    def __init__(
        self,
        connection: BulkConnection,
        h11_state: h11.Connection,
        request: httpcore.Request,
        head: h11.Response,
        timeout: float | None,
    ) -> None:
        self._connection, self._h11, self._timeout = connection, h11_state, timeout
        self._length = _content_length(request, head)
        self._keep_alive = _keep_alive(head)
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            if self._length is not None:
                async for chunk in self._sized(self._length):
                    yield chunk
            else:
                async for chunk in self._through_h11():
                    yield chunk
        except BaseException:
            self._closed = True
            self._connection._close()
            raise

    async def _sized(self, length: int) -> AsyncIterator[bytes]:
        connection = self._connection
        r = connection._receiver
        assert r is not None
        remaining = length
        early, _ = self._h11.trailing_data  # what h11 was given past the head (rarely any)
        if early:
            if len(early) > remaining:
                raise httpcore.RemoteProtocolError("more data than Content-Length")
            remaining -= len(early)
            yield early
        while remaining:
            await connection._fill(min(CHUNK, remaining), self._timeout)
            if not r.buffered:
                if r.error is None:
                    raise httpcore.RemoteProtocolError(
                        "peer closed connection without sending complete message body: "
                        f"received {length - remaining} bytes, expected {length}"
                    )
                raise connection._ended()
            chunk = r.take(remaining)
            remaining -= len(chunk)
            yield chunk
        self._closed = True
        connection._finished(self._keep_alive and self._h11.our_state is h11.DONE)

    async def _through_h11(self) -> AsyncIterator[bytes]:
        connection = self._connection
        while True:
            event = await connection._receive_event(self._h11, self._timeout)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise httpcore.RemoteProtocolError(f"unexpected {type(event).__name__} in a body")
        self._closed = True
        done = self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE
        connection._finished(done and not self._h11.trailing_data[0])

    async def aclose(self) -> None:
        if not self._closed:  # not read to its end: what is left of it would precede the next answer
            self._closed = True
            self._connection._close()


class BulkConnectionPool(httpcore.AsyncConnectionPool):
    """httpcore's pool (limits, pool timeout, keep-alive expiry), its connections :class:`BulkConnection`."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None,
        max_connections: int | None,
        max_keepalive_connections: int | None,
        keepalive_expiry: float | None,
    ) -> None:
        super().__init__(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
            http1=True,
            http2=False,
        )
        self._bulk_ssl_context = ssl_context
        self._bulk_keepalive_expiry = keepalive_expiry

    def create_connection(self, origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        return BulkConnection(origin, self._bulk_ssl_context, self._bulk_keepalive_expiry)
