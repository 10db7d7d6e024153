"""What an image update means for the binaries built in it: the toolchain, old → new.

xcargo's images are toolchains. A rebuild that raises glibc raises the glibc every binary built
in it requires (cross-rs/cross#960: 2.18 → 2.29); a new libssl or distribution release decides
whether linking works. From the SBOM's packages (by binary or source package name) and the
image config's environment (``RUST_VERSION``, as the official rust images set it), this names
the C library, the distribution release, gcc, binutils, clang, openssl and rust on each side,
and flags a version that went down. Pure; every input is registry text already bounded by the
SBOM parser.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lockman.model.vulns import Package, parse_purl

COMPONENTS = ("distro", "glibc", "musl", "gcc", "binutils", "clang", "openssl", "rust")
"""In report order: what decides which systems a built binary runs on comes first."""

_NAMES: dict[str, re.Pattern[str]] = {
    "glibc": re.compile(r"glibc|libc6|eglibc"),
    "musl": re.compile(r"musl"),
    "gcc": re.compile(r"gcc(-\d+)?"),
    "binutils": re.compile(r"binutils"),
    "clang": re.compile(r"clang(-\d+)?|llvm-toolchain(-\d+)?"),
    "openssl": re.compile(r"openssl|openssl3|libssl\d*(\.\d+)*"),
    "rust": re.compile(r"rustc|rust|rust-toolchain"),
}
ENV_KEYS = {"RUST_VERSION": "rust"}
"""Image config ``Env`` variables that name a toolchain version."""


@dataclass(frozen=True)
class ToolchainChange:
    component: str
    old: str | None
    new: str | None
    downgrade: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"component": self.component, "old": self.old, "new": self.new, "downgrade": self.downgrade}


def _key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A version's order key: epoch first, then digit and letter runs (``2:1.1.1w-0`` → …)."""
    epoch, _, rest = version.partition(":") if re.match(r"\d+:", version) else ("0", "", version)
    parts = re.findall(r"\d+|[a-z]+", rest.lower())
    return ((0, int(epoch)), *((0, int(p)) if p.isdigit() else (1, p) for p in parts))


def older(new: str, old: str) -> bool:
    """Whether ``new`` is a lower version than ``old`` (digit runs compared as numbers)."""
    return _key(new) < _key(old)


def env_versions(env: Iterable[object]) -> dict[str, str]:
    """The ``ENV_KEYS`` of an image config's ``Env`` list (``["RUST_VERSION=1.70.0", …]``)."""
    out = {}
    for item in env:
        if isinstance(item, str) and "=" in item:
            k, v = item.split("=", 1)
            if k in ENV_KEYS and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.+~_-]{0,63}", v):
                out[ENV_KEYS[k]] = v
    return out


def _highest(versions: Iterable[str]) -> str | None:
    return max(versions, key=_key, default=None)


def versions(
    packages: Iterable[tuple[str, str]],
    purls: Iterable[Package] = (),
    distro: tuple[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Each component's version on one side: the highest version of any package that is the
    component by its name or its source package's (``libc6`` built from ``glibc``)."""
    found: dict[str, set[str]] = {}
    sources: dict[tuple[str, str], str] = {}
    releases: Counter[tuple[str, str]] = Counter()
    for p in purls:
        purl = parse_purl(p.purl)
        if purl is None:
            continue
        for q in ("upstream", "source", "origin"):
            if purl.qualifiers.get(q):
                sources[(p.name, p.version)] = re.split(r"[@ (]", purl.qualifiers[q], maxsplit=1)[0]
                break
        d = purl.qualifiers.get("distro", "")
        m = re.fullmatch(r"([a-z]+)-(\d[\w.]*)", d)
        if m and purl.type in ("deb", "apk", "rpm"):
            releases[(m.group(1), m.group(2))] += 1
    for name, version in packages:
        if not version:
            continue
        for component, pattern in _NAMES.items():
            if pattern.fullmatch(name.lower()) or pattern.fullmatch(sources.get((name, version), "").lower()):
                found.setdefault(component, set()).add(version)
    out = {c: v for c, vs in found.items() if (v := _highest(vs)) is not None}
    if distro is None and releases:
        distro = releases.most_common(1)[0][0]
    if distro is not None:
        out["distro"] = f"{distro[0]} {distro[1]}"
    out.update(env or {})
    return out


def diff(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[ToolchainChange, ...]:
    """Every component either side has, in ``COMPONENTS`` order; a version that went down (the
    same distribution, for ``distro``) is a downgrade."""
    out = []
    for c in COMPONENTS:
        a, b = old.get(c), new.get(c)
        if a is None and b is None:
            continue
        down = False
        if a is not None and b is not None:
            if c == "distro":
                (na, _, va), (nb, _, vb) = a.partition(" "), b.partition(" ")
                down = na == nb and older(vb, va)
            else:
                down = older(b, a)
        out.append(ToolchainChange(c, a, b, down))
    return tuple(out)
