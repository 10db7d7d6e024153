"""What RegistryAuth refuses from a token server, and when it fetches, reuses or drops a token.

A real docker-registry and tests/token_server.py answer correctly; these cases need a token
server that misbehaves (no token, an empty one, HTTP 500, a realm over ftp) and a registry that
revokes tokens, so an ``httpx.MockTransport`` stands in for both.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from lockman import console
from lockman.errors import AuthError, RegistryError
from lockman.model import reference
from lockman.registry import auth as auth_mod
from lockman.registry.auth import RegistryAuth
from lockman.registry.client import RegistryClient
from lockman.registry.credentials import CredentialStore
from lockman.registry.registries_conf import RegistriesConf
from tests.support.credentials import b64, docker_config

DIGEST = "sha256:" + "d" * 64
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HOST = "registry.example"


@dataclass
class Scripted:
    """registry.example (Bearer, or Basic) and its token realm at auth.example."""

    realm: str | None = "https://auth.example/token"
    scheme: str = "bearer"
    token_answer: Callable[[int], httpx.Response] | None = None
    """Override the token server's answer to its n-th request (default: a fresh valid token)."""
    valid: set[str] = field(default_factory=set)
    token_requests: list[httpx.Request] = field(default_factory=list)
    registry_requests: list[httpx.Request] = field(default_factory=list)

    def challenge(self) -> str:
        if self.scheme == "basic":
            return 'Basic realm="registry"'
        realm = f'realm="{self.realm}",' if self.realm else ""
        return f'Bearer {realm}service="{HOST}"'

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != HOST:
            self.token_requests.append(request)
            n = len(self.token_requests)
            if self.token_answer is not None:
                return self.token_answer(n)
            token = f"token-{n}-secret"
            self.valid.add(token)
            return httpx.Response(200, json={"token": token, "expires_in": 300})
        self.registry_requests.append(request)
        given = request.headers.get("authorization", "")
        if request.url.path != "/v2/" and given.removeprefix("Bearer ") in self.valid:
            return httpx.Response(
                200, headers={"content-type": MANIFEST, "docker-content-digest": DIGEST, "content-length": "2"}
            )
        if request.url.path != "/v2/" and self.scheme == "basic" and given.startswith("Basic "):
            return httpx.Response(
                200, headers={"content-type": MANIFEST, "docker-content-digest": DIGEST, "content-length": "2"}
            )
        return httpx.Response(401, headers={"www-authenticate": self.challenge()})


def resolve(server: Scripted, *refs: str) -> RegistryClient:
    """Resolve each reference in turn with one client; return the client (closed)."""

    async def go() -> RegistryClient:
        async with RegistryClient(
            transport=httpx.MockTransport(server.handler), registries=RegistriesConf([])
        ) as c:
            for ref in refs:
                await c.resolve(reference.parse(ref))
        return c

    return asyncio.run(go())


def creds(home: Path, **entry: Any) -> None:
    docker_config(home, {"auths": {HOST: entry}})


# ---------------------------------------------------------------- what a token server may not do


@pytest.mark.parametrize(
    ("answer", "error", "refusal"),
    [
        (httpx.Response(500, text="oops"), RegistryError, r"token server auth.example answered HTTP 500"),
        (httpx.Response(404), RegistryError, r"answered HTTP 404"),
        (httpx.Response(200, json={"token": ""}), RegistryError, r"token server auth.example sent no token"),
        (httpx.Response(200, json={"token": 12345}), RegistryError, r"sent no token"),
        (httpx.Response(200, json={"access_token": ""}), RegistryError, r"sent no token"),
        (httpx.Response(200, json=["token-in-a-list"]), RegistryError, r"sent no token"),
        (httpx.Response(200, text="not json"), RegistryError, r"sent no token"),
        (httpx.Response(401), AuthError, r"registry.example: authentication required \(no credentials found"),
    ],
)
def test_token_server_answers_that_are_not_a_token(answer, error: type, refusal: str) -> None:
    server = Scripted(token_answer=lambda n: answer)
    with pytest.raises(error, match=refusal):
        resolve(server, f"{HOST}/team/app:1")
    assert all("authorization" not in r.headers for r in server.registry_requests)


def test_token_server_refusing_given_credentials(isolated_env: Path) -> None:
    creds(isolated_env, auth=b64("alice", "refused-secret"))
    server = Scripted(token_answer=lambda n: httpx.Response(403))
    with pytest.raises(AuthError, match=r"authentication failed \(token server refused the credentials(; from [^)]*)?\)"):
        resolve(server, f"{HOST}/team/app:1")


