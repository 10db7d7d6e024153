"""Retrying registry requests: backoff with jitter, ``Retry-After``, and time bounds.

One :class:`Retrier` per run sends every request (ping, token, HEAD, GET) through
:meth:`Retrier.send`. An *attempt* is the request plus reading its body, so a body cut short
(truncated, reset mid-stream) is retried like a refused connection. What is retried:
connection errors, resets, timeouts, truncated bodies, and HTTP 408, 429 and 5xx (not 501/505),
for idempotent methods only (a token ``POST`` may rotate a refresh token, so it is never repeated).

Bounds, all derived from ``--timeout`` (T):

- each attempt, body included, gets T seconds (a trickling registry cannot hold a run);
- one request with its retries starts no new attempt after 2T, and makes at most
  ``attempts`` tries;
- the whole run starts no retry after 6T: a registry that keeps failing ends the run.

``Retry-After`` (seconds or an HTTP date) replaces the backoff when it is at most
``retry_after_max`` and fits in the request's window; a longer one (Docker Hub's rolling pull
quota says hours) is not waited for: the 429 is reported at once.

The backoff itself is stamina's (capped exponential with additive jitter, on tenacity): a
well-kept library rather than a hand-rolled loop. Its default instrumentation (log lines on
every retry) is switched off: lockman's output is one line per error. The first attempt runs
outside it: almost every request succeeds at once, and stamina (imported on the first failure)
costs 7 ms to import and about 20 µs per request. A first failure is handed to stamina's loop
as its own first attempt, so the verdict, the backoff and the attempt count are stamina's.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from lockman import env
from lockman.registry.bodies import BodyTooLarge, UnsupportedEncoding, read_capped
from lockman.registry.ratelimit import retry_after_seconds

__all__ = ["BodyTooLarge", "GaveUp", "Retrier", "RetryPolicy", "attempts"]

_debug = logging.getLogger("lockman.http")


def _shown(url: httpx.URL) -> str:
    """The URL for a debug line: no query (signed object-storage URLs carry credentials there)."""
    return str(url.copy_with(query=None, fragment=None))


RETRY_STATUSES = frozenset({408, 429}) | (frozenset(range(500, 600)) - {501, 505})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_BODY_LIMIT = 4 * 1024 * 1024
ERROR_BODY_LIMIT = 64 * 1024
REQUEST_WINDOW = 2.0  # multiples of the per-request timeout
RUN_WINDOW = 6.0

_ENV = {
    "attempts": "LOCKMAN_RETRY_ATTEMPTS",
    "wait_initial": "LOCKMAN_RETRY_WAIT_INITIAL",
    "wait_max": "LOCKMAN_RETRY_WAIT_MAX",
    "wait_jitter": "LOCKMAN_RETRY_JITTER",
    "retry_after_max": "LOCKMAN_RETRY_AFTER_MAX",
}


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Every field can be set from the environment (see :meth:`from_env`)."""

    attempts: int = 4
    wait_initial: float = 0.5
    wait_max: float = 8.0
    wait_jitter: float = 1.0
    retry_after_max: float = 30.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> RetryPolicy:
        """Read ``LOCKMAN_RETRY_*`` overrides (tests use tiny waits; CI may want more attempts)."""
        values: dict[str, Any] = {}
        for name, var in _ENV.items():
            value = env.get(var, environ)
            if value is not None:
                values[name] = value
        return cls(**values)


class GaveUp(Exception):
    """The network kept failing: the last ``httpx.HTTPError`` and how many attempts were made."""

    def __init__(self, error: httpx.HTTPError, attempts: int) -> None:
        super().__init__(str(error))
        self.error, self.attempts = error, attempts


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


