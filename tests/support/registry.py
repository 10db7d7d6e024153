"""A real docker-registry for tests: start it on a free loopback port, push images to it.

The registry is Debian's ``docker-registry`` (distribution v2.8, the reference implementation).
When the binary (or skopeo, podman, umoci, oci-image-tool: :func:`require_tool`) is missing the
tests that need it skip, unless ``LOCKMAN_REQUIRE_REGISTRY=1`` (set by ``scripts/test``) or
``CI=true``, where they fail: CI must never pass by skipping.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def missing(why: str) -> NoReturn:
    """Something a test needs is not installed: fail under LOCKMAN_REQUIRE_REGISTRY=1 (set by
    scripts/test, which installs it) or CI=true, skip elsewhere."""
    if os.environ.get("LOCKMAN_REQUIRE_REGISTRY") == "1" or os.environ.get("CI") == "true":
        pytest.fail(f"{why}; required here (LOCKMAN_REQUIRE_REGISTRY=1 or CI=true)")
    pytest.skip(why)


def require_tool(*names: str) -> str:
    """The path of the first of ``names`` on PATH; see :func:`missing` when there is none."""
    for name in names:
        exe = shutil.which(name)
        if exe is not None:
            return exe
    missing(f"{names[0]} not installed (apt-get install {names[0]})")


def registry_binary() -> str:
    return require_tool("docker-registry", "registry")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Registry:
    """One running docker-registry process."""

    root: Path
    port: int = field(default_factory=free_port)
    auth: dict | None = None
    tls: tuple[Path, Path] | None = None  # (cert, key)
    ca: Path | None = None  # CA that signed the TLS certificate (for pushing)
    client_cas: Path | None = None  # require client certificates signed by this CA
    push_cert: tuple[str, str] | None = None  # client (cert, key) for pushing when required
    storage: Path | None = None  # share one storage between registries (default: root/data)
    log_level: str = "info"  # the access log is written at any level
    proc: subprocess.Popen | None = None
    username: str | None = None
    password: str | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def log_path(self) -> Path:
        return self.root / "registry.log"

    def config(self) -> dict:
        http: dict = {"addr": self.host, "headers": {"X-Content-Type-Options": ["nosniff"]}}
        if self.tls:
            http["tls"] = {"certificate": str(self.tls[0]), "key": str(self.tls[1])}
            if self.client_cas:
                http["tls"]["clientcas"] = [str(self.client_cas)]
        cfg: dict = {
            "version": 0.1,
            "log": {"level": self.log_level, "accesslog": {"disabled": False}, "formatter": "text"},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage or self.root / "data")},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": http,
        }
        if self.auth:
            cfg["auth"] = self.auth
        return cfg

    def start(self) -> Registry:
        exe = registry_binary()
        self.root.mkdir(parents=True, exist_ok=True)
        cfg_path = self.root / "config.yml"
        cfg_path.write_text(json.dumps(self.config()))  # JSON is YAML
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [exe, "serve", str(cfg_path)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def request_count(self) -> int:
        return len(self.access_log_lines())

    def access_log_lines(self) -> list[str]:
        """Requests the registry served (its access log), one line each."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [ln for ln in lines if '"' in ln and "HTTP/" in ln and "msg=" not in ln]

    # -- pushing through the distribution API --------------------------------------------------
    def client(self) -> httpx.Client:
        auth = (self.username, self.password) if self.username else None
        verify: ssl.SSLContext | bool = True
        if self.tls:
            verify = ssl.create_default_context(cafile=str(self.ca or self.tls[0]))
            if self.push_cert:
                verify.load_cert_chain(*self.push_cert)
        return httpx.Client(base_url=self.url, auth=auth, verify=verify, timeout=30)

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        with self.client() as c:
            r = c.post(f"/v2/{repo}/blobs/uploads/")
            assert r.status_code == 202, r.text
            loc = r.headers["location"]
            sep = "&" if "?" in loc else "?"
            r = c.put(
                f"{loc}{sep}digest={digest}",
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert r.status_code == 201, r.text
        return digest

    def push_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        with self.client() as c:
            r = c.put(f"/v2/{repo}/manifests/{ref}", content=data, headers={"Content-Type": media_type})
            assert r.status_code == 201, r.text
        return sha256(data)

    def push_image(
        self,
        repo: str,
        tag: str | None,
        *,
        arch: str = "amd64",
        os_: str = "linux",
        variant: str | None = None,
        salt: str = "",
        layer_size: int = 64,
        media_type: str = OCI_MANIFEST,
        layers: list[bytes] | None = None,
    ) -> Image:
        """One image; ``layers`` replaces its one generated layer of ``layer_size`` bytes."""
        cfg_obj = {
            "architecture": arch,
            "os": os_,
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {"salt": salt}},
        }
        if variant:
            cfg_obj["variant"] = variant
        config = json.dumps(cfg_obj, sort_keys=True).encode()
        seed = hashlib.sha256(f"{repo}{arch}{variant}{salt}".encode()).digest()
        if layers is None:
            layers = [(seed * (layer_size // len(seed) + 1))[:layer_size]]
        cd = self.push_blob(repo, config)
        layer_digests = [self.push_blob(repo, layer) for layer in layers]
        cfg_type = (
            OCI_CONFIG if media_type == OCI_MANIFEST else "application/vnd.docker.container.image.v1+json"
        )
        layer_type = (
            OCI_LAYER if media_type == OCI_MANIFEST else "application/vnd.docker.image.rootfs.diff.tar.gzip"
        )
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": media_type,
                "config": {"mediaType": cfg_type, "digest": cd, "size": len(config)},
                "layers": [
                    {"mediaType": layer_type, "digest": ld, "size": len(layer)}
                    for ld, layer in zip(layer_digests, layers, strict=True)
                ],
            },
            indent=3,
        ).encode()
        digest = self.push_manifest(repo, tag or sha256(manifest), manifest, media_type)
        return Image(repo, tag, digest, manifest, media_type, config, list(layers))

    def push_index(
        self,
        repo: str,
        tag: str,
        platforms: list[str],
        *,
        salt: str = "",
        attestation: bool = True,
        media_type: str = OCI_INDEX,
    ) -> Index:
        children = []
        for p in platforms:
            parts = p.split("/")
            img = self.push_image(
                repo,
                None,
                os_=parts[0],
                arch=parts[1],
                variant=parts[2] if len(parts) > 2 else None,
                salt=salt,
                media_type=OCI_MANIFEST if media_type == OCI_INDEX else DOCKER_MANIFEST,
            )
            children.append((p, img))
        descs = []
        for p, img in children:
            parts = p.split("/")
            plat = {"architecture": parts[1], "os": parts[0]}
            if len(parts) > 2:
                plat["variant"] = parts[2]
            descs.append(
                {
                    "mediaType": img.media_type,
                    "digest": img.digest,
                    "size": len(img.manifest),
                    "platform": plat,
                }
            )
        if attestation:
            att = self.push_image(repo, None, os_="unknown", arch="unknown", salt="att" + salt)
            descs.append(
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": att.digest,
                    "size": len(att.manifest),
                    "platform": {"architecture": "unknown", "os": "unknown"},
                    "annotations": {
                        "vnd.docker.reference.type": "attestation-manifest",
                        "vnd.docker.reference.digest": children[0][1].digest,
                    },
                }
            )
        index = json.dumps(
            {"schemaVersion": 2, "mediaType": media_type, "manifests": descs}, indent=2
        ).encode()
        digest = self.push_manifest(repo, tag, index, media_type)
        return Index(repo, tag, digest, index, {p: img for p, img in children})


