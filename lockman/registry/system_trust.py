"""The platform's CA store (plus ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``) in a client SSL context.

Parsing the system bundle costs 15-20 ms of OpenSSL work, and the first TLS connection waits
for it. OpenSSL parses without holding the GIL, so the ``lockman`` process starts the load on a
worker thread before it imports the rest of itself (:func:`start_early`) and the first context
is ready by the time a registry is contacted. Kept free of heavy imports for that reason.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import threading

from lockman.errors import InputError

_lock = threading.Lock()
_early: tuple[tuple[str, ...], threading.Thread, list[ssl.SSLContext]] | None = None


def _sources() -> tuple[str, ...]:
    """What the store is read from, now: a change since the early load means load again."""
    paths = ssl.get_default_verify_paths()
    return (
        paths.openssl_cafile or "",
        os.environ.get("SSL_CERT_FILE") or "",
        paths.openssl_capath or "",
        os.environ.get("SSL_CERT_DIR") or "",
    )


def _load(sources: tuple[str, ...]) -> ssl.SSLContext:
    """The platform store, then SSL_CERT_FILE / SSL_CERT_DIR in addition to it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    system_file, env_file, system_dir, env_dir = sources
    loaded = False
    for cafile in dict.fromkeys((system_file, env_file)):
        if os.path.isfile(cafile):  # unset ("") or missing: ignored, as OpenSSL does
            try:
                ctx.load_verify_locations(cafile=cafile)
                loaded = True
            except (ssl.SSLError, OSError) as e:
                raise InputError(f"{cafile}: not a usable CA bundle ({e})") from None
    for capath in dict.fromkeys((system_dir, env_dir)):
        for d in capath.split(os.pathsep) if capath else ():
            if os.path.isdir(d):
                ctx.load_verify_locations(capath=d)
                loaded = True
    if not loaded:
        ctx.load_default_certs()
    return ctx


def start_early() -> None:
    """Begin loading on a worker thread; :func:`client_context` takes the result.

    Not a daemon thread: the interpreter waits for it at exit. A run that ends before it is done
    (bad input found first) would otherwise exit while OpenSSL is still parsing, and OpenSSL's
    own exit-time cleanup under a running parse crashes the process.
    """
    global _early
    sources = _sources()
    result: list[ssl.SSLContext] = []

    def work() -> None:
        with contextlib.suppress(Exception):  # client_context() loads again and says why, its way
            result.append(_load(sources))

    thread = threading.Thread(target=work, name="lockman-trust", daemon=False)
    with _lock:
        _early = (sources, thread, result)
    thread.start()


def client_context() -> ssl.SSLContext:
    """A fresh client context holding the system store (the early one, once, if still valid)."""
    global _early
    with _lock:
        early, _early = _early, None
    sources = _sources()
    if early is not None and early[0] == sources:
        early[1].join()
        if early[2]:
            return early[2][0]
    return _load(sources)
