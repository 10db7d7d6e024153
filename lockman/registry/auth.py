"""Registry authentication as one ``httpx.Auth``: Basic, and the Bearer token dance.

The flow: send (with a cached token or Basic header when the host's challenge is already known,
saving the 401 round trip), see a 401 challenge, get a token for the request's scope from the
realm, send again. Tokens are cached per (host, scope) until they expire and shared by every
request they cover; several scopes can be fetched in one token request (:meth:`prefetch`).
Credentials never follow a redirect to another host: httpx strips ``Authorization`` on
cross-origin redirects, and the realm gets the user's credentials only over HTTPS (or plain HTTP
when the registry itself is allowed plain HTTP).
"""

from __future__ import annotations

import asyncio
import base64
import math
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

import httpx

from lockman import safejson
from lockman.console import register_secret
from lockman.errors import AuthError, RegistryError
from lockman.model.reference import repository_scope
from lockman.registry.challenge import Challenge, parse_challenges
from lockman.registry.credentials import Credential, CredentialStore

_SCOPE_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags|referrers)/")
MIN_TOKEN_LIFETIME = 60.0
CLIENT_ID = "lockman"
SCOPE = "lockman.scope"  # request extension: the token scope, from the request's Reference.scope()


def scope_of(request: httpx.Request) -> str | None:
    """The scope the request was built for (``Reference.scope``, as ggcr's ``Repository.Scope``).

    A request built by hand, without a reference, falls back to a guess from its path.
    """
    scope = request.extensions.get(SCOPE)
    return scope if isinstance(scope, str) else scope_for_path(request.url.path)


def scope_for_path(path: str) -> str | None:
    """A guess from the URL: wrong for a repository with ``/manifests/`` or ``/blobs/`` in its name."""
    m = _SCOPE_PATH.match(path)
    return repository_scope(m.group("name"), "pull") if m else None


def _repository_of(scope: str | None) -> str:
    if scope and scope.startswith("repository:"):
        return scope.split(":")[1]
    return ""


@dataclass
class _Token:
    value: str
    expires: float


Send = Callable[[httpx.Request], Awaitable[httpx.Response]]


