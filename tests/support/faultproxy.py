"""A fault-injecting HTTP proxy to put in front of the real docker-registry in tests.

Forwards every request to the registry unchanged, except those matching a rule, which get a
fault: a status code (503, 429 + Retry-After, a redirect), altered bytes, a truncated body, a
connection reset, a hang, a trickle (headers, then a byte at a time), a huge body (with an absurd
Content-Length, or chunked without one), or rewritten headers. Rules fire a set number of times, so "fails
twice, then works" is easy to say. Everything the proxy saw is recorded in ``requests``.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
}


@dataclass
class Rule:
    path: str  # regex searched in the request path
    action: str  # status | alter | truncate | reset | hang | trickle | huge | headers
    method: str | None = None
    times: int | None = None  # None: forever
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    transform: Callable[[bytes], bytes] | None = None
    delay: float = 0.0
    size: int = 0
    chunked: bool = False  # huge: no Content-Length, chunked transfer encoding
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        return (self.method is None or self.method == method) and re.search(self.path, path) is not None


class _QuietServer(ThreadingHTTPServer):
    """Keeps a handler's exception (a client hanging up mid-body, as lockman does on a body over
    its cap) off stderr: in-process tests read stderr to check lockman's one error line."""

    errors: list[BaseException]

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        self.errors = getattr(self, "errors", [])
        self.errors.append(sys.exc_info()[1])  # type: ignore[arg-type]

    # Handler threads are joined by server_close (block_on_close); stop() first ends the
    # connections they may be blocked on, so that no thread outlives the proxy's fixture.
    daemon_threads = False
    block_on_close = True
    _open: set[socket.socket]

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        self._open = getattr(self, "_open", set())
        self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        getattr(self, "_open", set()).discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        for sock in list(getattr(self, "_open", ())):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.rules: list[Rule] = []
        self.requests: list[tuple[str, str, int | str]] = []
        self.headers_seen: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FaultProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # hangs and trickles end now
        self.server.shutdown()
        self.server.drop_connections()
        self.server.server_close()
        self.thread.join()

    def add(self, path: str, action: str, **kw: object) -> Rule:
        rule = Rule(path, action, **kw)  # type: ignore[arg-type]
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def count(self, method: str | None = None, path: str = "") -> int:
        return sum(1 for m, p, _ in self.requests if (method is None or m == method) and path in p)

    # -- serving -------------------------------------------------------------------------------
    def _pick(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.fired += 1
                    return rule
        return None

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        method, path = h.command, h.path
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        rule = self._pick(method, path)
        self.requests.append((method, path, rule.action if rule else "forward"))
        self.headers_seen.append((method, path, {k.lower(): v for k, v in h.headers.items()}))
        if rule is not None and rule.action == "status":
            return _respond(h, rule.status, rule.headers, rule.body, method)
        if rule is not None and rule.action == "reset":
            return _reset(h)
        if rule is not None and rule.action == "hang":
            self.stopping.wait(rule.delay or 3600)
            return _reset(h)

        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP}
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        out_headers = {k: v for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP}
        if rule is None or rule.action == "headers":
            if rule is not None:  # a header set to "" is removed
                drop = {k.lower() for k, v in rule.headers.items() if v == ""}
                out_headers = {k: v for k, v in out_headers.items() if k.lower() not in drop}
                out_headers.update({k: v for k, v in rule.headers.items() if v != ""})
            if method == "HEAD":
                resp.read()
                return _respond(h, resp.status, out_headers, b"", method, keep_length=True)
            return _stream(h, resp, out_headers)
        data = resp.read()
        conn.close()
        if rule.action == "alter":
            assert rule.transform is not None
            new = rule.transform(data) if method != "HEAD" else data
            return _respond(h, resp.status, out_headers, new, method, keep_length=method == "HEAD")
        if rule.action == "truncate":
            _send_head(h, resp.status, {**out_headers, "Content-Length": str(len(data))})
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            return _reset(h)
        if rule.action == "trickle":
            _send_head(h, resp.status, {**out_headers, "Content-Length": str(len(data))})
            try:
                for i in range(len(data)):
                    h.wfile.write(data[i : i + 1])
                    h.wfile.flush()
                    if self.stopping.wait(rule.delay or 0.1):
                        break
            except OSError:
                pass
            return _reset(h)
        if rule.action == "huge":
            size = rule.size or 1 << 30
            length = {"Transfer-Encoding": "chunked"} if rule.chunked else {"Content-Length": str(size)}
            _send_head(h, resp.status, {**out_headers, **length})
            chunk = b"x" * 65536
            sent = 0
            try:
                while sent < size:
                    if rule.chunked:
                        h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    else:
                        h.wfile.write(chunk)
                    sent += len(chunk)
                if rule.chunked:
                    h.wfile.write(b"0\r\n\r\n")
                h.wfile.flush()
            except OSError:
                return _reset(h)
            h.close_connection = True  # a plain close: a reset would discard what is unread
            return None
        raise AssertionError(f"unknown action {rule.action}")


def _send_head(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str]) -> None:
    h.send_response_only(status)
    for k, v in headers.items():
        h.send_header(k, v)
    h.end_headers()


def _respond(
    h: BaseHTTPRequestHandler,
    status: int,
    headers: dict[str, str],
    body: bytes,
    method: str,
    keep_length: bool = False,
) -> None:
    headers = dict(headers)
    if not keep_length:
        headers["Content-Length"] = str(len(body))
    _send_head(h, status, headers)
    if method != "HEAD" and body:
        h.wfile.write(body)
    h.wfile.flush()


def _stream(h: BaseHTTPRequestHandler, resp: http.client.HTTPResponse, headers: dict[str, str]) -> None:
    _send_head(h, resp.status, headers)
    while True:
        chunk = resp.read(65536)
        if not chunk:
            break
        h.wfile.write(chunk)
    h.wfile.flush()


def _reset(h: BaseHTTPRequestHandler) -> None:
    """Close with RST rather than FIN: what a crashed peer or middlebox looks like."""
    try:
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()
    except OSError:
        pass
    h.close_connection = True
