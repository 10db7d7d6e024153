"""A loopback TCP listener for tests that play a server or proxy byte by byte."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable


class Listener:
    """A loopback listener handing each accepted connection to ``accepted`` on its own thread.

    ``close`` wakes the accept loop (closing a socket does not interrupt a blocked ``accept`` on
    Linux: the thread used to outlive the test), ends every connection and joins every thread;
    a handler's failure other than a dropped connection is raised there, in the test's own time.
    """

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._spawn(self._accept)

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        def run() -> None:
            try:
                target(*args)
            except OSError:
                pass  # the peer or close() dropped the connection
            except BaseException as e:
                self._errors.append(e)

        thread = threading.Thread(target=run, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def track(self, sock: socket.socket) -> socket.socket:
        """``sock``, to be shut down by ``close``."""
        with self._lock:
            self._socks.append(sock)
        return sock

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self._spawn(self.accepted, self.track(sock))

    def accepted(self, sock: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self._lock:
            socks, threads = list(self._socks), list(self._threads)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(10)
        for sock in socks:
            sock.close()
        assert not any(t.is_alive() for t in threads), "a listener thread did not stop"
        if self._errors:
            raise self._errors[0]


def pipe(src: socket.socket, dst: socket.socket) -> None:
    """Copy ``src`` to ``dst`` until ``src`` ends, then end ``dst``'s sending side."""
    try:
        while data := src.recv(65536):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


class ConnectProxy(Listener):
    """An HTTP CONNECT proxy (what HTTPS_PROXY names): the TLS handshake happens through it.
    ``tunnels`` records each ``host:port`` asked for."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []
        super().__init__()

    def accepted(self, sock: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                return
            head += data
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        assert method == "CONNECT", method
        self.tunnels.append(target)
        host, port = target.rsplit(":", 1)
        upstream = self.track(socket.create_connection((host, int(port))))
        sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self._spawn(pipe, upstream, sock)
        pipe(sock, upstream)


class CountingRelay(Listener):
    """A TCP relay that counts the connections made through it (TLS passes through untouched)."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.connections = 0
        super().__init__()

    def accepted(self, sock: socket.socket) -> None:
        self.connections += 1
        upstream = self.track(socket.create_connection(("127.0.0.1", self.target)))
        self._spawn(pipe, upstream, sock)
        pipe(sock, upstream)
