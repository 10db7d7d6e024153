"""Where credentials may travel: never to a plain-HTTP realm of an HTTPS registry, never across
hosts on a redirect. A local registry cannot serve these cases, so a MockTransport stands in."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from lockman.errors import AuthError
from lockman.model import reference
from lockman.registry.client import RegistryClient
from lockman.registry.registries_conf import RegistriesConf
from tests.support.credentials import b64, docker_config

DIGEST = "sha256:" + "b" * 64
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def client(handler) -> RegistryClient:
    return RegistryClient(transport=httpx.MockTransport(handler), registries=RegistriesConf([]))


def test_plain_http_realm_refused_for_https_registry(isolated_env: Path) -> None:
    docker_config(isolated_env, {"auths": {"registry.example": {"auth": b64("alice", "realm-secret")}}})
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        challenge = 'Bearer realm="http://auth.example/token",service="registry.example"'
        return httpx.Response(401, headers={"www-authenticate": challenge})

    async def go() -> None:
        async with client(handler) as c:
            await c.resolve(reference.parse("registry.example/team/app:1"))

    with pytest.raises(AuthError, match=r"registry.example: refusing token realm http://auth.example"):
        asyncio.run(go())
    assert not any(u.startswith("http://auth.example") for u in seen)


def test_authorization_not_sent_across_hosts_on_redirect(isolated_env: Path) -> None:
    docker_config(isolated_env, {"auths": {"registry.example": {"auth": b64("alice", "redirect-secret")}}})
    config = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST, "size": 2}
    body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": []}).encode()
    auth_seen: dict[str, str | None] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        auth_seen[host] = request.headers.get("authorization")
        if host == "registry.example":
            if request.url.path == "/v2/" or "authorization" not in request.headers:
                return httpx.Response(401, headers={"www-authenticate": 'Basic realm="r"'})
            return httpx.Response(307, headers={"location": "https://storage.example/signed?sig=1"})
        return httpx.Response(200, stream=httpx.ByteStream(body), headers={"content-type": MANIFEST})

    async def go() -> None:
        async with client(handler) as c:
            m = await c.get_manifest(reference.parse("registry.example/team/app:1"))
            assert m.raw == body

    asyncio.run(go())
    assert auth_seen["registry.example"] == "Basic " + b64("alice", "redirect-secret")
    assert auth_seen["storage.example"] is None
