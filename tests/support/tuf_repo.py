"""A tiny TUF repository built with python-tuf's metadata API, served over loopback HTTP.

Enough to test lockman's trusted-root refresh against real TUF metadata: publish a target,
rotate the root key, let metadata expire, roll a version back.
"""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

ROLES = ("root", "targets", "snapshot", "timestamp")


class TufRepo:
    """Metadata in memory, published as files under ``directory`` (``N.root.json`` etc.)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        (self.dir / "targets").mkdir(parents=True, exist_ok=True)
        self.signers = {role: CryptoSigner.generate_ed25519() for role in ROLES}
        expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
        self.root = Metadata(Root(expires=expiry, consistent_snapshot=False))
        for role, signer in self.signers.items():
            self.root.signed.add_key(signer.public_key, role)
        self.targets = Metadata(Targets(expires=expiry))
        self.snapshot = Metadata(Snapshot(expires=expiry))
        self.timestamp = Metadata(Timestamp(expires=expiry))
        self.publish_root()

    def _write(self, md: Metadata, name: str) -> None:
        (self.dir / name).write_bytes(md.to_bytes(JSONSerializer(compact=False)))

    def publish_root(self, extra_signers: tuple[CryptoSigner, ...] = ()) -> None:
        """Sign the root with the current (and any outgoing) root keys; write ``N.root.json``."""
        self.root.signatures.clear()
        for s in (self.signers["root"], *extra_signers):
            self.root.sign(s, append=True)
        self._write(self.root, f"{self.root.signed.version}.root.json")

    def rotate_root_key(self) -> None:
        """New root key, signed by both old and new (the TUF rotation rule)."""
        old = self.signers["root"]
        new = CryptoSigner.generate_ed25519()
        self.root.signed.revoke_key(old.public_key.keyid, "root")
        self.root.signed.add_key(new.public_key, "root")
        self.root.signed.version += 1
        self.signers["root"] = new
        self.publish_root(extra_signers=(old,))

    def add_target(self, name: str, data: bytes) -> None:
        """Publish a target and new targets, snapshot and timestamp metadata."""
        (self.dir / "targets" / name).write_bytes(data)
        self.targets.signed.targets[name] = TargetFile.from_data(name, data)
        self.targets.signed.version += 1
        self.publish_top(bump=False)

    def publish_top(self, *, bump: bool = True, expires: datetime | None = None) -> None:
        """Re-sign targets/snapshot/timestamp (optionally with a new expiry)."""
        for md in (self.targets, self.snapshot, self.timestamp):
            if expires is not None:
                md.signed.expires = expires
        if bump:
            self.targets.signed.version += 1
        self.targets.signatures.clear()
        self.targets.sign(self.signers["targets"])
        self._write(self.targets, "targets.json")
        self.snapshot.signed.meta["targets.json"] = MetaFile(version=self.targets.signed.version)
        self.snapshot.signed.version += 1
        self.snapshot.signatures.clear()
        self.snapshot.sign(self.signers["snapshot"])
        self._write(self.snapshot, "snapshot.json")
        self.timestamp.signed.snapshot_meta = MetaFile(version=self.snapshot.signed.version)
        self.timestamp.signed.version += 1
        self.timestamp.signatures.clear()
        self.timestamp.sign(self.signers["timestamp"])
        self._write(self.timestamp, "timestamp.json")

    def rollback_timestamp(self) -> None:
        """Serve a timestamp with a lower version than the client has seen."""
        self.timestamp.signed.version -= 2
        self.timestamp.signatures.clear()
        self.timestamp.sign(self.signers["timestamp"])
        self._write(self.timestamp, "timestamp.json")

    def root_bytes(self, version: int = 1) -> bytes:
        """The ``root.json`` a client starts from."""
        return (self.dir / f"{version}.root.json").read_bytes()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Endless:
    """Paths answered with a body that never ends (no Content-Length), and how much was sent."""

    paths: tuple[str, ...]
    sent: int = 0
    chunk: bytes = b"{" * 65536


@contextmanager
def serve(
    directory: Path,
    requests: list[str] | None = None,
    *,
    tls: Any = None,
    endless: Endless | None = None,
) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1; yield the base URL. Each request's path is appended to
    ``requests`` when given (to prove a run made none). ``tls``: a ``trustme.CA`` whose
    certificate for 127.0.0.1 the server presents (https). ``endless``: those paths get a body
    that never ends, until the client hangs up (or 1 GiB)."""

    class Recording(_Quiet):
        def do_GET(self) -> None:
            if requests is not None:
                requests.append(self.path)
            if endless is not None and self.path in endless.paths:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                try:
                    while endless.sent < 1 << 30:
                        self.wfile.write(endless.chunk)
                        endless.sent += len(endless.chunk)
                except OSError:  # the client stopped reading and hung up
                    pass
                self.close_connection = True
                return
            super().do_GET()

    def handler(*args: object, **kwargs: object) -> _Quiet:
        return Recording(*args, directory=str(directory), **kwargs)  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    scheme = "http"
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.issue_cert("127.0.0.1").configure_cert(ctx)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