@dataclass
class Retrier:
    """Sends requests for one run under :class:`RetryPolicy` and the ``--timeout`` bounds."""

    timeout: float
    policy: RetryPolicy = field(default_factory=RetryPolicy.from_env)
    started: float = field(default_factory=time.monotonic)
    log: list[tuple[str, str, float | None]] = field(default_factory=list)  # (url, why, wait)

    @property
    def run_deadline(self) -> float:
        return self.started + RUN_WINDOW * self.timeout

    async def send(
        self,
        http: httpx.AsyncClient,
        request: httpx.Request,
        *,
        auth: httpx.Auth | None = None,
        stream: bool = False,
        limit: int | None = DEFAULT_BODY_LIMIT,
        retry: bool = True,
        follow_redirects: bool = True,
    ) -> httpx.Response:
        """Send ``request`` and (unless ``stream``) read its body, retrying what is worth it.

        Returns the final response, which after lasting 429/5xx is that error response; raises
        :class:`GaveUp` (the last ``httpx.HTTPError`` and how many tries were made) when the
        network kept failing, or :class:`BodyTooLarge`.
        """
        now = time.monotonic()
        window = min(REQUEST_WINDOW * self.timeout, self.run_deadline - now)
        retry_ok = retry and request.method in IDEMPOTENT and window > 0 and self.policy.attempts > 1
        begun = now
        attempts = 0

        def worth_retrying(exc: Exception) -> bool | float:
            if isinstance(exc, _RetryableStatus):
                wait = _retry_after(exc.response)
                if wait is None:
                    verdict: bool | float = True
                elif wait > self.policy.retry_after_max or time.monotonic() + wait > begun + window:
                    verdict = False
                else:
                    verdict = wait
            else:
                verdict = _transient(exc)
            if verdict is not False:
                why = str(exc) or type(exc).__name__
                self.log.append((str(request.url), why, None if verdict is True else float(verdict)))
                _debug.debug(
                    "retrying %s %s after attempt %d: %s", request.method, _shown(request.url), attempts, why
                )
            return verdict

        first_failure: Exception | None = None
        try:
            try:
                attempts += 1
                return await self._attempt(http, request, auth, stream, limit, retry_ok, follow_redirects)
            except Exception as e:
                if not retry_ok:
                    raise
                first_failure = e
            async for attempt in _retry_context(
                on=worth_retrying,
                attempts=self.policy.attempts,
                timeout=max(0.0, window - (time.monotonic() - begun)),
                wait_initial=self.policy.wait_initial,
                wait_max=self.policy.wait_max,
                wait_jitter=self.policy.wait_jitter,
            ):
                with attempt:
                    if first_failure is not None:  # stamina's first attempt is the one already made
                        failure, first_failure = first_failure, None
                        raise failure
                    attempts += 1
                    response = await self._attempt(
                        http, request, auth, stream, limit, retry_ok, follow_redirects
                    )
                    response.extensions["lockman_attempts"] = attempts  # a final answer after retries
                    return response
        except _RetryableStatus as e:
            e.response.extensions["lockman_attempts"] = attempts
            return e.response
        except httpx.HTTPError as e:
            raise GaveUp(e, attempts) from e
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self,
        http: httpx.AsyncClient,
        request: httpx.Request,
        auth: httpx.Auth | None,
        stream: bool,
        limit: int | None,
        retry_ok: bool,
        follow_redirects: bool = True,
    ) -> httpx.Response:
        response: httpx.Response | None = None
        try:
            async with asyncio.timeout(self.timeout):
                response = await http.send(request, auth=auth, stream=True, follow_redirects=follow_redirects)
                if _debug.isEnabledFor(logging.DEBUG):  # -v only: no URL rebuilt (and re-parsed) per request
                    _debug.debug("%s %s -> %d", request.method, _shown(response.url), response.status_code)
                retryable = retry_ok and response.status_code in RETRY_STATUSES
                if retryable:
                    await _read_error_body(response, request.method)
                elif not stream:
                    await _read(response, request.method, limit)
        except TimeoutError:
            if response is not None:
                await response.aclose()
            msg = f"no complete answer within {self.timeout:g} s"
            raise httpx.ReadTimeout(msg, request=request) from None
        except BaseException:
            if response is not None:
                await response.aclose()
            raise
        if retryable:
            raise _RetryableStatus(response)
        return response


def _retry_context(**kwargs: Any) -> Any:
    """stamina's retry loop, imported on first use (the first failure of the run)."""
    import stamina
    import stamina.instrumentation

    stamina.instrumentation.set_on_retry_hooks([])
    return stamina.retry_context(**kwargs)


async def _read(response: httpx.Response, method: str, limit: int | None) -> None:
    """Read the body; ``limit`` caps the decoded bytes (see lockman.registry.bodies)."""
    if limit is None:
        await response.aread()
    else:
        await read_capped(response, limit)


async def _read_error_body(response: httpx.Response, method: str) -> None:
    """Read an error body for its detail; a huge or undecodable one is dropped, not an error."""
    try:
        await _read(response, method, ERROR_BODY_LIMIT)
    except (BodyTooLarge, UnsupportedEncoding, httpx.DecodingError):
        await response.aclose()


def _transient(exc: BaseException) -> bool:
    """Network trouble worth another try; TLS failures and protocol misuse are not."""
    if not isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError):
        return False
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return False
        cause = cause.__cause__ or cause.__context__
    return True


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta or HTTP date), or None when absent or unreadable."""
    return retry_after_seconds(response.headers.get("retry-after"))


def attempts(response: httpx.Response) -> int:
    """How many attempts the request that got ``response`` took (1 unless it was retried)."""
    n = response.extensions.get("lockman_attempts", 1)
    return n if isinstance(n, int) else 1
