"""Choosing a platform's manifest out of an index. Pure: no I/O.

Parsing, normalisation and matching follow containerd/platforms, which docker and podman use:
``x86_64``/``x86-64`` are ``amd64``, ``aarch64`` is ``arm64``, ``i386`` is ``386``, ``armhf`` is
``arm/v7`` and ``armel`` is ``arm/v6`` (any case); ``arm`` means ``arm/v7`` and ``arm64/v8`` means
``arm64``; ``arm64/9`` and ``arm64/v9.0`` are ``arm64/v9``. Two platforms match when os,
architecture and variant are equal after normalisation, so a platform without a variant matches
no other variant (``linux/amd64`` never picks ``amd64/v3``). Attestation entries
(``unknown/unknown``) never match.

Deliberate differences from containerd: a platform must name os and architecture (lockman never
fills in the machine it runs on), and the ``os(version+feature)`` syntax is refused.
"""

from __future__ import annotations

import re

from lockman.errors import InputError
from lockman.model.manifest import Descriptor, Platform

_COMPONENT = re.compile(r"[A-Za-z0-9_.-]+")
_OS = re.compile(r"[A-Za-z0-9_-]+")
_OS_OPTIONS = re.compile(r"[A-Za-z0-9_-]+\([A-Za-z0-9_.%+-]*\)")


def parse_platform(text: str) -> Platform:
    """containerd's ``Parse`` for ``os/arch[/variant]``; raise :class:`InputError` naming the
    value, which the caller names after where it came from (``--platform``, an entry's key)."""
    if not isinstance(text, str):
        raise InputError(f"invalid platform {text!r}: expected os/arch[/variant]")
    parts = text.split("/")
    shown = repr(text if len(text) <= 100 else text[:100] + "…")
    if "*" in text:
        raise InputError(f"invalid platform {shown}: wildcards are not supported")
    if len(parts) > 3:
        raise InputError(f"invalid platform {shown}: expected os/arch[/variant]")
    if _OS_OPTIONS.fullmatch(parts[0]):
        raise InputError(f"invalid platform {shown}: os version and features are not supported")
    if not _OS.fullmatch(parts[0]) or not all(_COMPONENT.fullmatch(p) for p in parts[1:]):
        raise InputError(f"invalid platform {shown}: each part must be letters, digits, '_', '.' or '-'")
    if len(parts) == 1:
        raise InputError(f"invalid platform {shown}: expected os/arch[/variant] (name both)")
    os_ = normalise_os(parts[0])
    if len(parts) == 2:
        arch, variant = normalise_arch(parts[1], "")
        if arch == "arm" and variant == "v7":
            variant = ""
    else:
        arch, variant = normalise_arch(parts[1], parts[2])
        if arch == "arm64" and variant == "":
            variant = "v8"
    return Platform(os_, arch, variant or None)


def normalise_os(os_: str) -> str:
    os_ = os_.lower()
    return "darwin" if os_ == "macos" else os_


def normalise_arch(arch: str, variant: str) -> tuple[str, str]:
    """containerd's ``normalizeArch``: the canonical (architecture, variant) pair."""
    arch, variant = arch.lower(), variant.lower()
    if arch == "i386":
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        if variant in ("8", "v8", "v8.0"):
            variant = ""
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
        return "arm64", variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            variant = "v7"
        elif variant in ("5", "6", "8"):
            variant = "v" + variant
    return arch, variant


def normalise(p: Platform) -> Platform:
    """containerd's ``Normalize``: the form two platforms are compared in."""
    arch, variant = normalise_arch(p.architecture, p.variant or "")
    return Platform(normalise_os(p.os), arch, variant or None)


def matches(wanted: Platform, candidate: Platform | None) -> bool:
    if candidate is None:
        return False
    w, c = normalise(wanted), normalise(candidate)
    if c.os == "unknown" and c.architecture == "unknown":
        return False
    return w == c


def select(children: tuple[Descriptor, ...] | list[Descriptor], wanted: Platform) -> Descriptor | None:
    """The first child matching ``wanted`` (children without a platform, e.g. nested indexes,
    are returned by :func:`unplatformed` for the caller to descend into)."""
    for d in children:
        if not d.is_attestation and matches(wanted, d.platform):
            return d
    return None


def unplatformed(children: tuple[Descriptor, ...] | list[Descriptor]) -> list[Descriptor]:
    """Children an index lists without a platform: nested indexes worth descending into."""
    return [d for d in children if d.platform is None and not d.is_attestation]
