"""containers-registries.conf(5): where the bytes of an image name really come from.

podman, skopeo and buildah users already describe mirrors, location rewrites, insecure and
blocked registries in ``registries.conf`` (v2 TOML); lockman reads the same files so that it
works wherever ``podman pull`` does. Only *where* requests go changes: the lockfile still records
the name as written in ``xcargo.toml``, and whatever a mirror serves is hashed and checked like
anything else.

Files, as containers/image reads them: ``$CONTAINERS_REGISTRIES_CONF`` alone when set; otherwise
``~/.config/containers/registries.conf`` if it exists, else ``/etc/containers/registries.conf``,
followed by the ``*.conf`` drop-ins of ``registries.conf.d`` (system then user, alphabetical;
only the user drop-ins when the user file was used). A later ``[[registry]]`` with the same
prefix replaces an earlier one. ``unqualified-search-registries`` and ``[aliases]`` are ignored:
lockman, like docker, reads an unqualified name as Docker Hub.
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockman.errors import InputError
from lockman.model.reference import DOCKER_HUB, Reference

log = logging.getLogger("lockman.registries")

SYSTEM_CONF = Path("/etc/containers/registries.conf")
SYSTEM_CONF_D = Path("/etc/containers/registries.conf.d")
_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io")
_PULL_FROM_MIRROR = ("all", "digest-only", "tag-only")


class BlockedRegistry(InputError):
    """registries.conf forbids pulling this name (``blocked = true``)."""


@dataclass(frozen=True)
class Endpoint:
    """One place to ask for an image: a mirror or the (possibly rewritten) primary location."""

    ref: Reference  # registry/repository where the request goes; tag, digest, written unchanged
    insecure: bool = False
    mirror: bool = False

    @property
    def host(self) -> str:
        return self.ref.api_host


@dataclass(frozen=True)
class _Mirror:
    location: str
    insecure: bool
    pull_from: str  # all | digest-only | tag-only


@dataclass(frozen=True)
class RegistryEntry:
    prefix: str  # the name part (tag or digest, if any, in ``version``)
    location: str
    insecure: bool = False
    blocked: bool = False
    mirrors: tuple[_Mirror, ...] = ()
    source: str = ""
    version: str = ""  # ":tag" or "@digest" when the prefix names one image version

    @property
    def key(self) -> str:
        return self.prefix + self.version

    @property
    def wildcard(self) -> bool:
        return self.prefix.startswith("*.")

    def matches(self, ref: Reference) -> int:
        """Length of the match of this prefix against the reference, 0 when none."""
        name = ref.name
        if self.version:
            wanted = self.version[1:]
            same = ref.digest == wanted if self.version[0] == "@" else ref.tag == wanted
            return len(self.key) if name == self.prefix and same else 0
        if self.wildcard:
            host = name.split("/", 1)[0]
            hostname = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
            return len(self.prefix) if hostname.endswith(self.prefix[1:]) else 0
        if name == self.prefix or name.startswith(self.prefix + "/"):
            return len(self.prefix)
        return 0


def _normalise_name(value: str) -> str:
    """``index.docker.io/x`` and friends are ``docker.io/x``, as in image references.

    The host is lower-cased, as reference parsing lower-cases it: a ``blocked`` or ``insecure``
    entry must not be escaped (or widened) by the case a file or a user happens to write.
    """
    value = value.rstrip("/")
    host, slash, rest = value.partition("/")
    value = host.lower() + slash + rest
    for alias in _HUB_ALIASES:
        if value == alias or value.startswith(alias + "/"):
            return DOCKER_HUB + value[len(alias) :]
    return value


def _split_tag(prefix: str) -> tuple[str, str]:
    """``host/repo:tag`` or ``host/repo@digest`` → (name, ":tag" or "@digest"); else (prefix, "")."""
    name, at, digest = prefix.partition("@")
    if at:
        return name, "@" + digest
    last, colon = name.rfind("/"), name.rfind(":")
    if colon > last and last != -1:
        return name[:colon], name[colon:]
    return name, ""


def _bool(table: dict[str, Any], key: str, where: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise InputError(f"{where}: '{key}' must be true or false")
    return value


def _str(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise InputError(f"{where}: '{key}' must be a string")
    return value.strip()


def _parse_entry(table: Any, source: str, index: int) -> RegistryEntry:
    where = f"{source}: [[registry]] #{index + 1}"
    if not isinstance(table, dict):
        raise InputError(f"{where}: must be a table")
    location = _normalise_name(_str(table, "location", where))
    prefix, version = _split_tag(_str(table, "prefix", where))
    prefix = _normalise_name(prefix) or location
    if _split_tag(location)[1]:
        raise InputError(f"{where}: location {location!r} with a tag or digest is not supported")
    if not prefix:
        raise InputError(f"{where}: needs a 'prefix' or a 'location'")
    if prefix.startswith("*.") and "/" in prefix:
        raise InputError(f"{where}: wildcard prefix {prefix!r} may not contain a path")
    if prefix.startswith("*.") and location and location != prefix:
        raise InputError(f"{where}: a wildcard prefix cannot rewrite to location {location!r}")
    by_digest_only = _bool(table, "mirror-by-digest-only", where)
    mirrors: list[_Mirror] = []
    raw_mirrors = table.get("mirror", [])
    if not isinstance(raw_mirrors, list):
        raise InputError(f"{where}: 'mirror' must be an array of tables ([[registry.mirror]])")
    for j, m in enumerate(raw_mirrors):
        mwhere = f"{where} mirror #{j + 1}"
        if not isinstance(m, dict):
            raise InputError(f"{mwhere}: must be a table")
        mloc = _normalise_name(_str(m, "location", mwhere))
        if not mloc:
            raise InputError(f"{mwhere}: needs a 'location'")
        pull_from = _str(m, "pull-from-mirror", mwhere) or "all"
        if pull_from not in _PULL_FROM_MIRROR:
            raise InputError(f"{mwhere}: 'pull-from-mirror' must be one of {', '.join(_PULL_FROM_MIRROR)}")
        if by_digest_only:
            pull_from = "digest-only"
        mirrors.append(_Mirror(mloc, _bool(m, "insecure", mwhere), pull_from))
    return RegistryEntry(
        prefix=prefix,
        location=location if not prefix.startswith("*.") else "",
        insecure=_bool(table, "insecure", where),
        blocked=_bool(table, "blocked", where),
        mirrors=tuple(mirrors),
        source=source,
        version=version,
    )


def _load_file(path: Path) -> list[RegistryEntry]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: invalid TOML: {e}") from None
    registries = data.get("registry", [])
    if not isinstance(registries, list):
        raise InputError(f"{path}: 'registry' must be an array of tables ([[registry]])")
    if "registries" in data and not registries:
        log.warning("%s: version 1 format ([registries.*]) is not supported; ignored", path)
    return [_parse_entry(t, str(path), i) for i, t in enumerate(registries)]


def _drop_ins(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.suffix == ".conf" and p.is_file())
    except OSError:
        return []


def config_files() -> list[Path]:
    """The files that make up the configuration, in the order they are applied."""
    override = os.environ.get("CONTAINERS_REGISTRIES_CONF")
    if override:
        return [Path(override)]
    user_dir = Path.home() / ".config" / "containers"
    user_conf = user_dir / "registries.conf"
    if user_conf.exists():
        return [user_conf, *_drop_ins(user_dir / "registries.conf.d")]
    return [SYSTEM_CONF, *_drop_ins(SYSTEM_CONF_D), *_drop_ins(user_dir / "registries.conf.d")]


class RegistriesConf:
    """The merged ``[[registry]]`` tables, and what they mean for one image reference."""

    def __init__(self, entries: list[RegistryEntry]) -> None:
        merged: dict[str, RegistryEntry] = {}
        for e in entries:
            merged[e.key] = e  # a later file's table with the same prefix wins
        self.entries = list(merged.values())

    @classmethod
    def load(cls) -> RegistriesConf:
        entries: list[RegistryEntry] = []
        for path in config_files():
            entries.extend(_load_file(path))
        return cls(entries)

    def entry_for(self, ref: Reference) -> RegistryEntry | None:
        """The table whose prefix is the longest match for the reference's name."""
        best, best_len = None, 0
        for e in self.entries:
            n = e.matches(ref)
            if n > best_len:
                best, best_len = e, n
        return best

    def endpoints(self, ref: Reference) -> list[Endpoint]:
        """Mirrors in order (those allowed for this kind of pull), then the primary location."""
        entry = self.entry_for(ref)
        if entry is None:
            return [Endpoint(ref)]
        if entry.blocked:
            raise BlockedRegistry(f"{ref.familiar()}: pulling from {entry.key} is blocked by {entry.source}")
        by_digest = ref.digest is not None
        out = [
            Endpoint(_rewrite(ref, entry, m.location), m.insecure, mirror=True)
            for m in entry.mirrors
            if m.pull_from == "all" or (m.pull_from == "digest-only") == by_digest
        ]
        out.append(Endpoint(_rewrite(ref, entry, entry.location), entry.insecure))
        return out

    def insecure_hosts(self) -> set[str]:
        """Hosts that registries.conf allows over plain HTTP or with untrusted certificates."""
        hosts: set[str] = set()
        for e in self.entries:
            if e.insecure and not e.wildcard:
                hosts.add(_api_host(e.location or e.prefix))
            hosts.update(_api_host(m.location) for m in e.mirrors if m.insecure)
        return hosts

    def insecure_wildcards(self) -> list[str]:
        return [e.prefix[1:] for e in self.entries if e.insecure and e.wildcard]

    def is_insecure(self, host: str) -> bool:
        if host in self.insecure_hosts():
            return True
        hostname = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return any(hostname.endswith(suffix) for suffix in self.insecure_wildcards())


def _api_host(location: str) -> str:
    host = location.split("/", 1)[0]
    return "registry-1.docker.io" if host == DOCKER_HUB else host


def _rewrite(ref: Reference, entry: RegistryEntry, location: str) -> Reference:
    """Replace the matched prefix of the name with ``location`` (the host, for a wildcard)."""
    if not location:
        return ref
    matched = ref.registry if entry.wildcard else entry.prefix  # a wildcard matches the host
    rest = ref.name[len(matched) :].lstrip("/")
    target = f"{location}/{rest}" if rest else location
    registry, _, repository = target.partition("/")
    if not repository:
        raise InputError(
            f"{entry.source}: location {location!r} leaves {ref.familiar()} without a repository"
        )
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return Reference(registry, repository, ref.tag, ref.digest, ref.written)
