"""A scripted fake registry for unit tests: an ``httpx.MockTransport`` handler that speaks the
distribution API for any number of hosts, records every request, and can be told to lie.

The real docker-registry (tests/support/registry.py) answers correctly; the fake exists for what
it cannot be made to do: a mirror that lacks the image, a HEAD that is not allowed, a
Docker-Content-Digest that does not match the body, a 416 to a Range, a Range ignored, a blob
body cut short (as ggcr's ``httptest`` servers and httpx's own ``MockTransport`` tests do).
``fake.client()`` is a ``RegistryClient`` on it (no registries.conf of the machine's); no socket,
no thread.

    fake = FakeRegistry()
    digest = fake.put_manifest("registry.test", "app", "v1", body)
    fake.lie_digest = "sha256:" + "0" * 64          # every manifest answer now lies
    fake.status["mirror.test"] = 404               # everything but /v2/ is missing there
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from lockman.registry.client import RegistryClient
from lockman.registry.registries_conf import RegistriesConf

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
API_HEADERS = {"docker-distribution-api-version": "registry/2.0"}
TOKEN = "fake-registry-token"

_PATH = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>manifests|blobs)/(?P<ref>[^/]+)$")


class _Body(httpx.AsyncByteStream):
    """A body that arrives as a stream, in chunks, as a real transport's does (``content=``
    would hand lockman an already-read response, which its streaming reads refuse)."""

    def __init__(self, data: bytes, chunk: int = 1024) -> None:
        self.data, self.chunk = data, chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), self.chunk):
            yield self.data[i : i + self.chunk]


class _CutBody(httpx.AsyncByteStream):
    """A body whose connection resets after ``data`` (what arrived before the cut)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in _Body(self.data):
            yield chunk
        raise httpx.ReadError("connection reset by peer")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Seen:
    """One request as the fake received it."""

    method: str
    host: str
    path: str
    headers: dict[str, str]

    def __str__(self) -> str:
        return f"{self.method} {self.host}{self.path}"


@dataclass
class FakeRegistry:
    """Content per (host, repository); behaviour switches are plain attributes, set per test."""

    manifests: dict[tuple[str, str, str], tuple[bytes, str]] = field(default_factory=dict)
    blobs: dict[tuple[str, str], bytes] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)
    """host → the status every request but ``/v2/`` gets (404: a mirror without the image)."""
    head_status: int | None = None
    """A manifest HEAD answers this (405: a registry without HEAD) instead of the manifest."""
    lie_digest: str | None = None
    """Sent as Docker-Content-Digest on every manifest answer instead of the true digest."""
    range_status: int | None = None
    """A blob GET with a Range answers this (416) instead of a 206."""
    ignore_range: bool = False
    """A blob GET with a Range gets the whole blob with a 200, as a server without Range support."""
    cut_blobs_after: int | None = None
    """Every blob body (whole or ranged) is cut after this many bytes: the connection resets."""
    token_hosts: set[str] = field(default_factory=set)
    """Hosts that want a Bearer token from their ``/token`` endpoint (Docker token auth)."""

    # -- content -------------------------------------------------------------------------------
    def put_blob(self, host: str, repo: str, data: bytes) -> str:
        digest = sha256(data)
        self.blobs[(host, digest)] = data
        return digest

    def put_manifest(self, host: str, repo: str, tag: str | None, body: bytes, media_type: str = OCI_MANIFEST) -> str:
        """Store ``body`` under its digest (and ``tag``); its digest."""
        digest = sha256(body)
        self.manifests[(host, repo, digest)] = (body, media_type)
        if tag is not None:
            self.manifests[(host, repo, tag)] = (body, media_type)
        return digest

    def put_image(self, host: str, repo: str, tag: str, layer: bytes = b"layer") -> str:
        """A one-layer OCI image; its manifest digest."""
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": self.put_blob(host, repo, config), "size": len(config)},
                "layers": [{"mediaType": OCI_LAYER, "digest": self.put_blob(host, repo, layer), "size": len(layer)}],
            }
        ).encode()
        return self.put_manifest(host, repo, tag, manifest)

    # -- what happened -------------------------------------------------------------------------
    def seen(self, method: str | None = None, host: str | None = None, path: str = "") -> list[str]:
        """``"METHOD host/path"`` of each recorded request matching the filters, in order."""
        return [
            str(r)
            for r in self.requests
            if (method is None or r.method == method) and (host is None or r.host == host) and path in r.path
        ]

    # -- the API -------------------------------------------------------------------------------
    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self, **options: Any) -> RegistryClient:
        """A client (not yet entered) that reaches only this fake; ``options`` go to RegistryClient."""
        options.setdefault("registries", RegistriesConf([]))
        return RegistryClient(transport=self.transport, **options)

    def handle(self, request: httpx.Request) -> httpx.Response:
        host, path = request.url.netloc.decode(), request.url.path
        self.requests.append(Seen(request.method, host, path, {k.lower(): v for k, v in request.headers.items()}))
        if path == "/token":
            return httpx.Response(200, json={"token": TOKEN, "expires_in": 300})
        if host in self.token_hosts and request.headers.get("authorization") != f"Bearer {TOKEN}":
            challenge = f'Bearer realm="https://{host}/token",service="{host}"'
            return httpx.Response(401, headers={**API_HEADERS, "www-authenticate": challenge})
        if path == "/v2/":
            return httpx.Response(200, headers=API_HEADERS)
        if host in self.status:
            return httpx.Response(self.status[host], headers=API_HEADERS)
        m = _PATH.match(path)
        if m is None:
            return httpx.Response(404, headers=API_HEADERS)
        if m["kind"] == "manifests":
            return self._manifest(request, host, m["name"], m["ref"])
        return self._blob(request, host, m["ref"])

    def _manifest(self, request: httpx.Request, host: str, repo: str, ref: str) -> httpx.Response:
        found = self.manifests.get((host, repo, ref))
        if found is None:
            return httpx.Response(404, headers=API_HEADERS, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        if request.method == "HEAD" and self.head_status is not None:
            return httpx.Response(self.head_status, headers=API_HEADERS)
        body, media_type = found
        headers = {
            **API_HEADERS,
            "content-type": media_type,
            "docker-content-digest": self.lie_digest or sha256(body),
            "content-length": str(len(body)),
        }
        return httpx.Response(200, headers=headers, stream=_Body(b"" if request.method == "HEAD" else body))

    def _blob(self, request: httpx.Request, host: str, digest: str) -> httpx.Response:
        data = self.blobs.get((host, digest))
        if data is None:
            return httpx.Response(404, headers=API_HEADERS, json={"errors": [{"code": "BLOB_UNKNOWN"}]})
        wanted = request.headers.get("range")
        if wanted is None or self.ignore_range:
            headers = {**API_HEADERS, "content-length": str(len(data))}
            return httpx.Response(200, headers=headers, stream=self._blob_body(data))
        if self.range_status is not None:
            return httpx.Response(self.range_status, headers=API_HEADERS)
        start = int(wanted.removeprefix("bytes=").rstrip("-"))
        part = data[start:]
        headers = {
            **API_HEADERS,
            "content-range": f"bytes {start}-{len(data) - 1}/{len(data)}",
            "content-length": str(len(part)),
        }
        return httpx.Response(206, headers=headers, stream=self._blob_body(part))

    def _blob_body(self, data: bytes) -> httpx.AsyncByteStream:
        if self.cut_blobs_after is not None and len(data) > self.cut_blobs_after:
            return _CutBody(data[: self.cut_blobs_after])
        return _Body(data)