def test_access_token_field_accepted_and_both_tokens_masked() -> None:
    body = {"access_token": "access-abc-123", "refresh_token": "refresh-def-456"}
    server = Scripted(token_answer=lambda n: httpx.Response(200, json=body))
    server.valid.add("access-abc-123")
    resolve(server, f"{HOST}/team/app:1")
    assert console.redact("a access-abc-123 r refresh-def-456") == "a *** r ***"


def test_bearer_token_is_masked_and_a_non_string_refresh_token_ignored() -> None:
    server = Scripted(
        token_answer=lambda n: httpx.Response(200, json={"token": "bearer-ghi-789", "refresh_token": 4567})
    )
    server.valid.add("bearer-ghi-789")
    resolve(server, f"{HOST}/team/app:1")
    assert console.redact("Bearer bearer-ghi-789 4567") == "Bearer *** 4567"


# ---------------------------------------------------------------- where the realm may be


def test_bearer_challenge_without_realm_refused() -> None:
    with pytest.raises(AuthError, match=r"registry.example: Bearer challenge without a realm"):
        resolve(Scripted(realm=None), f"{HOST}/team/app:1")


def test_loopback_registry_may_use_a_plain_http_realm_but_nothing_else() -> None:
    """Plain HTTP is allowed where the registry itself is (loopback); other schemes never are."""

    def run(realm: str) -> Scripted:
        server = Scripted(realm=realm)

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.host == "127.0.0.1":  # the registry answers as itself: same host
                request = httpx.Request(request.method, request.url.copy_with(host=HOST), headers=request.headers)
            return server.handler(request)

        async def go() -> None:
            async with RegistryClient(
                transport=httpx.MockTransport(handler), registries=RegistriesConf([])
            ) as c:
                await c.resolve(reference.parse("127.0.0.1:5000/team/app:1"))

        asyncio.run(go())
        return server

    assert run("http://auth.example/token").token_requests[0].url.scheme == "http"
    with pytest.raises(AuthError, match=r"refusing token realm ftp://auth.example"):
        run("ftp://auth.example/token")


# ---------------------------------------------------------------- which credential goes to the realm


def test_password_credentials_go_as_basic_to_the_realm(isolated_env: Path) -> None:
    creds(isolated_env, auth=b64("alice", "basic-realm-secret"))
    server = Scripted()
    resolve(server, f"{HOST}/team/app:1")
    (request,) = server.token_requests
    assert request.method == "GET"
    assert request.headers["authorization"] == "Basic " + b64("alice", "basic-realm-secret")
    assert request.url.params.get_list("scope") == ["repository:team/app:pull"]


@pytest.mark.parametrize("repo", ["team/app", "team/manifests/app", "blobs/x/referrers/y"])
def test_token_scope_is_the_references_not_a_guess_from_the_path(repo: str) -> None:
    """The scope comes from ``Reference.scope`` (ggcr's ``Repository.Scope``): a repository with
    ``/manifests/`` or ``/blobs/`` in its name is asked for whole, not cut at that component."""
    server = Scripted()
    resolve(server, f"{HOST}/{repo}:1")
    (request,) = server.token_requests
    assert request.url.params.get_list("scope") == [f"repository:{repo}:pull"]


def test_identity_token_goes_as_oauth_refresh_grant(isolated_env: Path) -> None:
    creds(isolated_env, identitytoken="identity-jkl-012")
    server = Scripted()
    resolve(server, f"{HOST}/team/app:1")
    (request,) = server.token_requests
    assert request.method == "POST" and "authorization" not in request.headers
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form["grant_type"] == "refresh_token" and form["refresh_token"] == "identity-jkl-012"
    assert form["scope"] == "repository:team/app:pull"


def test_username_without_password_sends_no_basic_header_to_the_realm(isolated_env: Path) -> None:
    creds(isolated_env, username="only-user")
    server = Scripted()
    resolve(server, f"{HOST}/team/app:1")
    (request,) = server.token_requests
    assert request.method == "GET" and "authorization" not in request.headers


def test_anonymous_token_request_carries_no_credentials() -> None:
    server = Scripted()
    resolve(server, f"{HOST}/team/app:1")
    (request,) = server.token_requests
    assert request.method == "GET" and "authorization" not in request.headers


def test_basic_registry_gets_no_header_from_an_identity_token_only_credential(isolated_env: Path) -> None:
    creds(isolated_env, identitytoken="identity-mno-345")
    server = Scripted(scheme="basic")
    with pytest.raises(AuthError, match=r"registry.example: authentication failed"):
        resolve(server, f"{HOST}/team/app:1")
    assert all("authorization" not in r.headers for r in server.registry_requests)


def test_basic_registry_without_credentials_says_so() -> None:
    server = Scripted(scheme="basic")
    with pytest.raises(AuthError, match=r"authentication required \(no credentials found for it"):
        resolve(server, f"{HOST}/team/app:1")


