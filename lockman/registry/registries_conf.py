"""containers-registries.conf(5): where the bytes of an image name really come from.

podman, skopeo and buildah users already describe mirrors, location rewrites, insecure and
blocked registries in ``registries.conf``; lockman reads the same files, and refuses the same bad
files, as containers/image (``pkg/sysregistriesv2``), so that one file means one thing to every
tool. Only *where* requests go changes: the lockfile still records the name as written in
``xcargo.toml``, and whatever a mirror serves is hashed and checked like anything else.

Files, as containers/image reads them: ``$CONTAINERS_REGISTRIES_CONF`` (else
``$REGISTRIES_CONFIG_PATH``) when set, and then it must exist; otherwise
``$HOME/.config/containers/registries.conf`` if it exists (containers/image does not consult
``$XDG_CONFIG_HOME`` here), else ``/etc/containers/registries.conf``. Then the ``*.conf``
drop-ins of ``registries.conf.d``, alphabetically: the system directory and then the user's,
or only the user's when the user file was used. A drop-in's ``[[registry]]`` replaces an earlier
one with the same prefix; within one file the first table for a prefix wins. Version 1 files
(``[registries.search|insecure|block]``) are converted; mixing v1 and v2 is refused.
``unqualified-search-registries`` is validated but not used: lockman, like docker, reads an
unqualified name as Docker Hub; ``[aliases]`` are ignored.
"""

from __future__ import annotations

import errno
import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockman.errors import InputError
from lockman.fileio import MAX_CONFIG_BYTES, read_bounded
from lockman.model.reference import DOCKER_HUB, DOMAIN_RE, Reference, parse

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
    index: int = 0  # position in its file, for messages

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


def _location(value: str, where: str, key: str) -> str:
    """containers/image's ``parseLocation``: trailing slashes go, a URI scheme is refused.

    ``https://internal.example`` would otherwise become a host called ``https:``; containers/image
    refuses the file, and so does lockman (any ``scheme://``, not only http and https).
    """
    if "://" in value:
        raise InputError(
            f"{where}: '{key}' {value!r}: URI schemes are not supported (write host[:port][/path])"
        )
    return value.rstrip("/")


def _pull_from(table: dict[str, Any], where: str) -> str:
    value = _str(table, "pull-from-mirror", where)
    if value and value not in _PULL_FROM_MIRROR:
        raise InputError(f"{where}: 'pull-from-mirror' must be one of {', '.join(_PULL_FROM_MIRROR)}")
    return value


def _parse_entry(table: Any, source: str, index: int) -> RegistryEntry:
    where = f"{source}: [[registry]] #{index + 1}"
    if not isinstance(table, dict):
        raise InputError(f"{where}: must be a table")
    location = _normalise_name(_location(_str(table, "location", where), where, "location"))
    raw_prefix = _location(_str(table, "prefix", where), where, "prefix")
    if not raw_prefix and not location:
        raise InputError(f"{where}: needs a 'prefix' or a 'location'")
    prefix, version = _split_tag(_normalise_name(raw_prefix) or location)
    wildcard = prefix.startswith("*.")
    if raw_prefix and not wildcard and not location:
        raise InputError(
            f"{where}: 'location' is unset and 'prefix' {raw_prefix!r} is not a *.example.com wildcard"
        )
    if wildcard and (version or any(c in prefix for c in "/@:")):
        raise InputError(f"{where}: 'prefix' {raw_prefix!r}: a wildcard prefix must look like *.example.com")
    if _split_tag(location)[1]:
        raise InputError(f"{where}: 'location' {location!r} with a tag or digest is not supported")
    if _pull_from(table, where):
        raise InputError(
            f"{where}: 'pull-from-mirror' belongs in a [[registry.mirror]] table, not the registry"
        )
    by_digest_only = _bool(table, "mirror-by-digest-only", where)
    mirrors: list[_Mirror] = []
    raw_mirrors = table.get("mirror", [])
    if not isinstance(raw_mirrors, list):
        raise InputError(f"{where}: 'mirror' must be an array of tables ([[registry.mirror]])")
    for j, m in enumerate(raw_mirrors):
        mwhere = f"{where} mirror #{j + 1}"
        if not isinstance(m, dict):
            raise InputError(f"{mwhere}: must be a table")
        mloc = _normalise_name(_location(_str(m, "location", mwhere), mwhere, "location"))
        if not mloc:
            raise InputError(f"{mwhere}: needs a 'location'")
        pull_from = _pull_from(m, mwhere)
        if by_digest_only and pull_from:
            raise InputError(
                f"{mwhere}: 'pull-from-mirror' cannot be combined with the registry's 'mirror-by-digest-only'"
            )
        mirrors.append(
            _Mirror(
                mloc, _bool(m, "insecure", mwhere), "digest-only" if by_digest_only else pull_from or "all"
            )
        )
    return RegistryEntry(
        prefix=prefix,
        location="" if location.startswith("*.") else location,
        insecure=_bool(table, "insecure", where),
        blocked=_bool(table, "blocked", where),
        mirrors=tuple(mirrors),
        source=source,
        version=version,
        index=index,
    )


