"""A small Docker token server for tests, and a docker-registry that trusts it.

The registry runs with ``auth: token``: it accepts ES256 JWTs whose ``kid`` is the libtrust key
id of the public key in its ``rootcertbundle``. The server below issues them over plain HTTP on
loopback (allowed, since the registry itself is loopback): ``GET /token`` with optional Basic
credentials, or ``POST /token`` with an OAuth2 ``refresh_token`` (docker's identity tokens) or
``password`` grant. Users get ``pull`` on what they ask for; anonymous callers get ``pull`` on
``public/…`` repositories only and an empty grant elsewhere, as Docker Hub does for private ones
(``anonymous_pull=True`` grants anonymous pulls everywhere, as Docker Hub does for public images:
the benchmark uses that). Every request is recorded in ``hits``. With ``ssl_context`` it serves
HTTPS, doing each TLS handshake in the connection's own thread.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from lockman.registry.challenge import parse_challenges
from tests.support.registry import Registry

SERVICE = "lockman-test-registry"
ISSUER = "lockman-test-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """docker/libtrust's key id: base32 of the first 240 bits of sha256(SPKI DER), in 4s."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(b32[i : i + 4] for i in range(0, len(b32), 4))


@dataclass
class Hit:
    method: str
    scopes: list[str]
    user: str | None  # who authenticated, None when anonymous
    grant: str  # get | refresh_token | password


@dataclass
class TokenServer:
    users: dict[str, str] = field(default_factory=dict)  # user → password
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token → user
    lifetime: int = 300
    hits: list[Hit] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)  # tokens handed out over HTTP
    anonymous_pull: bool = False
    max_grants: int | None = None  # grant at most this many scopes per token (to provoke insufficient_scope)
    ssl_context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = libtrust_key_id(self.key.public_key())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lockman test token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

        context = self.ssl_context

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 512

            def finish_request(self, request, client_address):  # type: ignore[no-untyped-def]
                if context is not None:
                    try:
                        request = context.wrap_socket(request, server_side=True)
                    except (ssl.SSLError, OSError):
                        return
                super().finish_request(request, client_address)

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def realm(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/token"

    @property
    def requests(self) -> int:
        return len(self.hits)

    @property
    def scopes(self) -> list[list[str]]:
        """The scopes of each token request, in order."""
        return [h.scopes for h in self.hits]

    def start(self) -> TokenServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()

    def write_bundle(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    # -- tokens ----------------------------------------------------------------------------------
    def mint(self, access: list[dict], subject: str = "") -> str:
        header = {"typ": "JWT", "alg": "ES256", "kid": self.kid}
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + self.lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    @staticmethod
    def access_for(scopes: list[str], actions: set[str] | None = None) -> list[dict]:
        out = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, acts = rest.rpartition(":")
            wanted = set(acts.split(","))
            granted = sorted(wanted if actions is None else wanted & actions)
            if kind == "repository" and granted:
                out.append({"type": kind, "name": name, "actions": granted})
        return out

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(h.path)
        query = parse_qs(url.query)
        user: str | None = None
        grant = "get"
        if method == "POST":
            length = int(h.headers.get("Content-Length") or 0)
            form = parse_qs(h.rfile.read(length).decode())
            grant = (form.get("grant_type") or [""])[0]
            scopes = " ".join(form.get("scope", [])).split()
            if grant == "refresh_token":
                user = self.refresh_tokens.get((form.get("refresh_token") or [""])[0])
            elif grant == "password":
                u, p = (form.get("username") or [""])[0], (form.get("password") or [""])[0]
                user = u if self.users.get(u) == p and p else None
            if user is None:
                return self._send(h, 401, {"error": "invalid_grant"})
        else:
            scopes = [s for v in query.get("scope", []) for s in v.split()]
            auth = h.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                if self.users.get(u) != p:
                    self.hits.append(Hit(method, scopes, None, grant))
                    return self._send(h, 401, {"details": "incorrect username or password"})
                user = u
        self.hits.append(Hit(method, scopes, user, grant))
        if user is not None:
            access = self.access_for(scopes, {"pull"})
        else:
            access = [
                a
                for a in self.access_for(scopes, {"pull"})
                if self.anonymous_pull or a["name"].startswith("public/")
            ]
        if self.max_grants is not None:
            access = access[: self.max_grants]
        token = self.mint(access, user or "")
        self.issued.append(token)
        body = {"token": token, "expires_in": self.lifetime}
        if method == "POST":
            body = {"access_token": token, "expires_in": self.lifetime, "scope": " ".join(scopes)}
        self._send(h, 200, body)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


class _MintAuth(httpx.Auth):
    """Pushes in tests: answer the registry's challenge by minting a push token directly."""

    def __init__(self, server: TokenServer) -> None:
        self.server = server

    def auth_flow(self, request: httpx.Request):
        response = yield request
        if response.status_code == 401:
            (challenge,) = parse_challenges(response.headers.get_list("www-authenticate"))
            scopes = challenge.params.get("scope", "").split()
            token = self.server.mint(self.server.access_for(scopes), "pusher")
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


@dataclass
class TokenRegistry(Registry):
    """docker-registry with ``auth: token`` trusting ``server``; pushes mint their own tokens."""

    server: TokenServer | None = None

    def client(self) -> httpx.Client:
        assert self.server is not None
        return httpx.Client(base_url=self.url, auth=_MintAuth(self.server), timeout=30)


def registry_auth(server: TokenServer, root: Path, realm: str | None = None) -> dict:
    """The ``auth`` section of a docker-registry config that trusts ``server``'s tokens."""
    root.mkdir(parents=True, exist_ok=True)
    bundle = server.write_bundle(root / "token-root.pem")
    return {
        "token": {
            "realm": realm or server.realm,
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(bundle),
        }
    }


def token_registry(root: Path, server: TokenServer) -> TokenRegistry:
    return TokenRegistry(root, auth=registry_auth(server, root), server=server)