class RegistryAuth(httpx.Auth):
    """Authentication state for one run: challenges per host, tokens per (host, scope)."""

    def __init__(
        self,
        credentials: CredentialStore,
        send: Send,
        plain_http_ok: Callable[[str], bool],
        registry_of: Callable[[str], str] = lambda host: host,
    ) -> None:
        self._credentials = credentials
        self._send = send
        self._plain_http_ok = plain_http_ok
        self._registry_of = registry_of
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    # -- knowledge from the ping -------------------------------------------------------------
    def learn(self, host: str, response: httpx.Response) -> None:
        """Remember the challenge a ``GET /v2/`` answered with, to pre-authenticate later.

        Only ``host``'s own answer counts: after a redirect, the challenge is another host's.
        """
        if response.status_code == 401 and response.request.url.netloc.decode("ascii") == host:
            challenge = _pick(parse_challenges(response.headers.get_list("www-authenticate")))
            if challenge is not None:
                self._challenges[host] = challenge

    def _credential(self, host: str, scope: str | None) -> Credential | None:
        return self._credentials.get(self._registry_of(host), _repository_of(scope))

    # -- the httpx.Auth flow -------------------------------------------------------------------
    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        host = request.url.netloc.decode("ascii")
        scope = scope_of(request)
        await self._authorise(request, host, scope, refresh=False)
        response = yield request
        if response.status_code != 401:
            return
        answered = response.request.url.netloc.decode("ascii")
        if answered != host:
            # A redirect led to another host, which wants credentials: its challenge is not the
            # registry's, and the registry's credentials (or a token got with them) never go there.
            raise AuthError(
                f"{self._registry_of(host)}: redirected to {answered}, which asks for authentication; "
                f"credentials for {self._registry_of(host)} are not sent to another host"
            )
        challenge = _pick(parse_challenges(response.headers.get_list("www-authenticate")))
        if challenge is None:
            raise AuthError(f"{self._registry_of(host)}: authentication required (no usable challenge)")
        self._challenges[host] = challenge
        # insufficient_scope names the scope(s) the registry wants (space-separated).
        wanted = (
            challenge.params.get("scope") if challenge.params.get("error") == "insufficient_scope" else None
        )
        await self._authorise(request, host, wanted or scope, refresh=True)
        response = yield request
        if response.status_code == 401:
            raise self._failure(host, scope)

    def _failure(self, host: str, scope: str | None) -> AuthError:
        """One line: which registry, and whether credentials were missing or refused."""
        registry = self._registry_of(host)
        source = self._credentials.source(registry, _repository_of(scope))
        if self._credential(host, scope) is None:
            why = self._credentials.problem(registry)
            hint = f"{why}" if why else f"no credentials found for it; {source}"
            return AuthError(f"{registry}: authentication required ({hint}; run `docker login {registry}`)")
        return AuthError(f"{registry}: authentication failed (credentials were refused; {source})")

    async def _authorise(
        self, request: httpx.Request, host: str, scope: str | None, *, refresh: bool
    ) -> None:
        challenge = self._challenges.get(host)
        if challenge is None:
            return
        if challenge.scheme == "basic":
            cred = self._credential(host, scope)
            if cred and cred.password:
                raw = f"{cred.username}:{cred.password}".encode()
                request.headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
            return
        scope = scope or challenge.params.get("scope") or ""
        token = await self.token(host, scope.split() or [""], refresh=refresh)
        if token:
            request.headers["Authorization"] = f"Bearer {token}"

    # -- tokens ------------------------------------------------------------------------------
    async def prefetch(self, host: str, repositories: list[str]) -> None:
        """Fetch one token covering many repositories (one round trip instead of one each)."""
        challenge = self._challenges.get(host)
        if challenge is None or challenge.scheme != "bearer":
            return
        scopes = sorted({repository_scope(r, "pull") for r in repositories})
        missing = [s for s in scopes if not self._cached(host, s)]
        if missing:
            await self.token(host, missing, refresh=False)

    def _cached(self, host: str, scope: str) -> str | None:
        tok = self._tokens.get((host, scope))
        if tok and tok.expires > time.monotonic() + 5:
            return tok.value
        return None

    async def token(self, host: str, scopes: list[str], *, refresh: bool) -> str | None:
        key = (host, " ".join(scopes))
        if not refresh and all(self._cached(host, s) for s in scopes):
            return self._cached(host, scopes[0])
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if not refresh and all(self._cached(host, s) for s in scopes):
                return self._cached(host, scopes[0])
            value, lifetime = await self._fetch_token(host, scopes)
            expires = time.monotonic() + max(lifetime, MIN_TOKEN_LIFETIME)
            for s in scopes:
                self._tokens[(host, s)] = _Token(value, expires)
            return value

    async def _fetch_token(self, host: str, scopes: list[str]) -> tuple[str, float]:
        challenge = self._challenges[host]
        registry = self._registry_of(host)
        realm = challenge.realm
        if not realm:
            raise AuthError(f"{registry}: Bearer challenge without a realm")
        realm_url = httpx.URL(realm)
        if realm_url.scheme != "https" and not (realm_url.scheme == "http" and self._plain_http_ok(host)):
            raise AuthError(
                f"{registry}: refusing token realm {realm_url.scheme}://{realm_url.host} "
                "(credentials would travel over plain HTTP)"
            )
        cred = self._credential(host, scopes[0] if scopes else None)
        params: list[tuple[str, str]] = []
        if challenge.params.get("service"):
            params.append(("service", challenge.params["service"]))
        params += [("scope", s) for s in scopes if s]
        if cred and cred.identity_token:
            # OAuth2 refresh-token grant, as docker sends it: one space-separated scope field.
            form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", cred.identity_token),
                ("client_id", CLIENT_ID),
                ("access_type", "offline"),
            ]
            if challenge.params.get("service"):
                form.append(("service", challenge.params["service"]))
            if any(scopes):
                form.append(("scope", " ".join(s for s in scopes if s)))
            request = httpx.Request(
                "POST",
                realm_url,
                content=_urlencode(form),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        else:
            request = httpx.Request("GET", realm_url.copy_merge_params(tuple(params)))
            if cred and cred.password:
                raw = f"{cred.username}:{cred.password}".encode()
                request.headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        response = await self._send(request)
        if response.status_code in (401, 403):
            if cred is None:
                raise self._failure(host, scopes[0] if scopes else None)
            source = self._credentials.source(registry, _repository_of(scopes[0] if scopes else None))
            raise AuthError(
                f"{registry}: authentication failed (token server refused the credentials; {source})"
            )
        if response.status_code != 200:
            raise RegistryError(
                f"{registry}: token server {realm_url.host} answered HTTP {response.status_code}"
            )
        return parse_token_response(response.content, registry, realm_url.host)


def parse_token_response(content: bytes, registry: str, server: str) -> tuple[str, float]:
    """The token and its lifetime in seconds from a token server's JSON answer.

    The token (and a refresh token) are registered as secrets before anything can print them.
    """
    try:
        body = safejson.loads(content)
        value = body.get("token") or body.get("access_token")
        lifetime = float(body.get("expires_in") or MIN_TOKEN_LIFETIME)
    except (ValueError, AttributeError, TypeError, OverflowError):  # OverflowError: a 400-digit int
        value, lifetime = None, 0.0
    if not math.isfinite(lifetime):  # NaN would never count as cached, infinity forever
        lifetime = MIN_TOKEN_LIFETIME
    if not isinstance(value, str) or not value:
        raise RegistryError(f"{registry}: token server {server} sent no token")
    register_secret(value)
    if isinstance(body.get("refresh_token"), str):  # body is a dict: a token came from it
        register_secret(body["refresh_token"])
    return value, lifetime


def _urlencode(pairs: list[tuple[str, str]]) -> bytes:
    from urllib.parse import urlencode

    return urlencode(pairs).encode()


def _pick(challenges: list[Challenge]) -> Challenge | None:
    """Prefer Bearer over Basic: a token is scoped, a password is not."""
    for scheme in ("bearer", "basic"):
        for c in challenges:
            if c.scheme == scheme:
                return c
    return None