# ---------------------------------------------------------------- when tokens are fetched, reused, dropped


def test_known_challenge_saves_the_401_and_one_token_serves_the_repository() -> None:
    server = Scripted()
    resolve(server, f"{HOST}/team/app:1", f"{HOST}/team/app:2")
    # ping (401), then each HEAD goes out already authorised.
    assert [r.url.path for r in server.registry_requests] == [
        "/v2/",
        "/v2/team/app/manifests/1",
        "/v2/team/app/manifests/2",
    ]
    assert len(server.token_requests) == 1


def test_revoked_token_is_replaced_not_retried() -> None:
    server = Scripted()

    def revoke_after_first(request: httpx.Request) -> httpx.Response:
        response = server.handler(request)
        if request.url.path.endswith("/manifests/1") and response.status_code == 200:
            server.valid.clear()
        return response

    async def go() -> None:
        async with RegistryClient(
            transport=httpx.MockTransport(revoke_after_first), registries=RegistriesConf([])
        ) as c:
            await c.resolve(reference.parse(f"{HOST}/team/app:1"))
            await c.resolve(reference.parse(f"{HOST}/team/app:2"))

    asyncio.run(go())
    assert len(server.token_requests) == 2
    last = server.registry_requests[-1]
    assert last.headers["authorization"] == "Bearer token-2-secret"


def test_registry_refusing_a_fresh_token_is_an_auth_error(isolated_env: Path) -> None:
    creds(isolated_env, auth=b64("alice", "fresh-refused"))
    server = Scripted(token_answer=lambda n: httpx.Response(200, json={"token": f"never-valid-{n}"}))
    with pytest.raises(AuthError, match=r"registry.example: authentication failed \(credentials were refused(; from [^)]*)?\)"):
        resolve(server, f"{HOST}/team/app:1")


def test_401_without_a_challenge_is_an_auth_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return httpx.Response(401)

    async def go() -> None:
        async with RegistryClient(transport=httpx.MockTransport(handler), registries=RegistriesConf([])) as c:
            await c.resolve(reference.parse(f"{HOST}/team/app:1"))

    with pytest.raises(AuthError, match=r"registry.example: authentication required \(no usable challenge\)"):
        asyncio.run(go())


