"""lockman.registry.retry: which answers and failures are tried again, how long is waited, and how
many attempts are counted, on a scripted transport (no socket, no registry). The same faults
against a real docker-registry behind a fault proxy are in tests/integration/registry/."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from lockman.errors import InputError, RegistryError
from lockman.model import reference
from lockman.registry.client import RegistryClient
from lockman.registry.registries_conf import RegistriesConf
from lockman.registry.retry import BodyTooLarge, GaveUp, Retrier, RetryPolicy, attempts

URL = "https://registry.test/v2/app/manifests/v1"
FAST = RetryPolicy(attempts=4, wait_initial=0.001, wait_max=0.002, wait_jitter=0, retry_after_max=30)
Step = int | httpx.Response | BaseException | Callable[[httpx.Request], Awaitable[httpx.Response]]


class _Cut(httpx.AsyncByteStream):
    """A body that sends some bytes and then the connection drops."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"partial":'
        raise httpx.ReadError("connection reset mid-body")


@dataclass
class Script:
    """Answers requests with ``steps`` in order (the last one repeats); records each request."""

    steps: list[Step]
    seen: list[httpx.Request] = field(default_factory=list)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        step = self.steps[min(len(self.seen), len(self.steps)) - 1]
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, int):
            return httpx.Response(step, json={"errors": []})
        if isinstance(step, httpx.Response):
            return step
        return await step(request)


