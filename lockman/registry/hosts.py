"""Per-host policy: which scheme a registry is spoken to with, and which TLS trust applies.

Plain HTTP is allowed only for loopback registries (localhost, 127.0.0.0/8, ::1), as Docker
allows; there lockman still tries HTTPS first and falls back to HTTP only when the server does
not speak TLS. Every other registry must use HTTPS.
"""

from __future__ import annotations

import ipaddress
import ssl
from functools import lru_cache


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


def plain_http_allowed(host: str) -> bool:
    return is_loopback(host)


@lru_cache(maxsize=1)
def default_ssl_context() -> ssl.SSLContext:
    """System trust store, plus ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set (OpenSSL reads them)."""
    return ssl.create_default_context()
