"""TLS trust per registry host, the way docker and podman configure it.

Every host trusts the system store *plus* ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` (a corporate CA
added through them does not cut off Docker Hub). On top of that, a ``certs.d`` directory named
for the host (``host:port``) adds per-registry CAs (``*.crt``) and client certificates
(``*.cert`` with the ``*.key`` of the same name), read from, in order:

- ``/etc/docker/certs.d/<host>/`` (docker),
- ``/etc/containers/certs.d/<host>/`` and ``~/.config/containers/certs.d/<host>/`` (podman).

``LOCKMAN_CERTS_D`` (a ``:``-separated list of base directories) replaces those three; tests and
unusual set-ups use it. A registry marked ``insecure`` in registries.conf skips verification, as
podman does.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from lockman import env
from lockman.errors import InputError
from lockman.registry import system_trust

log = logging.getLogger("lockman.tls")

CERTS_D_ENV = "LOCKMAN_CERTS_D"


def certs_d_bases() -> list[Path]:
    if os.environ.get(CERTS_D_ENV) is not None:  # set but empty: no certs.d directories at all
        return env.get(CERTS_D_ENV) or []
    return [
        Path("/etc/docker/certs.d"),
        Path("/etc/containers/certs.d"),
        Path.home() / ".config" / "containers" / "certs.d",
    ]


def _dir_name(host: str) -> str:
    """docker names the directory ``host:port`` (IPv6 literals keep their brackets)."""
    return host


@dataclass(frozen=True)
class HostCerts:
    """What the certs.d directories hold for one host."""

    cas: tuple[Path, ...] = ()
    client_pairs: tuple[tuple[Path, Path], ...] = ()


def host_certs(host: str) -> HostCerts:
    cas: list[Path] = []
    pairs: list[tuple[Path, Path]] = []
    for base in certs_d_bases():
        d = base / _dir_name(host)
        try:
            files = sorted(p for p in d.iterdir() if p.is_file())
        except OSError:
            continue
        for f in files:
            if f.suffix == ".crt":
                cas.append(f)
            elif f.suffix == ".cert":
                key = f.with_suffix(".key")
                if not key.is_file():
                    raise InputError(f"{f}: client certificate without its key {key.name}")
                pairs.append((f, key))
            elif f.suffix == ".key" and not f.with_suffix(".cert").is_file():
                raise InputError(f"{f}: client key without its certificate {f.with_suffix('.cert').name}")
    return HostCerts(tuple(cas), tuple(pairs))


def ssl_context(host: str, insecure: bool = False) -> ssl.SSLContext:
    """The context for ``host``: shared trust plus its certs.d CAs and client certificate."""
    return build_context(host_certs(host), insecure, host)


def build_context(certs: HostCerts, insecure: bool, host: str = "") -> ssl.SSLContext:
    """A fresh context (environment read now: tests and long-lived callers change it)."""
    if insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = system_trust.client_context()
        for ca in certs.cas:
            try:
                ctx.load_verify_locations(cafile=str(ca))
            except (ssl.SSLError, OSError) as e:
                raise InputError(f"{ca}: not a usable CA certificate ({e})") from None
            log.debug("%s: trusting CA %s", host, ca)
    for cert, key in certs.client_pairs[:1]:
        try:
            ctx.load_cert_chain(certfile=str(cert), keyfile=str(key))
        except (ssl.SSLError, OSError) as e:
            raise InputError(f"{cert}: unusable client certificate or key ({e})") from None
        log.debug("%s: presenting client certificate %s", host, cert)
    return ctx


def untrusted_hint(host: str) -> str:
    """How to trust a registry's CA: what the error message for an untrusted certificate says."""
    bases = certs_d_bases()
    where = f"{bases[0] / host / 'ca.crt'}" if bases else f"a certs.d directory for {host}"
    return f"trust its CA by putting it in {where} (or in SSL_CERT_FILE)"


# What OpenSSL reports when the server answered a TLS ClientHello in plain HTTP.
PLAIN_HTTP_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE"}
)


def plain_http_hint(host: str) -> str:
    """What to do about a registry that speaks plain HTTP on a non-loopback address."""
    return (
        f"{host} seems to speak plain HTTP, which lockman allows only for loopback registries; "
        f"if you trust the network path to it, pass `--insecure-registry {host}` (this run) or set "
        f'`insecure = true` in a [[registry]] with location = "{host}" in registries.conf'
    )


# TLS alerts a server sends when it wants a (different) client certificate.
CLIENT_CERT_ALERTS = frozenset(
    {
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "TLSV1_ALERT_UNKNOWN_CA",
    }
)


def client_cert_hint(host: str) -> str:
    bases = certs_d_bases()
    where = f"{bases[0] / host}/" if bases else f"a certs.d directory for {host}"
    return f"it may require a client certificate: put client.cert and client.key in {where}"
