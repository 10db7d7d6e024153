"""The response → error table: which lockman.errors class a status or failure becomes, with
which fields (``subject``, ``registry``, ``status``, ``code``, ``attempts``) and which line."""

from __future__ import annotations

import json

import httpx
import pytest

from lockman.errors import AuthError, LockmanError, NotFound, RegistryError
from lockman.model import reference
from lockman.registry import responses

HOST = "registry.test"
REF = reference.parse(f"{HOST}/team/app:1")
SUBJECT = f"{HOST}/team/app:1"


def answer(status: int, body: object = None, host: str = HOST, **headers: str) -> httpx.Response:
    content = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(
        status, content=content, headers=headers, request=httpx.Request("GET", f"https://{host}/v2/x/manifests/1")
    )


def raised(response: httpx.Response, authenticated: bool = False) -> LockmanError:
    with pytest.raises(LockmanError) as caught:
        responses.raise_status(REF, response, authenticated)
    return caught.value


def errors(code: str) -> dict[str, object]:
    return {"errors": [{"code": code, "message": "whatever the registry says"}]}


@pytest.mark.parametrize(
    ("status", "body", "cls", "code", "line"),
    [
        (401, None, AuthError, None, f"{HOST}: authentication required for {SUBJECT}"),
        (403, errors("DENIED"), AuthError, "DENIED", f"{HOST}: access to {SUBJECT} denied (DENIED)"),
        (403, None, AuthError, None, f"{HOST}: access to {SUBJECT} denied"),
        (500, errors("UNKNOWN"), RegistryError, "UNKNOWN", f"{SUBJECT}: HTTP 500 (UNKNOWN)"),
        (502, b"<html>bad gateway</html>", RegistryError, None, f"{SUBJECT}: HTTP 502"),
        (418, errors("not a Code, prose"), RegistryError, None, f"{SUBJECT}: HTTP 418"),
    ],
)
def test_status_to_class_and_fields(status: int, body: object, cls: type, code: str | None, line: str) -> None:
    e = raised(answer(status, body))
    assert type(e) is cls
    assert (e.subject, e.registry, e.status, e.code, e.attempts) == (SUBJECT, HOST, status, code, 1)
    assert str(e) == line


def test_429_is_about_the_registry_not_the_image() -> None:
    e = raised(answer(429, errors("TOOMANYREQUESTS"), **{"retry-after": "30"}))
    assert type(e) is RegistryError
    assert (e.subject, e.registry, e.status, e.code) == (None, HOST, 429, "TOOMANYREQUESTS")
    assert "try again in 30 s" in str(e)


def test_the_registry_is_whoever_answered() -> None:
    """A mirror's refusal names the mirror; Docker Hub's API host is named docker.io."""
    assert raised(answer(403, host="mirror.test")).registry == "mirror.test"
    assert raised(answer(500, host="registry-1.docker.io")).registry == "docker.io"


def test_not_found_fields() -> None:
    e = responses.not_found(SUBJECT, "manifest unknown to", HOST, answer(404, errors("MANIFEST_UNKNOWN")))
    assert type(e) is NotFound and e.kind == "not-served"
    assert (e.subject, e.registry, e.status, e.code) == (SUBJECT, HOST, 404, "MANIFEST_UNKNOWN")
    assert str(e) == f"{SUBJECT}: manifest unknown to {HOST}"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (errors("MANIFEST_UNKNOWN"), "MANIFEST_UNKNOWN"),
        ({"errors": []}, None),
        ({"errors": ["DENIED"]}, None),
        (errors("denied\x1b[2J"), None),  # registry prose, or escapes, never reach the line
        (errors("X" * 65), None),
        (b"\xff\xfe not json", None),
        ([1, 2], None),
    ],
)
def test_error_code_is_a_distribution_code_or_nothing(body: object, code: str | None) -> None:
    assert responses.error_code(answer(400, body)) == code


@pytest.mark.parametrize(
    ("error", "line", "attempts"),
    [
        (httpx.ConnectTimeout("slow"), f"{SUBJECT}: timed out (slow) (gave up after 4 attempts)", 4),
        (httpx.ConnectError("refused"), f"{SUBJECT}: cannot connect: refused (gave up after 4 attempts)", 4),
        (httpx.TooManyRedirects("loop"), f"{SUBJECT}: too many redirects (a redirect loop?)", 1),
        (httpx.RemoteProtocolError("eof"), f"{SUBJECT}: network error: RemoteProtocolError: eof (gave up after 4 attempts)", 4),
    ],
)
def test_network_failures(error: httpx.HTTPError, line: str, attempts: int) -> None:
    e = responses.network_error(HOST, error, REF, attempts=4)
    assert type(e) is RegistryError
    assert (e.subject, e.registry, e.attempts, e.status) == (SUBJECT, HOST, attempts, None)
    assert str(e) == line


def test_network_failure_without_a_reference_names_the_registry() -> None:
    e = responses.network_error("registry-1.docker.io", httpx.ConnectError("refused"))
    assert (e.subject, e.registry) == (None, "docker.io")
    assert str(e) == "docker.io: cannot connect: refused"
