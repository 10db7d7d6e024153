"""The blob connection over a real loopback socket (plain and TLS): bodies in large chunks, heads
split anywhere, chunked bodies through h11, and a connection reused only after a clean answer."""

from __future__ import annotations

import asyncio
import math
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpcore
import httpx
import pytest
import trustme

from lockman.registry.bulk_http11 import BUFFER, CHUNK, MAX_HEAD, BulkConnection, BulkConnectionPool
from lockman.registry.host_transport import BULK, HostTransport
from tests.support.listener import Listener

Reply = Callable[[socket.socket, int], None]  # (socket, number of the request: 0, 1... on the server)


def _read_head(sock: socket.socket, pending: bytearray) -> bytes | None:
    """The next request head (``pending`` keeps what came after it); ``None`` at EOF."""
    while b"\r\n\r\n" not in pending:
        data = sock.recv(65536)
        if not data:
            return None
        pending += data
    end = pending.index(b"\r\n\r\n") + 4
    head = bytes(pending[:end])
    del pending[:end]
    return head


class Server(Listener):
    """Answers each request with ``reply``; counts connections and sees which the client closed."""

    def __init__(self, reply: Reply, tls: ssl.SSLContext | None = None) -> None:
        self.reply, self.tls = reply, tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed_by_client = 0
        self.pending = bytearray()
        self.lock = threading.Lock()
        super().__init__()

    def accepted(self, sock: socket.socket) -> None:
        with self.lock:
            self.connections += 1
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True)
        pending = bytearray()
        while True:
            try:
                head = _read_head(sock, pending)
            except (OSError, ssl.SSLError):
                head = None
            if head is None:
                with self.lock:
                    self.closed_by_client += 1
                return
            with self.lock:
                self.requests.append(head)
                self.pending = pending  # what came after the head (a request body, perhaps)
                n = len(self.requests) - 1
            try:
                self.reply(sock, n)
            except OSError:  # the client closed while the answer was being sent
                with self.lock:
                    self.closed_by_client += 1
                return


def _ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body + extra


@pytest.fixture
def server_factory() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def make(reply: Reply, tls: ssl.SSLContext | None = None) -> Server:
        servers.append(Server(reply, tls))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _pool(ctx: ssl.SSLContext | None = None) -> BulkConnectionPool:
    return BulkConnectionPool(
        ssl_context=ctx, max_connections=4, max_keepalive_connections=4, keepalive_expiry=30
    )


async def _get(
    pool: BulkConnectionPool, url: str, *, timeout: dict[str, float] | None = None, keep: int | None = None
) -> list[bytes]:
    """The body's chunks as the pool hands them over; ``keep``: stop (close) after that many bytes."""
    chunks: list[bytes] = []
    ext = {"timeout": timeout} if timeout else {}
    async with pool.stream("GET", url, extensions=ext) as response:
        async for chunk in response.aiter_stream():
            chunks.append(chunk)
            if keep is not None and sum(map(len, chunks)) >= keep:
                break
    return chunks


def _causes(e: BaseException) -> list[type[BaseException]]:
    """The exception and what it was raised from or while handling, as lockman walks them."""
    found: list[type[BaseException]] = []
    cause: BaseException | None = e
    while cause is not None:
        found.append(type(cause))
        cause = cause.__cause__ or cause.__context__
    return found


def _wait_for(condition: Callable[[], bool]) -> None:
    """The server thread notices an EOF in its own time: wait for it (at most 10 s)."""
    deadline = time.monotonic() + 10
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


