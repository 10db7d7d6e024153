"""A loopback stand-in for the part of GitHub's REST API the Action's review mode uses: issue
comments of pull requests (list, create, edit), with the bearer token checked. Comments live in
memory; ``requests`` records each call, so tests can count what was posted and edited."""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeGitHub:
    url: str = ""
    token: str = ""
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> {"pr", "body", "user"}
    requests: list[tuple[str, str]] = field(default_factory=list)

    def on(self, pr: int) -> list[str]:
        """The bodies of the comments on ``pr``, oldest first."""
        return [c["body"] for _, c in sorted(self.comments.items()) if c["pr"] == pr]


LIST = re.compile(r"^/repos/[^/]+/[^/]+/issues/(\d+)/comments$")
EDIT = re.compile(r"^/repos/[^/]+/[^/]+/issues/comments/(\d+)$")


@contextmanager
def fake_github(token: str) -> Iterator[FakeGitHub]:
    state = FakeGitHub(token=token)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _reply(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            path, _, query = self.path.partition("?")
            with lock:
                state.requests.append((method, path))
            if self.headers.get("Authorization") != f"Bearer {state.token}":
                return self._reply(401, {"message": "Bad credentials"})
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else {}
            with lock:
                if (m := LIST.match(path)) and method == "GET":
                    page = int(dict(p.split("=") for p in query.split("&") if "=" in p).get("page", "1"))
                    mine = [
                        {"id": i, "body": c["body"], "user": {"login": c["user"]}}
                        for i, c in sorted(state.comments.items())
                        if c["pr"] == int(m[1])
                    ]
                    return self._reply(200, mine[(page - 1) * 100 : page * 100])
                if (m := LIST.match(path)) and method == "POST":
                    new = max(state.comments, default=1000) + 1
                    state.comments[new] = {"pr": int(m[1]), "body": body["body"], "user": "github-actions[bot]"}
                    return self._reply(201, {"id": new, "body": body["body"]})
                if (m := EDIT.match(path)) and method == "PATCH" and int(m[1]) in state.comments:
                    state.comments[int(m[1])]["body"] = body["body"]
                    return self._reply(200, {"id": int(m[1]), "body": body["body"]})
            return self._reply(404, {"message": "Not Found"})

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        thread.join()
