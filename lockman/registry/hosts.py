"""Per-host policy: which scheme a registry is spoken to with.

Plain HTTP is allowed for loopback registries (localhost, 127.0.0.0/8, ::1), as Docker allows,
and for registries that registries.conf marks ``insecure``; there lockman still tries HTTPS
first and falls back to HTTP only when the server does not speak TLS. Every other registry must
use HTTPS. TLS trust per host lives in ``tls.py``; connections per host in ``host_transport.py``.
"""

from __future__ import annotations

import ipaddress
import re

from lockman.errors import InputError

_HOST = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])"
    r"(?::[0-9]{1,5})?"
)


def host_only(host: str) -> str:
    """Strip the port (and IPv6 brackets) from ``host[:port]``."""
    if host.startswith("["):
        return host[1 : host.index("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    h = host_only(host)
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def plain_http_allowed(host: str, insecure: bool = False) -> bool:
    """Loopback, or marked insecure (registries.conf, or ``--insecure-registry`` for this run)."""
    return insecure or is_loopback(host) or insecure_for_run(host)


_run_insecure: frozenset[str] = frozenset()


def _host_key(text: str) -> str:
    return text.strip().lower()


def allow_insecure_for_run(hosts: tuple[str, ...] | list[str]) -> None:
    """``--insecure-registry HOST[:PORT]``: these registries only, this run only (like skopeo's
    ``--tls-verify=false`` or crane's ``--insecure``, but never for every registry at once)."""
    global _run_insecure
    checked = []
    for h in hosts:
        key = _host_key(h)
        if not _HOST.fullmatch(key) or key in ("*",):
            raise InputError(
                f"--insecure-registry {h!r}: expected a registry host, HOST or HOST:PORT "
                "(no scheme, path or wildcard; repeat the flag for several)"
            )
        checked.append(key)
    _run_insecure = frozenset(checked)


def insecure_for_run(host: str) -> bool:
    """Named by ``--insecure-registry``: exactly this host, or this host on any port when the
    flag gave no port."""
    key = _host_key(host)
    return key in _run_insecure or host_only(key) in _run_insecure