BODY = bytes(range(256)) * (5 * (1 << 20) // 256 + 3)  # a little over 5 MiB


def test_a_sized_body_arrives_whole_in_large_chunks_and_the_connection_is_reused(server_factory) -> None:
    server = server_factory(lambda sock, n: sock.sendall(_ok(BODY)))

    async def main() -> tuple[list[bytes], list[bytes]]:
        async with _pool() as pool:
            url = f"http://127.0.0.1:{server.port}/blob"
            return await _get(pool, url), await _get(pool, url)

    first, second = asyncio.run(main())
    for chunks in (first, second):
        assert b"".join(chunks) == BODY
        assert all(len(c) >= CHUNK for c in chunks[:-1])  # each but the last at least CHUNK
        assert len(chunks) <= math.ceil(len(BODY) / CHUNK)
    assert server.connections == 1 and len(server.requests) == 2


def test_over_tls_with_alpn_http11_and_the_host_name_checked(server_factory, tmp_path: Path) -> None:
    ca = trustme.CA()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    server_ctx.set_alpn_protocols(["h2", "http/1.1"])  # would pick h2 if the client offered it
    server = server_factory(lambda sock, n: sock.sendall(_ok(BODY)), tls=server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    client_ctx.set_alpn_protocols(["h2", "http/1.1"])  # as a shared context may be left by the h2 pool

    async def main() -> tuple[list[bytes], str | None]:
        async with _pool(client_ctx) as pool:
            chunks = await _get(pool, f"https://127.0.0.1:{server.port}/blob")
            chunks += await _get(pool, f"https://127.0.0.1:{server.port}/blob")
            conn = pool.connections[0]
            assert isinstance(conn, BulkConnection)
            tls = conn._transport
            assert tls is not None
            return chunks, tls.get_extra_info("ssl_object").selected_alpn_protocol()

    chunks, alpn = asyncio.run(main())
    assert b"".join(chunks) == BODY * 2 and alpn == "http/1.1"
    assert server.connections == 1

    other = trustme.CA()  # a certificate the client does not trust
    bad_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    other.issue_cert("127.0.0.1").configure_cert(bad_ctx)
    untrusted = server_factory(lambda sock, n: sock.sendall(_ok(b"x")), tls=bad_ctx)
    with pytest.raises(httpcore.ConnectError) as e:
        asyncio.run(_get(_pool(client_ctx), f"https://127.0.0.1:{untrusted.port}/"))
    assert ssl.SSLCertVerificationError in _causes(e.value)  # what lockman's advice is chosen by


@pytest.mark.parametrize(
    "cuts",
    [
        [1, 9, 17],  # inside the status line
        [41, 42, 43],  # inside the blank line that ends the head
        [44, 45, 46],  # right after the head, then one byte of body at a time
        [40, 44, 1000, 1 << 20],  # head, then the body in uneven pieces
    ],
)
def test_head_and_body_split_anywhere(server_factory, cuts: list[int]) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB
    answer = _ok(body)
    assert answer.index(b"\r\n\r\n") == 40  # the cuts above are placed against this head

    def reply(sock: socket.socket, n: int) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        last = 0
        for cut in cuts:
            sock.sendall(answer[last:cut])
            last = cut
            time.sleep(0.02)  # separate segments, separate reads (not asserted on)
        sock.sendall(answer[last:])

    server = server_factory(reply)

    async def main() -> list[bytes]:
        async with _pool() as pool:
            url = f"http://127.0.0.1:{server.port}/"
            return await _get(pool, url) + await _get(pool, url)

    assert b"".join(asyncio.run(main())) == body * 2
    assert server.connections == 1


def test_chunked_and_unframed_bodies_go_through_h11(server_factory) -> None:
    def reply(sock: socket.socket, n: int) -> None:
        if n == 0:
            sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in (b"hello ", b"chunked ", b"world"):
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                time.sleep(0.01)
            sock.sendall(b"0\r\n\r\n")
        else:  # no length: the body ends with the connection
            sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
            sock.shutdown(socket.SHUT_WR)

    server = server_factory(reply)

    async def main() -> tuple[bytes, bytes]:
        async with _pool() as pool:
            url = f"http://127.0.0.1:{server.port}/"
            return b"".join(await _get(pool, url)), b"".join(await _get(pool, url))

    assert asyncio.run(main()) == (b"hello chunked world", b"until the end")
    assert server.connections == 1  # the chunked answer left the connection reusable


def test_head_and_no_content_answers_have_no_body(server_factory) -> None:
    def reply(sock: socket.socket, n: int) -> None:
        if n == 0:  # HEAD: a length, no body
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        else:
            sock.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    server = server_factory(reply)

    async def main() -> list[tuple[int, bytes]]:
        async with _pool() as pool:
            url = f"http://127.0.0.1:{server.port}/"
            head = await pool.request("HEAD", url)
            empty = await pool.request("GET", url)
            return [(head.status, head.content), (empty.status, empty.content)]

    assert asyncio.run(main()) == [(200, b""), (204, b"")]
    assert server.connections == 1


def test_a_request_body_is_sent(server_factory) -> None:
    received: list[bytes] = []

    def reply(sock: socket.socket, n: int) -> None:
        data = bytes(server.pending)
        while len(data) < 11:
            data += sock.recv(100)
        received.append(data)
        sock.sendall(_ok(b"thanks"))

    server = server_factory(reply)

    async def main() -> bytes:
        async with _pool() as pool:
            r = await pool.request("POST", f"http://127.0.0.1:{server.port}/", content=b"grant=token")
            return r.content

    assert asyncio.run(main()) == b"thanks"
    assert received == [b"grant=token"] and b"Content-Length: 11" in server.requests[0]


def test_eof_before_the_length_fails_and_the_connection_is_not_reused(server_factory) -> None:
    def reply(sock: socket.socket, n: int) -> None:
        if n == 0:
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
            sock.shutdown(socket.SHUT_WR)
        else:
            sock.sendall(_ok(b"fine"))

    server = server_factory(reply)

    async def main() -> bytes:
        async with _pool() as pool:
            url = f"http://127.0.0.1:{server.port}/"
            with pytest.raises(httpcore.RemoteProtocolError, match="received 5000 bytes, expected 100000"):
                await _get(pool, url)
            return b"".join(await _get(pool, url))

    assert asyncio.run(main()) == b"fine"
    assert server.connections == 2


def test_a_reset_before_the_length_is_a_read_error_chained_to_the_os_error(server_factory) -> None:
    def reply(sock: socket.socket, n: int) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
        time.sleep(0.05)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST

    server = server_factory(reply)
    with pytest.raises(httpcore.ReadError) as e:
        asyncio.run(_get(_pool(), f"http://127.0.0.1:{server.port}/"))
    assert ConnectionResetError in _causes(e.value)


def test_bytes_past_the_length_mean_no_reuse(server_factory) -> None:
    server = server_factory(lambda sock, n: sock.sendall(_ok(b"blob", extra=b"HTTP/1.1 200 OK\r\n")))

    async def main() -> list[bytes]:
        async with _pool() as pool:
            url = f"http://127.0.0.1:{server.port}/"
            return [b"".join(await _get(pool, url)) for _ in range(2)]

    assert asyncio.run(main()) == [b"blob", b"blob"]
    assert server.connections == 2


def test_a_caller_stopping_early_closes_the_connection(server_factory) -> None:
    server = server_factory(lambda sock, n: sock.sendall(_ok(BODY)))

    async def main() -> int:
        async with _pool() as pool:
            url = f"http://127.0.0.1:{server.port}/"
            assert len(b"".join(await _get(pool, url, keep=1))) < len(BODY)
            await asyncio.to_thread(_wait_for, lambda: server.closed_by_client >= 1)
            closed_before_the_pool = server.closed_by_client
            assert b"".join(await _get(pool, url)) == BODY
            return closed_before_the_pool

    assert asyncio.run(main()) == 1
    assert server.connections == 2


def test_connection_close_is_honoured(server_factory) -> None:
    def reply(sock: socket.socket, n: int) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nblob")

    server = server_factory(reply)

    async def main() -> int:
        async with _pool() as pool:
            url = f"http://127.0.0.1:{server.port}/"
            assert b"".join(await _get(pool, url)) == b"blob"
            # The client closes it (the server keeps its side open), before the pool ends.
            await asyncio.to_thread(_wait_for, lambda: server.closed_by_client >= 1)
            closed_before_the_pool = server.closed_by_client
            assert b"".join(await _get(pool, url)) == b"blob"
            return closed_before_the_pool

    assert asyncio.run(main()) == 1
    assert server.connections == 2


def test_a_silent_server_is_a_read_timeout(server_factory) -> None:
    release = threading.Event()

    def reply(sock: socket.socket, n: int) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        release.wait(10)

    server = server_factory(reply)
    timeouts = {"connect": 5.0, "read": 0.2, "write": 5.0, "pool": 5.0}
    try:
        with pytest.raises(httpcore.ReadTimeout):
            asyncio.run(_get(_pool(), f"http://127.0.0.1:{server.port}/", timeout=timeouts))
    finally:
        release.set()


def test_through_httpx_errors_are_httpx_ones(server_factory) -> None:
    """HostTransport puts bulk requests on this pool; httpx maps its httpcore errors as usual."""
    release = threading.Event()

    def reply(sock: socket.socket, n: int) -> None:
        if n == 0:
            sock.sendall(_ok(b"layer"))
        else:
            release.wait(10)

    server = server_factory(reply)

    async def main() -> bytes:
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
        transport = HostTransport(http2=True, limits=limits)
        async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5, read=0.2)) as client:
            url = f"http://127.0.0.1:{server.port}/"
            first = await client.get(url, extensions={BULK: True})
            with pytest.raises(httpx.ReadTimeout):
                await client.get(url, extensions={BULK: True})
            return first.content

    try:
        assert asyncio.run(main()) == b"layer"
    finally:
        release.set()
    assert server.connections == 1