def send(
    script: Script,
    method: str = "GET",
    *,
    timeout: float = 5.0,
    policy: RetryPolicy = FAST,
    retrier: Retrier | None = None,
    **kwargs: Any,
) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.MockTransport(script.handle)) as http:
            r = retrier or Retrier(timeout, policy)
            return await r.send(http, http.build_request(method, URL), **kwargs)

    return asyncio.run(go())


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff waits asked for (stamina sleeps through ``asyncio.sleep``); none is waited."""
    asked: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        asked.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return asked


# -- which statuses are retried --------------------------------------------------------------------
@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_retryable_status_is_tried_again_and_the_attempts_counted(status: int) -> None:
    script = Script([status, status, 200])
    response = send(script)
    assert response.status_code == 200 and len(script.seen) == 3
    assert attempts(response) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 416, 501, 505])
def test_final_status_is_returned_at_once(status: int) -> None:
    script = Script([status, 200])
    response = send(script)
    assert response.status_code == status and len(script.seen) == 1 and attempts(response) == 1


def test_lasting_5xx_returns_the_last_answer_after_every_attempt() -> None:
    script = Script([503])
    response = send(script, policy=RetryPolicy(attempts=3, wait_initial=0.001, wait_max=0.001, wait_jitter=0))
    assert response.status_code == 503 and len(script.seen) == 3 and attempts(response) == 3
    assert response.json() == {"errors": []}  # its body was read, for the error's detail


def test_success_at_once_is_one_attempt_and_no_log() -> None:
    retrier = Retrier(5.0, FAST)
    response = send(Script([200]), retrier=retrier)
    assert attempts(response) == 1 and retrier.log == []


def test_each_retry_is_logged_with_its_url_and_reason() -> None:
    retrier = Retrier(5.0, FAST)
    send(Script([503, httpx.ConnectError("refused"), 200]), retrier=retrier)
    assert retrier.log == [(URL, "HTTP 503", None), (URL, "refused", None)]


# -- which methods and requests ------------------------------------------------------------------
def test_post_is_never_repeated() -> None:
    script = Script([503, 200])
    assert send(script, "POST").status_code == 503 and len(script.seen) == 1
    with pytest.raises(GaveUp) as caught:
        send(Script([httpx.ConnectError("refused"), 200]), "POST")
    assert caught.value.attempts == 1


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_idempotent_methods_are_repeated(method: str) -> None:
    script = Script([502, 200])
    assert send(script, method).status_code == 200 and [r.method for r in script.seen] == [method] * 2


def test_retry_false_sends_once() -> None:
    script = Script([503, 200])
    assert send(script, retry=False).status_code == 503 and len(script.seen) == 1


def test_one_attempt_policy_sends_once() -> None:
    script = Script([503, 200])
    assert send(script, policy=RetryPolicy(attempts=1)).status_code == 503 and len(script.seen) == 1


# -- which failures are retried ------------------------------------------------------------------
@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ReadError("reset"),
        httpx.ConnectTimeout("slow"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    ],
)
def test_transient_network_failure_is_retried(error: httpx.HTTPError) -> None:
    script = Script([error, 200])
    response = send(script)
    assert response.status_code == 200 and attempts(response) == 2


def test_body_cut_short_is_retried_as_part_of_the_attempt() -> None:
    script = Script([httpx.Response(200, stream=_Cut()), httpx.Response(200, json={"ok": True})])
    response = send(script)
    assert response.json() == {"ok": True} and len(script.seen) == 2


def test_lasting_network_failure_gives_up_with_the_last_error_and_attempts() -> None:
    script = Script([httpx.ConnectError("refused")])
    with pytest.raises(GaveUp) as caught:
        send(script, policy=RetryPolicy(attempts=3, wait_initial=0.001, wait_max=0.001, wait_jitter=0))
    assert caught.value.attempts == 3 and len(script.seen) == 3
    assert isinstance(caught.value.error, httpx.ConnectError)


def _tls_failure() -> httpx.ConnectError:
    try:
        raise httpx.ConnectError("handshake failed") from ssl.SSLError(1, "CERTIFICATE_VERIFY_FAILED")
    except httpx.ConnectError as e:
        return e


def test_tls_failure_is_not_retried() -> None:
    script = Script([_tls_failure(), 200])
    with pytest.raises(GaveUp) as caught:
        send(script)
    assert caught.value.attempts == 1 and len(script.seen) == 1


def test_programming_errors_are_not_retried() -> None:
    script = Script([httpx.UnsupportedProtocol("ftp"), 200])
    with pytest.raises(GaveUp):
        send(script)
    assert len(script.seen) == 1


def test_body_over_the_limit_is_refused_not_retried() -> None:
    script = Script([httpx.Response(200, content=b"x" * 101), 200])
    with pytest.raises(BodyTooLarge):
        send(script, limit=100)
    assert len(script.seen) == 1


def test_streamed_response_is_returned_unread() -> None:
    script = Script([httpx.Response(200, stream=_Cut())])
    response = send(script, stream=True)
    assert response.status_code == 200 and not response.is_closed  # the caller reads it


# -- Retry-After -----------------------------------------------------------------------------------
def test_backoff_is_the_policy_when_no_retry_after(waits: list[float]) -> None:
    policy = RetryPolicy(attempts=3, wait_initial=0.25, wait_max=0.4, wait_jitter=0)
    send(Script([503, 503, 200]), policy=policy)
    assert waits == [0.25, 0.4]  # exponential, capped at wait_max


def test_retry_after_replaces_the_backoff(waits: list[float]) -> None:
    policy = RetryPolicy(attempts=3, wait_initial=0.25, wait_max=0.4, wait_jitter=0, retry_after_max=30)
    script = Script([httpx.Response(429, headers={"retry-after": "7"}), 200])
    assert send(script, policy=policy).status_code == 200
    assert waits == [7.0]


def test_retry_after_zero_retries_at_once(waits: list[float]) -> None:
    script = Script([httpx.Response(503, headers={"retry-after": "0"}), 200])
    assert send(script).status_code == 200 and waits == [0.0]


def test_retry_after_over_the_cap_is_not_waited_for(waits: list[float]) -> None:
    script = Script([httpx.Response(429, headers={"retry-after": "31"}), 200])
    response = send(script, timeout=100)  # the window (200 s) would admit it: the cap (30 s) does not
    assert response.status_code == 429 and len(script.seen) == 1 and attempts(response) == 1
    assert waits == []


def test_retry_after_past_the_request_window_is_not_waited_for(waits: list[float]) -> None:
    # --timeout 2: the request's window is 4 s; a 5 s Retry-After (under the 30 s cap) cannot fit
    script = Script([httpx.Response(503, headers={"retry-after": "5"}), 200])
    assert send(script, timeout=2.0).status_code == 503 and len(script.seen) == 1
    assert waits == []


def test_unreadable_retry_after_falls_back_to_the_backoff(waits: list[float]) -> None:
    policy = RetryPolicy(attempts=2, wait_initial=0.25, wait_max=1, wait_jitter=0)
    script = Script([httpx.Response(503, headers={"retry-after": "soon"}), 200])
    assert send(script, policy=policy).status_code == 200 and waits == [0.25]


# -- deadlines -------------------------------------------------------------------------------------
def test_an_attempt_that_hangs_is_cut_at_the_timeout_and_retried() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return httpx.Response(200)

    script = Script([hang, 200])
    started = time.monotonic()
    response = send(script, timeout=0.1)
    assert response.status_code == 200 and attempts(response) == 2
    assert time.monotonic() - started < 2


def test_a_registry_that_always_hangs_gives_up_within_the_request_window() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return httpx.Response(200)

    started = time.monotonic()
    with pytest.raises(GaveUp) as caught:
        send(Script([hang]), timeout=0.1, policy=RetryPolicy(attempts=50, wait_initial=0.001, wait_jitter=0))
    elapsed = time.monotonic() - started
    assert isinstance(caught.value.error, httpx.ReadTimeout)
    assert "no complete answer within 0.1 s" in str(caught.value.error)
    assert 2 <= caught.value.attempts < 50 and elapsed < 0.2 * 2 + 0.5  # 2T, not 50 × T


def test_no_retry_is_started_after_the_run_deadline() -> None:
    retrier = Retrier(1.0, FAST, started=time.monotonic() - 6.0)  # the run's 6T are spent
    script = Script([503, 200])
    assert send(script, retrier=retrier).status_code == 503 and len(script.seen) == 1


# -- the policy from the environment ---------------------------------------------------------------
def test_policy_from_environment() -> None:
    policy = RetryPolicy.from_env(
        {
            "LOCKMAN_RETRY_ATTEMPTS": "7",
            "LOCKMAN_RETRY_WAIT_INITIAL": "0.5",
            "LOCKMAN_RETRY_WAIT_MAX": "2",
            "LOCKMAN_RETRY_JITTER": "0",
            "LOCKMAN_RETRY_AFTER_MAX": "60",
        }
    )
    assert policy == RetryPolicy(
        attempts=7, wait_initial=0.5, wait_max=2.0, wait_jitter=0.0, retry_after_max=60.0
    )
    assert RetryPolicy.from_env({}) == RetryPolicy()


@pytest.mark.parametrize(
    ("var", "value"), [("LOCKMAN_RETRY_ATTEMPTS", "0"), ("LOCKMAN_RETRY_AFTER_MAX", "-1")]
)
def test_bad_policy_environment_is_input_error(var: str, value: str) -> None:
    with pytest.raises(InputError, match=var):
        RetryPolicy.from_env({var: value})


# -- through the client: the error carries the attempts --------------------------------------------
def test_client_error_after_lasting_network_failure_carries_the_attempts() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    async def go() -> None:
        policy = RetryPolicy(attempts=3, wait_initial=0.001, wait_max=0.001, wait_jitter=0)
        async with RegistryClient(
            transport=httpx.MockTransport(refuse), registries=RegistriesConf([]), retry=policy
        ) as c:
            await c.get_manifest(reference.parse("registry.test/app:v1"))

    with pytest.raises(RegistryError) as caught:
        asyncio.run(go())
    assert caught.value.attempts == 3 and "(gave up after 3 attempts)" in str(caught.value)


def test_client_error_after_retries_then_a_final_answer_carries_the_attempts() -> None:
    """503, 503, then a 400: the 400 is final, and the error says three requests were made."""
    script = Script([503, 503, 400])

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200, headers={"docker-distribution-api-version": "registry/2.0"})
        return await script.handle(request)

    async def go() -> None:
        async with RegistryClient(
            transport=httpx.MockTransport(handle), registries=RegistriesConf([]), retry=FAST
        ) as c:
            await c.get_manifest(reference.parse("registry.test/app:v1"))

    with pytest.raises(RegistryError) as caught:
        asyncio.run(go())
    assert (caught.value.status, caught.value.attempts) == (400, 3) and len(script.seen) == 3
