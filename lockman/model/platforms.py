"""Choosing a platform's manifest out of an index. Pure: no I/O.

Matching follows containerd's rules, which docker and podman use: os and architecture must be
equal; a requested variant must be equal after normalisation (``arm64`` means ``arm64/v8``,
``arm`` means ``arm/v7``); without a requested variant, the child without one (or with the
architecture's default) is preferred. Attestation entries (``unknown/unknown``) never match.
"""

from __future__ import annotations

from lockman.errors import InputError
from lockman.model.manifest import Descriptor, Platform

_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}
_ARCH_ALIASES = {"aarch64": "arm64", "x86_64": "amd64", "x86-64": "amd64", "armhf": "arm"}


def parse_platform(text: str, *, what: str = "--platform") -> Platform:
    """``os/arch[/variant]``; raise :class:`InputError` naming the flag otherwise."""
    try:
        p = Platform.parse(text)
    except ValueError as e:
        raise InputError(f"{what}: {e}") from None
    return p


def normalise(p: Platform) -> Platform:
    arch = _ARCH_ALIASES.get(p.architecture, p.architecture)
    variant = p.variant or _DEFAULT_VARIANT.get(arch)
    return Platform(p.os, arch, variant)


def matches(wanted: Platform, candidate: Platform | None) -> bool:
    if candidate is None:
        return False
    w, c = normalise(wanted), normalise(candidate)
    if c.os == "unknown" and c.architecture == "unknown":
        return False
    if (w.os, w.architecture) != (c.os, c.architecture):
        return False
    return wanted.variant is None or w.variant == c.variant


def select(children: tuple[Descriptor, ...] | list[Descriptor], wanted: Platform) -> Descriptor | None:
    """The first child matching ``wanted`` (children without a platform, e.g. nested indexes,
    are returned by :func:`unplatformed` for the caller to descend into)."""
    candidates = [d for d in children if not d.is_attestation and matches(wanted, d.platform)]
    if not candidates:
        return None
    exact = [d for d in candidates if d.platform is not None and normalise(d.platform) == normalise(wanted)]
    return (exact or candidates)[0]


def unplatformed(children: tuple[Descriptor, ...] | list[Descriptor]) -> list[Descriptor]:
    """Children an index lists without a platform: nested indexes worth descending into."""
    return [d for d in children if d.platform is None and not d.is_attestation]