_V2_KEYS = (
    "registry",
    "unqualified-search-registries",
    "credential-helpers",
    "short-name-mode",
    "additional-layer-store-auth-helper",
    "aliases",
)
_SHORT_NAME_MODES = ("disabled", "enforcing", "permissive")


def _v1_lists(data: dict[str, Any], source: str) -> dict[str, list[str]] | None:
    """The ``[registries.search|insecure|block]`` lists of a version 1 file, None when absent."""
    v1 = data.get("registries")
    if not isinstance(v1, dict):
        return None
    lists: dict[str, list[str]] = {}
    for kind in ("search", "insecure", "block"):
        table = v1.get(kind)
        if isinstance(table, dict) and "registries" in table:
            values = table["registries"]
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise InputError(f"{source}: [registries.{kind}] 'registries' must be a list of strings")
            lists[kind] = values
    return lists or None


def _from_v1(lists: dict[str, list[str]], source: str) -> list[RegistryEntry]:
    """containers/image's ``ConvertToV2``: one table per location, blocked and/or insecure."""
    where = f"{source}: [registries.%s]"
    order: dict[str, dict[str, bool]] = {}
    for kind, flag in (("block", "blocked"), ("insecure", "insecure")):
        for value in lists.get(kind, []):
            loc = _normalise_name(_location(value.strip(), where % kind, "registries"))
            order.setdefault(loc, {})[flag] = True
    for value in lists.get("search", []):
        _location(value, where % "search", "registries")
    return [
        RegistryEntry(prefix=loc, location=loc, source=source, index=i, **flags)  # type: ignore[arg-type]
        for i, (loc, flags) in enumerate(order.items())
    ]


def _check_v2_extras(data: dict[str, Any], source: str) -> None:
    """Keys lockman does not use but containers/image validates: a file podman refuses is refused."""
    search = data.get("unqualified-search-registries", [])
    if not isinstance(search, list) or not all(isinstance(v, str) for v in search):
        raise InputError(f"{source}: 'unqualified-search-registries' must be a list of strings")
    for value in search:
        host = _location(value.strip(), source, "unqualified-search-registries")
        if not DOMAIN_RE.fullmatch(host):
            raise InputError(
                f"{source}: 'unqualified-search-registries' entry {value!r} is not a host[:port]"
            )
    mode = data.get("short-name-mode", "")
    if mode and mode not in _SHORT_NAME_MODES:
        raise InputError(f"{source}: 'short-name-mode' must be one of {', '.join(_SHORT_NAME_MODES)}")


def _check_conflicts(entries: list[RegistryEntry]) -> None:
    """One registry (location) named twice with different ``insecure`` or ``blocked``: refused."""
    seen: dict[str, RegistryEntry] = {}
    for e in entries:
        first = seen.setdefault(e.location or e.prefix, e)
        for key in ("insecure", "blocked"):
            if getattr(first, key) != getattr(e, key):
                raise InputError(
                    f"{e.source}: [[registry]] #{e.index + 1}: registry {e.location or e.prefix!r} is defined"
                    f" again with a conflicting '{key}' (first in [[registry]] #{first.index + 1})"
                )


def _unique(entries: list[RegistryEntry]) -> list[RegistryEntry]:
    """Within one file the first table for a prefix wins, later ones are ignored (containers/image)."""
    out: dict[str, RegistryEntry] = {}
    for e in entries:
        if e.key in out:
            log.warning("%s: [[registry]] #%d repeats prefix %r; ignored", e.source, e.index + 1, e.key)
        out.setdefault(e.key, e)
    return list(out.values())


MAX_CONF_BYTES = MAX_CONFIG_BYTES


def _read_small(path: Path) -> str:
    """The file's text (``/dev/null`` reads as empty); a FIFO or huge file (/dev/zero) is refused."""
    data = read_bounded(path, limit=MAX_CONF_BYTES, what="a registries configuration")
    if data is None:
        raise FileNotFoundError(errno.ENOENT, "not found", str(path))
    return data.decode("utf-8")


def _load_file(path: Path, *, required: str = "", drop_in: bool = False) -> list[RegistryEntry]:
    """One file's tables, checked; ``required`` names the variable that named a file that must exist."""
    try:
        data = tomllib.loads(_read_small(path))
    except FileNotFoundError:
        if required:
            raise InputError(f"{path}: registries configuration not found (named by {required})") from None
        return []
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: invalid TOML: {e}") from None
    source = str(path)
    v1 = _v1_lists(data, source)
    if v1 is not None:
        if drop_in:
            raise InputError(
                f"{path}: [registries.*]: a drop-in must use the version 2 format ([[registry]])"
            )
        v2 = [k for k in _V2_KEYS if k in data]
        if v2:
            raise InputError(
                f"{path}: '{v2[0]}': mixing version 1 ([registries.*]) and version 2 is not supported"
            )
        entries = _from_v1(v1, source)
    else:
        _check_v2_extras(data, source)
        registries = data.get("registry", [])
        if not isinstance(registries, list):
            raise InputError(f"{path}: 'registry' must be an array of tables ([[registry]])")
        entries = [_parse_entry(t, source, i) for i, t in enumerate(registries)]
    _check_conflicts(entries)
    return _unique(entries)


