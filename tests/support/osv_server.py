"""A loopback OSV service (``POST /v1/querybatch``, ``GET /v1/vulns/{id}``) answering from real
OSV records (testdata/osv/records, provenance in testdata/osv/README.md).

A query matches a record when an ``affected`` entry names the package (case-insensitive) in
the query's ecosystem family (``Debian:12`` asks ``Debian``, ``Alpine:v3.18`` asks
``Alpine``) and the version is listed in ``versions`` or lies in an ECOSYSTEM range (compared
digit run by digit run, enough for the records used here). Every request is logged, so tests
count what lockman sent. Hostile switches: ``page_size`` (pagination), ``extra_ids`` (ids
named for every query), ``huge`` (a body of that many bytes), ``delay`` (seconds before
answering), ``raw_records`` (what to send for an id instead of the record), ``status``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.paths import TESTDATA

RECORDS = TESTDATA / "osv" / "records"


def load_records(directory: Path = RECORDS) -> dict[str, dict[str, Any]]:
    out = {}
    for p in sorted(directory.glob("*.json")):
        record = json.loads(p.read_text())
        out[record["id"]] = record
    return out


def _vkey(version: str) -> list[tuple[int, int | str]]:
    return [(0, int(x)) if x.isdigit() else (1, x) for x in re.findall(r"\d+|[a-z]+", version.lower())]


def affects(record: dict[str, Any], ecosystem: str, name: str, version: str) -> bool:
    family = ecosystem.split(":")[0]
    for a in record.get("affected", []):
        pkg = a.get("package") or {}
        if pkg.get("name", "").lower() != name.lower() or pkg.get("ecosystem", "").split(":")[0] != family:
            continue
        if version in a.get("versions", []):
            return True
        for r in a.get("ranges", []):
            if r.get("type") == "GIT":
                continue
            low, high = None, None
            for e in r.get("events", []):
                low = e.get("introduced", low)
                high = e.get("fixed", high)
            if low is None:
                continue
            above = low == "0" or _vkey(version) >= _vkey(low)
            below = high is None or _vkey(version) < _vkey(high)
            if above and below:
                return True
    return False


@dataclass
class OsvServer:
    records: dict[str, dict[str, Any]] = field(default_factory=load_records)
    page_size: int | None = None  # ids per answer before a next_page_token
    extra_ids: int = 0  # this many more (made-up) ids for every query
    unique_extra: bool = False  # the made-up ids differ per package and version (all "changed")
    huge: int = 0  # answer querybatch with a JSON body this many bytes long
    delay: float = 0.0
    status: int = 200
    raw_records: dict[str, bytes] = field(default_factory=dict)
    log: list[tuple[str, str, Any]] = field(default_factory=list)  # (method, path, JSON body)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self, "GET", None)

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                server._handle(self, "POST", json.loads(self.rfile.read(n) or b"null"))

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
                pass  # lockman hung up (a cap, a timeout): what the hostile tests want

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> OsvServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()

    def count(self, method: str | None = None, prefix: str = "") -> int:
        return sum(1 for m, p, _ in self.log if (method is None or m == method) and p.startswith(prefix))

    @property
    def queries(self) -> list[dict[str, Any]]:
        """Every query of every querybatch request, in order."""
        return [q for m, _, body in self.log if m == "POST" for q in body.get("queries", [])]

    # -- answers ---------------------------------------------------------------------------------
    def matching(self, query: dict[str, Any]) -> list[str]:
        pkg = query.get("package", {})
        version = query.get("version", "")
        ids = [
            i
            for i, r in sorted(self.records.items())
            if affects(r, pkg.get("ecosystem", ""), pkg.get("name", ""), version)
        ]
        tag = f"{pkg.get('name')}-{version}-" if self.unique_extra else ""
        return ids + [f"LOCKMAN-TEST-{tag}{n}" for n in range(self.extra_ids)]

    def _batch(self, body: dict[str, Any]) -> bytes:
        results = []
        for q in body["queries"]:
            ids = self.matching(q)
            start = int(q.get("page_token", "0"))
            size = self.page_size or len(ids) or 1
            page = ids[start : start + size]
            result: dict[str, Any] = {}
            if page:
                result["vulns"] = [{"id": i, "modified": "2024-01-01T00:00:00Z"} for i in page]
            if start + size < len(ids):
                result["next_page_token"] = str(start + size)
            results.append(result)
        return json.dumps({"results": results}).encode()

    def _handle(self, h: BaseHTTPRequestHandler, method: str, body: Any) -> None:
        with self._lock:
            self.log.append((method, h.path, body))
        if self.delay:
            time.sleep(self.delay)
        status, data = self.status, b""
        if status == 200 and method == "POST" and h.path == "/v1/querybatch":
            if self.huge:
                h.send_response(200)
                h.send_header("Content-Type", "application/json")
                h.send_header("Content-Length", str(self.huge))
                h.end_headers()
                chunk = b" " * 65536
                with_results = b'{"results": ['
                h.wfile.write(with_results)
                sent = len(with_results)
                try:
                    while sent < self.huge:
                        n = min(len(chunk), self.huge - sent)
                        h.wfile.write(chunk[:n])
                        sent += n
                except OSError:
                    pass  # lockman hung up once it had read enough: what the test wants
                return
            data = self._batch(body)
        elif status == 200 and method == "GET" and h.path.startswith("/v1/vulns/"):
            vid = h.path.removeprefix("/v1/vulns/")
            if vid in self.raw_records:
                data = self.raw_records[vid]
            elif vid in self.records:
                data = json.dumps(self.records[vid]).encode()
            else:
                status, data = 404, b'{"code": 5, "message": "Bug not found."}'
        elif status == 200:
            status, data = 404, b"{}"
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