def test_a_consumer_that_lags_pauses_reading(server_factory) -> None:
    """What the connection holds for a consumer that does not read stays within its buffer."""
    big = b"z" * (32 << 20)
    server = server_factory(lambda sock, n: sock.sendall(_ok(big)))

    async def main() -> int:
        async with _pool() as pool, pool.stream("GET", f"http://127.0.0.1:{server.port}/") as response:
            conn = pool.connections[0]
            assert isinstance(conn, BulkConnection) and conn._receiver is not None
            for _ in range(1000):  # the server sends as fast as it can; the buffer fills
                if conn._receiver.reading_paused:
                    break
                await asyncio.sleep(0.01)
            assert conn._receiver.reading_paused
            held = conn._receiver.buffered
            total = 0
            async for chunk in response.aiter_stream():
                total += len(chunk)
            assert total == len(big)
            return held

    assert asyncio.run(main()) <= BUFFER


@pytest.mark.parametrize(
    ("answer", "closed"),
    [
        (_ok(b"blob"), False),
        (_ok(b"blob", extra=b"HTTP/1.1 200 OK\r\n"), True),  # bytes past the length
        (b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nblob", True),  # HTTP/1.0: no keep-alive
    ],
)
def test_the_connection_itself_refuses_reuse(server_factory, answer: bytes, closed: bool) -> None:
    """Not only the pool's expiry check: the connection closes itself after an unclean answer."""

    def reply(sock: socket.socket, n: int) -> None:
        sock.sendall(answer)

    server = server_factory(reply)

    async def main() -> tuple[bytes, bool, bool]:
        conn = BulkConnection(httpcore.Origin(b"http", b"127.0.0.1", server.port), None, 30)
        host = f"127.0.0.1:{server.port}"
        request = httpcore.Request("GET", f"http://{host}/", headers={"Host": host})
        response = await conn.handle_async_request(request)
        await asyncio.sleep(0.05)  # let any extra bytes arrive with the body
        body = await response.aread()
        await response.aclose()
        return body, conn.is_closed(), conn.is_available()

    body, is_closed, available = asyncio.run(main())
    assert (body, is_closed, available) == (b"blob", closed, not closed)


def test_a_head_that_never_ends_is_refused_past_its_limit(server_factory) -> None:
    """A hostile server streams one endless header line: refused once it passes MAX_HEAD, not
    buffered on; the connection is not kept."""
    sent: list[int] = []

    def reply(sock: socket.socket, n: int) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        total = 0
        for _ in range(400):  # up to 25 MiB, stopped by the client's close long before
            sock.sendall(b"a" * 65536)
            total += 65536
            sent.append(total)

    server = server_factory(reply)

    async def main() -> None:
        async with _pool() as pool:
            with pytest.raises(httpcore.RemoteProtocolError):  # not a ReadTimeout after 25 MiB
                await _get(pool, f"http://127.0.0.1:{server.port}/", timeout={"read": 5.0})

    asyncio.run(main())
    _wait_for(lambda: server.closed_by_client == 1)
    assert server.closed_by_client == 1
    assert sent and sent[-1] < 16 * MAX_HEAD + 8 * BUFFER  # the client stopped reading early