def _drop_ins(directory: Path) -> list[Path]:
    """``*.conf`` regular files (symlinks followed), by name; a missing directory is no drop-ins."""
    try:
        names = sorted(p.name for p in directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as e:
        raise InputError(f"{directory}: cannot read drop-in directory: {e.strerror or e}") from None
    return [directory / n for n in names if n.endswith(".conf") and (directory / n).is_file()]


@dataclass(frozen=True)
class ConfigSources:
    main: Path
    required: str  # the variable that named it: then a missing file is an error, not "no configuration"
    drop_ins: tuple[Path, ...]


def config_sources() -> ConfigSources:
    """Which files make up the configuration, as containers/image's ``newConfigWrapper`` decides."""
    variable = "CONTAINERS_REGISTRIES_CONF"
    if variable not in os.environ:
        variable = "REGISTRIES_CONFIG_PATH"  # the older name, only when the new one is not set at all
    override = os.environ.get(variable, "")
    user_dir = Path.home() / ".config" / "containers"
    user_conf, user_d = user_dir / "registries.conf", user_dir / "registries.conf.d"
    if not override and user_conf.exists():
        return ConfigSources(user_conf, "", tuple(_drop_ins(user_d)))
    main = Path(override) if override else SYSTEM_CONF
    return ConfigSources(main, variable if override else "", (*_drop_ins(SYSTEM_CONF_D), *_drop_ins(user_d)))


def config_files() -> list[Path]:
    """The files that make up the configuration, in the order they are applied."""
    sources = config_sources()
    return [sources.main, *sources.drop_ins]


class RegistriesConf:
    """The merged ``[[registry]]`` tables, and what they mean for one image reference."""

    def __init__(self, entries: list[RegistryEntry]) -> None:
        merged: dict[str, RegistryEntry] = {}
        for e in entries:
            merged[e.key] = e  # a later file's table with the same prefix wins
        self.entries = list(merged.values())

    @classmethod
    def load(cls) -> RegistriesConf:
        """Read and check every file now, so a bad one stops the run before any request."""
        sources = config_sources()
        entries = _load_file(sources.main, required=sources.required)
        for path in sources.drop_ins:
            entries.extend(_load_file(path, drop_in=True))
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
            raise BlockedRegistry(
                f"pulling from {entry.key} is blocked by {entry.source}", subject=ref.familiar()
            )
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
            if e.insecure and (e.location or not e.wildcard):
                hosts.add(_api_host(e.location or e.prefix))
            hosts.update(_api_host(m.location) for m in e.mirrors if m.insecure)
        return hosts

    def insecure_wildcards(self) -> list[str]:
        return [e.prefix[1:] for e in self.entries if e.insecure and e.wildcard and not e.location]

    def is_insecure(self, host: str) -> bool:
        if host in self.insecure_hosts():
            return True
        hostname = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return any(hostname.endswith(suffix) for suffix in self.insecure_wildcards())


def _api_host(location: str) -> str:
    host = location.split("/", 1)[0]
    return "registry-1.docker.io" if host == DOCKER_HUB else host


def _hostname(host: str) -> str:
    """``host[:port]`` without the port (IPv6 literals keep their brackets)."""
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _rewrite(ref: Reference, entry: RegistryEntry, location: str) -> Reference:
    """containers/image's ``rewriteReference``: the matched part of the name becomes ``location``.

    A wildcard matches the host name only, so a port after it is kept, as containers/image does
    (``a.sub.example.io:5000/x`` with ``*.sub.example.io`` → ``example.com`` is ``example.com:5000/x``).
    The result must parse as a reference on the location's host, else the table is refused.
    """
    where = f"{entry.source}: [[registry]] #{entry.index + 1}"
    if not location:
        if not entry.wildcard:  # parsing refuses this; kept so the function is safe on its own
            raise InputError(f"{where}: 'location' is unset and 'prefix' {entry.key!r} is not a wildcard")
        return ref
    if not entry.matches(ref):
        raise InputError(
            f"{where}: prefix {entry.key!r} does not match {ref.familiar()}",
            subject=ref.familiar(),
            in_message=True,
        )
    matched = len(_hostname(ref.registry)) if entry.wildcard else len(entry.prefix)
    target = location + ref.name[matched:]
    suffix = (f":{ref.tag}" if ref.tag is not None else "") + (f"@{ref.digest}" if ref.digest else "")
    try:
        new = parse(target + suffix, default_tag=None)
    except InputError:
        new = None
    host = target.split("/", 1)[0] if "/" in target else ""
    if new is None or new.registry.lower() != _normalise_name(host).lower():
        raise InputError(
            f"{where}: 'location' {location!r} turns {ref.familiar()} into {target!r}, not an image name",
            subject=ref.familiar(),
            in_message=True,
        )
    return Reference(new.registry, new.repository, ref.tag, ref.digest, ref.written)
