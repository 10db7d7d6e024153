"""An httpcore network backend on asyncio's own transports, for speed on large bodies.

httpcore's default backend goes through anyio, whose TLS stream hands over one TLS record
(16 KiB at most) per read, each read wrapped in cancel scopes and timeouts: about 100 µs of
Python per 16 KiB, so a blob download was bound by CPU at 60-150 MiB/s on loopback. asyncio's
TLS transport decrypts everything the socket has (up to 256 KiB) in one go and calls
``data_received`` once; this backend queues those chunks and hands them to httpcore as they
are, so a 64 MiB layer costs about 1,000 reads instead of 4,100. It measured 2-2.5x the
throughput of the anyio backend for blob bodies (``benchmarks/pull.py``). It now carries the
connections of the HTTP/2-capable pools without a proxy (manifests, tokens, other small
requests); blob bodies and every other HTTP/1.1-only pool without a proxy go over
:mod:`lockman.registry.bulk_http11`, which also skips h11's and httpcore's copies of the body.

HTTP semantics stay with httpcore and h11/h2; only moving bytes is done here. Errors are
httpcore's (``ConnectError``, ``ReadError``, ``ReadTimeout``...), chained to the ``OSError`` /
``ssl.SSLError`` behind them, exactly as httpcore's own backends raise them.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Callable, Iterable
from typing import Any

import httpcore

# Stop reading from the socket when this much is queued and unread (a slow consumer).
HIGH_WATER = 4 << 20
# At most this much is handed over by one read (what asyncio's TLS transport decrypted, joined).
READ_SIZE = 1 << 20


class Endpoint:
    """The state both protocols keep of their connection (this one's, and bulk_http11's).

    One reader waits at a time (``waiter``), woken by data, EOF or the connection's loss; one
    writer waits for the transport to drain (``drain_waiter``). The first error ends it.
    """

    def __init__(self) -> None:
        self.eof = False
        self.error: BaseException | None = None
        self.transport: asyncio.Transport | None = None
        self.reading_paused = False
        self.waiter: asyncio.Future[None] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None
        self.writing_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if self.error is None:
            self.error = exc
        self._wake()
        self.resume_writing()

    async def send(self, transport: asyncio.Transport, data: bytes, timeout: float | None) -> None:
        """Write ``data``, then wait (up to ``timeout``) while the transport asks to pause."""
        if self.eof or transport.is_closing():
            error = self.error or ConnectionResetError("connection closed")
            raise httpcore.WriteError(str(error) or type(error).__name__) from error
        transport.write(data)
        if self.writing_paused:
            self.drain_waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self.drain_waiter
            except TimeoutError:
                raise httpcore.WriteTimeout(f"could not send within {timeout:g} s") from None
            finally:
                self.drain_waiter = None

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)


class _Protocol(Endpoint, asyncio.Protocol):
    """Queues what arrives; wakes the one reader waiting for it."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: collections.deque[bytes] = collections.deque()
        self.queued = 0

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.queued += len(data)
        if self.queued > HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(
        self,
        transport: asyncio.Transport,
        protocol: _Protocol,
        on_tls: Callable[[str | None], None] | None = None,
    ) -> None:
        self._transport, self._protocol, self._on_tls = transport, protocol, on_tls

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        p = self._protocol
        if not p.chunks and not p.eof:
            p.waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await p.waiter
            except TimeoutError:
                raise httpcore.ReadTimeout(f"no data within {timeout:g} s") from None
            finally:
                p.waiter = None
        if not p.chunks:
            if p.error is not None:
                raise httpcore.ReadError(str(p.error) or type(p.error).__name__) from p.error
            return b""
        # Everything queued, up to READ_SIZE, whatever max_bytes says: httpcore feeds what it
        # reads to h11 or h2, which take any amount, while its 64 KiB would send each MiB of a
        # blob through httpx's stream layers, the body deadline and the hasher 16 times.
        chunk = p.chunks.popleft()
        if p.chunks and len(chunk) < READ_SIZE:
            parts = [chunk]
            size = len(chunk)
            while p.chunks and size + len(p.chunks[0]) <= READ_SIZE:
                part = p.chunks.popleft()
                parts.append(part)
                size += len(part)
            chunk = b"".join(parts)
        p.queued -= len(chunk)
        if p.reading_paused and p.queued <= HIGH_WATER // 2:
            p.reading_paused = False
            self._transport.resume_reading()
        return chunk

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:
            await self._protocol.send(self._transport, buffer, timeout)

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                tls = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._transport.abort()
            raise httpcore.ConnectTimeout(f"TLS handshake not done within {timeout:g} s") from None
        except (OSError, ssl.SSLError) as e:  # SSLError is an OSError; both named for the reader
            self._transport.abort()
            raise httpcore.ConnectError(str(e) or type(e).__name__) from e
        if tls is None:
            raise httpcore.ConnectError("connection closed during the TLS handshake")
        self._protocol.transport = tls
        if self._on_tls is not None:
            ssl_object = tls.get_extra_info("ssl_object")
            self._on_tls(ssl_object.selected_alpn_protocol() if ssl_object is not None else None)
        return _Stream(tls, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        if info == "is_readable":  # an idle pooled connection that got data or EOF is finished
            return self._protocol.eof or bool(self._protocol.chunks)
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """TCP (and TLS, through :meth:`_Stream.start_tls`) on asyncio transports.

    ``on_tls`` is told the ALPN protocol each TLS handshake settled on (``None`` if none), as
    soon as the handshake is done: before any request is sent on the connection.
    """

    def __init__(self, on_tls: Callable[[str | None], None] | None = None) -> None:
        self._on_tls = on_tls

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        protocol = _Protocol()
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_connection(lambda: protocol, host, port, local_addr=local)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection within {timeout:g} s") from None
        except OSError as e:
            raise httpcore.ConnectError(str(e) or type(e).__name__) from e
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(transport, protocol, self._on_tls)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by lockman")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
