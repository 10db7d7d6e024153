"""What a registry's answer means: a status, an error body or a failed connection as a lockman error.

As ggcr's ``transport.Error`` / ``CheckError``: the caller says which statuses it can use, and
everything else becomes one of lockman.errors' classes with the facts as fields (``subject``,
``registry``, ``status``, ``code``, ``attempts``), never decided from text.
"""

from __future__ import annotations

import re
import ssl
from typing import Any

import httpx

from lockman import safejson
from lockman.errors import AuthError, NotFound, RegistryError
from lockman.model.reference import DOCKER_HUB, DOCKER_HUB_API, Reference
from lockman.registry import ratelimit, tls
from lockman.registry.retry import attempts

# What a failing connection raises: httpx's errors, and the raw ssl.SSLError that httpcore's
# HTTP/2 path lets escape untranslated.
NETWORK_ERRORS = (httpx.HTTPError, ssl.SSLError)

_ERROR_CODE_RE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


class HandshakeFailed(RegistryError):
    """TLS failed for a reason other than trust: typically a server that speaks plain HTTP.

    ``plain_http`` says the failure looked like a plain-HTTP answer (for a hint to say so).
    """

    def __init__(self, message: str, *, subject: str | None, registry: str, plain_http: bool) -> None:
        super().__init__(message, subject=subject, registry=registry)
        self.plain_http = plain_http


class RangeNotSatisfiable(RegistryError):
    """A resume offset the registry cannot serve (HTTP 416): start the blob again."""


def registry_name(host: str) -> str:
    return DOCKER_HUB if host == DOCKER_HUB_API else host


def answered_by(response: httpx.Response) -> str:
    """The registry that actually answered (a mirror or rewritten location, maybe)."""
    return registry_name(response.request.url.netloc.decode("ascii"))


def not_found(subject: str, said: str, registry: str, response: httpx.Response) -> NotFound:
    """``subject: <said> registry``: the registry does not have it."""
    return NotFound(
        f"{subject}: {said} {registry}",
        subject=subject,
        registry=registry,
        status=404,
        code=error_code(response),
        in_message=True,
    )


def raise_status(ref: Reference, response: httpx.Response, authenticated: bool = False) -> None:
    """The error for a status the caller has no use for: ``registry: image: HTTP 500 (CODE)``."""
    status = response.status_code
    registry = answered_by(response)
    subject = ref.familiar()
    code = error_code(response)
    detail = f" ({code})" if code else ""
    facts: dict[str, Any] = {"subject": subject, "registry": registry, "status": status, "code": code}
    if status == 401:
        raise AuthError(f"{registry}: authentication required for {subject}", **facts, in_message=True)
    if status == 403:
        raise AuthError(f"{registry}: access to {subject} denied{detail}", **facts, in_message=True)
    n = attempts(response)
    if status == 429:
        host = response.request.url.netloc.decode("ascii")
        said = ratelimit.too_many_requests(registry, host, response.headers, code, authenticated)
        # About the registry, not the image: the caller names the image.
        raise RegistryError(said, **{**facts, "subject": None}, attempts=n, in_message=True)
    raise RegistryError(f"HTTP {status}{detail}", **facts, attempts=n)


def error_code(response: httpx.Response) -> str | None:
    """The registry's own error code, from its JSON error body, when it sent one."""
    try:
        body: Any = safejson.loads(response.content)
    except (ValueError, httpx.ResponseNotRead, UnicodeDecodeError):
        return None
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0]
        code = first.get("code") if isinstance(first, dict) else None
        # The distribution spec's codes are upper-case identifiers (MANIFEST_UNKNOWN, DENIED):
        # anything else is registry prose that has no place in a one-line error.
        if isinstance(code, str) and _ERROR_CODE_RE.fullmatch(code):
            return code
    return None


def network_error(
    host: str, e: httpx.HTTPError | ssl.SSLError, ref: Reference | None = None, *, attempts: int = 1
) -> RegistryError:
    """One line for a network failure, naming the image (``ref``) when there is one."""
    facts: dict[str, Any] = {
        "subject": None if ref is None else ref.familiar(),
        "registry": registry_name(host),
    }
    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return RegistryError(
                f"TLS certificate not trusted ({cause.verify_message}); {tls.untrusted_hint(host)}", **facts
            )
        if isinstance(cause, ssl.SSLError) and cause.reason in tls.CLIENT_CERT_ALERTS:
            return RegistryError(
                f"the registry refused the TLS handshake ({cause.reason}); {tls.client_cert_hint(host)}",
                **facts,
            )
        cause = cause.__cause__ or cause.__context__
    if _tls_handshake_failed(e):
        return HandshakeFailed(
            f"cannot connect: {e or type(e).__name__}", **facts, plain_http=_plain_http_answer(e)
        )
    if isinstance(e, httpx.TimeoutException):
        return RegistryError(f"timed out ({e or type(e).__name__})", **facts, attempts=attempts)
    if isinstance(e, httpx.ConnectError):
        return RegistryError(f"cannot connect: {e or type(e).__name__}", **facts, attempts=attempts)
    if isinstance(e, httpx.TooManyRedirects):
        return RegistryError("too many redirects (a redirect loop?)", **facts)
    return RegistryError(f"network error: {type(e).__name__}: {e}", **facts, attempts=attempts)


def _plain_http_answer(e: BaseException) -> bool:
    """The TLS handshake failed the way it does when the server answers in plain HTTP: OpenSSL's
    reason code says so (never the message text, which varies between OpenSSL versions)."""
    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, ssl.SSLError) and cause.reason in tls.PLAIN_HTTP_REASONS:
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _tls_handshake_failed(e: BaseException) -> bool:
    """TLS failed for a reason other than trust: typically a server that speaks plain HTTP."""
    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