def test_expired_token_is_fetched_again(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(auth_mod, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    server = Scripted()

    def later(request: httpx.Request) -> httpx.Response:
        response = server.handler(request)
        if request.url.path.endswith("/manifests/1"):
            clock[0] += 301  # the 300-second token has expired before the next request
        return response

    async def go() -> None:
        async with RegistryClient(transport=httpx.MockTransport(later), registries=RegistriesConf([])) as c:
            await c.resolve(reference.parse(f"{HOST}/team/app:1"))
            await c.resolve(reference.parse(f"{HOST}/team/app:2"))

    asyncio.run(go())
    assert len(server.token_requests) == 2
    assert server.registry_requests[-1].headers["authorization"] == "Bearer token-2-secret"


# ---------------------------------------------------------------- RegistryAuth on its own: prefetch, odd paths


async def _learned(server: Scripted, store: CredentialStore | None = None) -> tuple[RegistryAuth, httpx.AsyncClient]:
    raw = httpx.AsyncClient(transport=httpx.MockTransport(server.handler))
    auth = RegistryAuth(store or CredentialStore(), raw.send, lambda host: False)
    auth.learn(HOST, await raw.get(f"https://{HOST}/v2/"))
    return auth, raw


def test_prefetch_one_token_for_many_repositories() -> None:
    server = Scripted()

    async def go() -> int:
        auth, raw = await _learned(server)
        async with httpx.AsyncClient(transport=httpx.MockTransport(server.handler), auth=auth) as c:
            await auth.prefetch(HOST, [])  # nothing to ask for: no request
            await auth.prefetch("elsewhere.example", ["a"])  # host never pinged: nothing known
            assert server.token_requests == []
            await auth.prefetch(HOST, ["team/b", "team/a"])
            for repo in ("team/a", "team/b"):
                assert (await c.head(f"https://{HOST}/v2/{repo}/manifests/1")).status_code == 200
        await raw.aclose()
        return len(server.token_requests)  # counted where they arrive

    assert asyncio.run(go()) == 1
    (request,) = server.token_requests
    assert request.url.params.get_list("scope") == ["repository:team/a:pull", "repository:team/b:pull"]


@pytest.mark.parametrize(
    ("status", "answered_by", "learned"),
    [
        (401, HOST, True),
        (200, HOST, False),  # a challenge header on a success asks for nothing
        (401, "evil.example", False),  # the ping was redirected: that challenge is another host's
    ],
)
def test_only_the_hosts_own_401_challenge_is_learned(status: int, answered_by: str, learned: bool) -> None:
    """A learned challenge is acted on before any 401 (prefetch, pre-authentication): only the
    registry's own refusal may teach one, else another host picks the realm our credentials go to."""
    server = Scripted()
    ping = httpx.Response(
        status,
        headers={"WWW-Authenticate": server.challenge()},
        request=httpx.Request("GET", f"https://{answered_by}/v2/"),
    )

    async def go() -> None:
        raw = httpx.AsyncClient(transport=httpx.MockTransport(server.handler))
        auth = RegistryAuth(CredentialStore(), raw.send, lambda host: False)
        auth.learn(HOST, ping)
        await auth.prefetch(HOST, ["team/a"])
        await raw.aclose()

    asyncio.run(go())
    assert len(server.token_requests) == (1 if learned else 0)


def test_prefetch_is_a_no_op_for_basic_registries() -> None:
    server = Scripted(scheme="basic")

    async def go() -> None:
        auth, raw = await _learned(server)
        await auth.prefetch(HOST, ["team/a"])
        await raw.aclose()

    asyncio.run(go())
    assert server.token_requests == []


def test_non_repository_paths_use_host_credentials_only(isolated_env: Path) -> None:
    """A registry-wide scope must not pick up a credential scoped to a repository named like it."""
    docker_config(
        isolated_env,
        {"auths": {f"{HOST}/catalog": {"auth": b64("repo", "scoped")}, HOST: {"auth": b64("host", "wide")}}},
    )
    server = Scripted()
    wanted = 'Bearer realm="https://auth.example/token",service="x",scope="registry:catalog:*"'

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == HOST and request.url.path == "/v2/_catalog" and not request.headers.get(
            "authorization"
        ):
            server.registry_requests.append(request)
            return httpx.Response(401, headers={"www-authenticate": wanted})
        return server.handler(request)

    async def go() -> None:
        raw = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        auth = RegistryAuth(CredentialStore(), raw.send, lambda host: False)
        async with raw, httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth) as c:
            assert (await c.get(f"https://{HOST}/v2/_catalog")).status_code == 200

    asyncio.run(go())
    (request,) = server.token_requests
    assert request.headers["authorization"] == "Basic " + b64("host", "wide")
    assert request.url.params.get_list("scope") == ["registry:catalog:*"]


def test_basic_credentials_on_a_path_without_repository(isolated_env: Path) -> None:
    creds(isolated_env, auth=b64("alice", "catalog-secret"))
    server = Scripted(scheme="basic")

    async def go() -> str:
        auth, raw = await _learned(server)
        async with httpx.AsyncClient(transport=httpx.MockTransport(server.handler), auth=auth) as c:
            await c.get(f"https://{HOST}/v2/_catalog")
        await raw.aclose()
        return server.registry_requests[-1].headers.get("authorization", "")

    assert asyncio.run(go()) == "Basic " + b64("alice", "catalog-secret")


def test_no_secret_in_the_error_messages(isolated_env: Path) -> None:
    creds(isolated_env, auth=b64("alice", "never-in-messages"))
    server = Scripted(token_answer=lambda n: httpx.Response(403))
    with pytest.raises(AuthError) as info:
        resolve(server, f"{HOST}/team/app:1")
    assert "never-in-messages" not in str(info.value)
    assert json.dumps(str(info.value)).count(b64("alice", "never-in-messages")) == 0


def test_redirect_to_a_host_asking_for_authentication_gets_nothing(isolated_env: Path) -> None:
    """The registry redirects to another host that answers 401: its challenge is not the
    registry's, so no token is fetched for it and the registry's credentials never go there."""
    creds(isolated_env, username="user", password="registry-password")
    server = Scripted()
    foreign: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "cdn.example":
            foreign.append(request)
            return httpx.Response(401, headers={"www-authenticate": 'Bearer realm="https://cdn.example/token"'})
        if request.url.host == HOST and request.url.path.startswith("/v2/team/app/manifests/"):
            given = request.headers.get("authorization", "").removeprefix("Bearer ")
            if given in server.valid:
                return httpx.Response(307, headers={"location": "https://cdn.example/blob"})
        return server.handler(request)

    async def go() -> None:
        async with RegistryClient(transport=httpx.MockTransport(handler), registries=RegistriesConf([])) as c:
            await c.resolve(reference.parse(f"{HOST}/team/app:1"))

    with pytest.raises(AuthError, match=r"redirected to cdn.example, which asks for authentication"):
        asyncio.run(go())
    assert foreign and all("authorization" not in r.headers for r in foreign)
    assert all(r.url.host == "auth.example" for r in server.token_requests)
