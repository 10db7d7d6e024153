"""Docker Hub's pull rate limit: reported when low, explained on 429, never retried for minutes.

A local docker-registry cannot be Docker Hub (host name, rate-limit headers, 429 quota), so these
tests put an ``httpx.MockTransport`` where registry-1.docker.io would be.
"""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest

from lockman.errors import RegistryError
from lockman.model import reference
from lockman.registry import ratelimit
from lockman.registry.client import RegistryClient
from lockman.registry.registries_conf import RegistriesConf

DIGEST = "sha256:" + "a" * 64
INDEX = "application/vnd.oci.image.index.v1+json"


def hub(manifest_response: httpx.Response, calls: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.host}{request.url.path}")
        assert request.url.host == "registry-1.docker.io"
        if request.url.path == "/v2/":
            return httpx.Response(200, headers={"docker-distribution-api-version": "registry/2.0"})
        return manifest_response

    return httpx.MockTransport(handler)


def resolve(transport: httpx.MockTransport, ref: str = "rust:1.70") -> object:
    async def go() -> object:
        async with RegistryClient(transport=transport, registries=RegistriesConf([])) as c:
            return await c.resolve(reference.parse(ref))

    return asyncio.run(go())


def test_low_quota_warned_once(capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []
    ok = httpx.Response(
        200,
        headers={
            "docker-content-digest": DIGEST,
            "content-type": INDEX,
            "ratelimit-limit": "100;w=21600",
            "ratelimit-remaining": "7;w=21600",
        },
    )
    transport = hub(ok, calls)

    async def go() -> None:
        async with RegistryClient(transport=transport, registries=RegistriesConf([])) as c:
            for ref in ("rust:1.70", "rust:1.71", "debian:12"):
                assert (await c.resolve(reference.parse(ref))).digest == DIGEST

    asyncio.run(go())
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "docker.io: 7 of 100 pulls left in the rolling 6 h window" in err
    assert "docker login docker.io" in err


def test_plenty_of_quota_is_silent(capsys: pytest.CaptureFixture[str]) -> None:
    ok = httpx.Response(
        200,
        headers={"docker-content-digest": DIGEST, "content-type": INDEX, "ratelimit-remaining": "90;w=21600"},
    )
    resolve(hub(ok, []))
    assert capsys.readouterr().err == ""


def test_429_explained_and_not_retried() -> None:
    calls: list[str] = []
    limited = httpx.Response(
        429,
        headers={
            "ratelimit-limit": "100;w=21600",
            "ratelimit-remaining": "0;w=21600",
            "retry-after": "3600",
            "content-type": "application/json",
        },
        content=json.dumps(
            {"errors": [{"code": "TOOMANYREQUESTS", "message": "You have reached your pull rate limit."}]}
        ).encode(),
    )
    with pytest.raises(RegistryError) as info:
        resolve(hub(limited, calls))
    msg = str(info.value)
    assert msg.startswith("docker.io: Docker Hub's pull rate limit reached (100 pulls per 6 h)")
    assert "try again in 60 min" in msg and "docker login" in msg
    assert info.value.exit_code == 3
    manifest_calls = [c for c in calls if "/manifests/" in c]
    assert len(manifest_calls) <= 2, calls  # HEAD, maybe GET: no waiting and retrying for an hour


def test_429_messages_without_retry_after_and_elsewhere() -> None:
    headers = httpx.Headers({"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "0;w=21600"})
    msg = ratelimit.too_many_requests("docker.io", "registry-1.docker.io", headers, None, authenticated=True)
    assert "pulls free up over a rolling 6 h window" in msg and "paid Docker plan" in msg
    msg = ratelimit.too_many_requests("ghcr.io", "ghcr.io", httpx.Headers({"retry-after": "30"}), None, False)
    assert msg == "ghcr.io: too many requests (HTTP 429); try again in 30 s"
    assert ratelimit.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 120) == 120
    assert ratelimit.quota(httpx.Headers({"ratelimit-remaining": "x"})) is None


def test_low_quota_is_a_warning_record_of_the_client(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    """The registry layer logs; the console handler adds the ``warning: `` the line always had."""
    ok = httpx.Response(
        200,
        headers={"docker-content-digest": DIGEST, "content-type": INDEX, "ratelimit-remaining": "3;w=21600"},
    )
    resolve(hub(ok, []))
    (record,) = caplog.records
    assert (record.name, record.levelno) == ("lockman.client", logging.WARNING)
    said = "docker.io: 3 pulls left in the rolling 6 h window (Docker Hub's pull rate limit)"
    assert record.getMessage().startswith(said)
    assert capsys.readouterr().err.startswith(f"warning: {said}")
