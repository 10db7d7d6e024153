"""Per-host policy: which scheme a registry is spoken to with.

Plain HTTP is allowed for loopback registries (localhost, 127.0.0.0/8, ::1), as Docker allows,
and for registries that registries.conf marks ``insecure``; there lockman still tries HTTPS
first and falls back to HTTP only when the server does not speak TLS. Every other registry must
use HTTPS. TLS trust per host lives in ``tls.py``; connections per host in ``host_transport.py``.
"""

from __future__ import annotations

import ipaddress


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
    """Loopback, or marked insecure by the user's registries.conf."""
    return insecure or is_loopback(host)