@dataclass
class Image:
    repo: str
    tag: str | None
    digest: str
    manifest: bytes
    media_type: str
    config: bytes
    layers: list[bytes]


@dataclass
class Index:
    repo: str
    tag: str
    digest: str
    manifest: bytes
    children: dict[str, Image]


def htpasswd_line(user: str, password: str) -> str:
    import bcrypt

    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}"


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class TLSSetup:
    registry: Registry
    ca: Any  # trustme.CA
    ca_pem: Path
    root: Path


def start_tls(root: Path, *, client_certs: bool = False, auth: tuple[str, str] | None = None) -> TLSSetup:
    """A TLS docker-registry with a throw-away CA (trustme); ``auth``: htpasswd (user, password)."""
    import trustme

    ca = trustme.CA()
    root.mkdir(parents=True, exist_ok=True)
    server = ca.issue_cert("127.0.0.1", "localhost")
    chain, key, ca_pem = root / "server-chain.pem", root / "server.key", root / "ca.pem"
    chain.write_bytes(b"".join(c.bytes() for c in server.cert_chain_pems))
    key.write_bytes(server.private_key_pem.bytes())
    ca.cert_pem.write_to_path(str(ca_pem))
    reg = Registry(root / "registry", tls=(chain, key), ca=ca_pem)
    if auth is not None:
        (root / "htpasswd").write_text(htpasswd_line(*auth) + "\n")
        reg.auth = {"htpasswd": {"realm": "lockman-test", "path": str(root / "htpasswd")}}
        reg.username, reg.password = auth
    if client_certs:
        client = ca.issue_cert("lockman-test-client")
        cert, ckey = root / "push-client.cert", root / "push-client.key"
        cert.write_bytes(b"".join(c.bytes() for c in client.cert_chain_pems))
        ckey.write_bytes(client.private_key_pem.bytes())
        reg.client_cas = ca_pem
        reg.push_cert = (str(cert), str(ckey))
    reg.start()
    return TLSSetup(reg, ca, ca_pem, root)
