"""Docker Hub's pull rate limit, in words a user can act on.

Docker Hub answers manifest requests with ``ratelimit-limit: 100;w=21600`` and
``ratelimit-remaining: 76;w=21600`` (pulls left in a rolling window of ``w`` seconds); HEAD
requests report the quota without spending it. lockman warns once per run when few pulls are
left, and turns a 429 into a message saying it is the pull limit, when it frees up, and how to
get a bigger quota (authenticate). A 429 is not retried for minutes: the quota is rolling, and
waiting for it belongs to the user, not to a CI job's timeout. Pure: no I/O.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass

from lockman.model.reference import DOCKER_HUB, DOCKER_HUB_API

LOW_FRACTION = 0.1  # warn when at most a tenth of the window's pulls are left
LOW_ABSOLUTE = 10


@dataclass(frozen=True)
class Quota:
    limit: int | None
    remaining: int
    window: int | None  # seconds

    @property
    def low(self) -> bool:
        if self.limit:
            return self.remaining <= max(1, int(self.limit * LOW_FRACTION))
        return self.remaining <= LOW_ABSOLUTE


def _value(header: str | None) -> tuple[int, int | None] | None:
    """``"76;w=21600"`` → (76, 21600)."""
    if not header:
        return None
    head, *params = (p.strip() for p in header.split(";"))
    try:
        count = int(head)
    except ValueError:
        return None
    window = None
    for p in params:
        k, _, v = p.partition("=")
        if k.strip() == "w" and v.strip().isdigit():
            window = int(v)
    return count, window


def quota(headers: Mapping[str, str]) -> Quota | None:
    get = headers.get
    remaining = _value(get("ratelimit-remaining"))
    if remaining is None:
        return None
    limit = _value(get("ratelimit-limit"))
    return Quota(limit[0] if limit else None, remaining[0], remaining[1] or (limit[1] if limit else None))


def is_docker_hub(host: str) -> bool:
    return host in (DOCKER_HUB_API, "index.docker.io", DOCKER_HUB)


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h".replace(".0 h", " h")


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def low_quota_warning(registry: str, q: Quota, authenticated: bool) -> str:
    of = f" of {q.limit}" if q.limit else ""
    window = f" in the rolling {_duration(q.window)} window" if q.window else ""
    hint = "" if authenticated else f"; `docker login {registry}` raises the limit"
    return f"{registry}: {q.remaining}{of} pulls left{window} (Docker Hub's pull rate limit){hint}"


def too_many_requests(
    registry: str, host: str, headers: Mapping[str, str], error_code: str | None, authenticated: bool
) -> str:
    """The message for a 429: Docker Hub's pull limit explained, or a plain one elsewhere."""
    wait = retry_after_seconds(headers.get("retry-after"))
    q = quota(headers)
    hub = is_docker_hub(host) or error_code == "TOOMANYREQUESTS"
    if wait is not None:
        when = f"try again in {_duration(wait)}"
    elif q and q.window:
        when = f"pulls free up over a rolling {_duration(q.window)} window"
    else:
        when = "try again later"
    if not hub:
        return f"{registry}: too many requests (HTTP 429); {when}"
    limit = f" ({q.limit} pulls per {_duration(q.window)})" if q and q.limit and q.window else ""
    if authenticated:
        how = "a paid Docker plan or a pull-through mirror (registries.conf) raises it"
    else:
        how = "authenticate with `docker login` (or a credential helper) for a higher limit"
    return f"{registry}: Docker Hub's pull rate limit reached{limit}; {when}; {how}"
