"""Where registry credentials come from: the stores podman, skopeo and docker users already have.

Files, in containers/image's order (``pkg/docker/config`` ``getAuthFilePaths``, containers-auth.json(5)),
the first that has credentials for the registry winning:

1. ``REGISTRY_AUTH_FILE`` when set, and then no other file (containers/image#1751: podman and
   skopeo pass it as ``--authfile``, which switches the defaults off);
2. ``$XDG_RUNTIME_DIR/containers/auth.json``, or ``/run/containers/$UID/auth.json`` when
   ``XDG_RUNTIME_DIR`` is unset (where root's ``podman login`` writes);
3. ``$XDG_CONFIG_HOME/containers/auth.json`` (``~/.config`` when unset);
4. ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``;
5. ``~/.dockercfg`` (the legacy format: the whole file is the ``auths`` table).

In each file ``credHelpers`` for the host, then ``credsStore``, then ``auths``.

Keys within one ``auths`` table, as containers/image looks them up: the exact keys first, most
specific first (``host/ns/repo``, ``host/ns``, ``host``); only then a key that names the same
host once normalised (a URL key loses scheme and path as docker/cli's ``ConvertToHostname`` does;
``docker.io``, ``index.docker.io`` and ``registry-1.docker.io`` are one host). So with both
``docker.io`` and ``https://index.docker.io/v1/`` present, ``docker.io`` wins whatever the file order.

A credential helper that is missing or has nothing for the host means anonymous access, not a
failure (ggcr#156, docker/cli#1989): public pulls must keep working. Secrets are kept in
:class:`Credential`, whose ``repr`` hides them, so they cannot leak into messages by accident.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockman import programs, safejson
from lockman.errors import InputError
from lockman.fileio import MAX_CONFIG_BYTES, read_bounded

log = logging.getLogger("lockman.credentials")



@dataclass(frozen=True)
class Credential:
    username: str = field(repr=False, default="")
    password: str = field(repr=False, default="")
    identity_token: str = field(repr=False, default="")

    def __repr__(self) -> str:
        return "Credential(<redacted>)"

    def __post_init__(self) -> None:
        from lockman.console import register_secret

        for s in (self.password, self.identity_token):
            register_secret(s)
        if self.password:  # the Basic header and config.json's "auth" carry it encoded
            register_secret(base64.b64encode(f"{self.username}:{self.password}".encode()).decode())


def _read_json(path: Path) -> dict[str, Any] | None:
    """The file's JSON object; missing, empty (``/dev/null``) or unreadable means none, with a
    warning for the last (REGISTRY_AUTH_FILE=/dev/zero is refused at 4 MiB, not read forever)."""
    try:
        raw = read_bounded(path, limit=MAX_CONFIG_BYTES, what="a credentials file")
        if not raw:
            return None
        data = safejson.loads(raw.decode("utf-8"))
    except InputError as e:
        log.warning("ignoring credentials file: %s", e)
        return None
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable credentials file %s: %s", path, type(e).__name__)
        return None
    return data if isinstance(data, dict) else None


def convert_to_hostname(key: str) -> str:
    """docker/cli's ``ConvertToHostname``: a URL key (``https://host:port/v1/``) → ``host:port``.

    Without ``://`` the key is cut at the first ``/``; an unbracketed IPv6 literal with a port gets
    its brackets (``https://::1:6555/v2/`` → ``[::1]:6555``).
    """
    if "://" in key:
        host = key.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
        if host.startswith("["):
            return host
        if host.count(":") > 1:
            addr, _, port = host.rpartition(":")
            return f"[{addr}]:{port}" if port.isdigit() else host  # addr holds a colon: not empty
        if host.endswith(":"):
            host = host[:-1]
        if host:
            return host
    return key.split("/", 1)[0]


def _normalise_registry(host: str) -> str:
    return "docker.io" if host in _HUB_HOSTS else host


_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")


def _normalise_key(key: str) -> str:
    """An ``auths``/``credHelpers`` key as the host it names, for the fallback match (containers/image's
    ``normalizeAuthFileKey``): a URL key keeps only its host; a plain key is left whole."""
    return _normalise_registry(convert_to_hostname(key) if "://" in key else key)


def lookup_order(registry: str, repository: str) -> list[str]:
    """Exact ``auths`` keys to try, best first: ``host/a/b``, ``host/a``, ``host``."""
    parts = repository.split("/") if repository else []
    return [f"{registry}/{'/'.join(parts[:i])}" for i in range(len(parts), 0, -1)] + [registry]


def _from_auth_entry(entry: Any) -> Credential | None:
    if not isinstance(entry, dict):
        return None
    def text(key: str) -> str:  # a number or list where a string belongs counts as absent
        value = entry.get(key)
        return value if isinstance(value, str) else ""

    identity = text("identitytoken")
    user, password = text("username"), text("password")
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            decoded = base64.b64decode(auth).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            log.warning("ignoring malformed 'auth' value in a credentials file")
            decoded = ""
        user, _, password = decoded.partition(":")
    if identity:
        return Credential(username=user, identity_token=identity)
    if user or password:
        return Credential(username=user, password=password)
    return None


def _lookup_auths(auths: Any, registry: str, repository: str) -> Credential | None:
    """The entry for the first exact key that exists, else one whose key normalises to the host."""
    if not isinstance(auths, dict):
        return None
    for key in lookup_order(registry, repository):
        if key in auths:
            return _from_auth_entry(auths[key])
    host = _normalise_registry(registry)
    for key, entry in auths.items():
        if _normalise_key(str(key)) == host:
            return _from_auth_entry(entry)
    return None


def _helper_server_url(registry: str) -> str:
    return "https://index.docker.io/v1/" if registry == "docker.io" else registry


HELPER_TIMEOUT = 20.0


@dataclass(frozen=True)
class HelperResult:
    """What a helper said: a credential, nothing (anonymous), or a failure worth reporting."""

    credential: Credential | None = None
    problem: str = ""  # empty unless the helper is broken (not merely missing or empty-handed)


def _not_found(text: str) -> bool:
    t = text.lower()
    return "not found" in t or "no credentials" in t or "does not exist" in t


def _first_line(data: bytes) -> str:
    line = data.decode("utf-8", "replace").strip().splitlines()
    return line[0][:200] if line else ""


def _register_answer_secrets(stdout: bytes) -> None:
    """Every ``Secret`` in a helper's (maybe partial, maybe failed) JSON answer is redacted."""
    from lockman.console import register_secret

    try:
        data = safejson.loads(stdout)
    except (ValueError, UnicodeDecodeError):
        # A truncated answer; a JSON string holds no raw line break, so the secret ends at one.
        for secret in re.findall(rb'"Secret"\s*:\s*"([^"\r\n]*)', stdout):
            register_secret(secret.decode("utf-8", "replace"))
        return
    if isinstance(data, dict) and isinstance(data.get("Secret"), str):
        register_secret(data["Secret"])


def run_helper(helper: str, registry: str) -> HelperResult:
    """Ask ``docker-credential-<helper> get`` for ``registry``'s credentials.

    Missing helper or "credentials not found": anonymous, logged at debug level (ggcr#156,
    docker/cli#1989). Anything else the helper does wrong (crash, hang, garbage) is a problem
    for this registry only; the caller carries on anonymously and reports it if auth fails.
    """
    name = f"docker-credential-{helper}"
    try:
        exe = programs.find(name)
    except InputError as e:  # found relative to the current directory, or not a program name
        return HelperResult(problem=str(e))
    if exe is None:
        log.debug("credential helper %s not found on PATH; %s: anonymous", name, registry)
        return HelperResult()
    try:
        proc = subprocess.run(
            [exe, "get"],
            input=_helper_server_url(registry).encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return HelperResult(problem=f"{name} did not answer within {HELPER_TIMEOUT:g} s")
    except OSError as e:
        return HelperResult(problem=f"{name} could not be run ({e.strerror or type(e).__name__})")
    if proc.returncode != 0:
        out_line, err_line = _first_line(proc.stdout), _first_line(proc.stderr)
        if _not_found(out_line) or _not_found(err_line):
            log.debug("credential helper %s has no credentials for %s; anonymous", name, registry)
            return HelperResult()
        # stdout is where a helper's secret travels: a failing helper may still have printed
        # it (or half of it). Its secrets are registered for redaction, and only a plain
        # message, never a JSON answer, is quoted.
        _register_answer_secrets(proc.stdout)
        said = err_line or ("" if out_line.lstrip().startswith(("{", "[")) else out_line)
        return HelperResult(problem=f"{name} failed (exit {proc.returncode}: {said or 'no message'})")
    try:
        data = safejson.loads(proc.stdout)
    except ValueError:
        return HelperResult(problem=f"{name} answered with something that is not JSON")
    if not isinstance(data, dict):
        return HelperResult(problem=f"{name} answered with something that is not a JSON object")
    user, secret = str(data.get("Username") or ""), str(data.get("Secret") or "")
    if not secret:
        log.debug("credential helper %s returned no secret for %s; anonymous", name, registry)
        return HelperResult()
    if user == "<token>":
        return HelperResult(Credential(identity_token=secret))
    return HelperResult(Credential(username=user, password=secret))


PER_UID_AUTH_FILE = "/run/containers/{uid}/auth.json"
"""containers/image's primary file when ``XDG_RUNTIME_DIR`` is unset (a module attribute so
tests can point it away from the machine's)."""


@dataclass(frozen=True)
class AuthFile:
    """One place credentials may be, and what an error message says about it."""

    path: Path
    note: str = ""
    """Why this path: the unset variable that chose it, for a bot's trimmed environment."""
    legacy: bool = False
    """``~/.dockercfg``: the file is the ``auths`` table, keyed by host only."""

    def describe(self) -> str:
        return f"{self.path} ({self.note})" if self.note else str(self.path)


def _primary_auth_file(home: Path) -> AuthFile:
    """containers/image's ``getPathToAuth``: the file ``podman login`` and ``skopeo login`` write."""
    if sys.platform != "linux":
        return AuthFile(home / ".config" / "containers" / "auth.json")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return AuthFile(Path(runtime) / "containers" / "auth.json")
    return AuthFile(Path(PER_UID_AUTH_FILE.format(uid=os.getuid())), "XDG_RUNTIME_DIR unset")


def auth_files() -> list[AuthFile]:
    """Every file to read, best first, as containers/image's ``getAuthFilePaths`` lists them."""
    explicit = os.environ.get("REGISTRY_AUTH_FILE")
    if explicit:
        return [AuthFile(Path(explicit), "REGISTRY_AUTH_FILE; no other file is read when it is set")]
    home = Path.home()
    files = [_primary_auth_file(home)]
    config_home = os.environ.get("XDG_CONFIG_HOME")
    files.append(AuthFile(Path(config_home or home / ".config") / "containers" / "auth.json"))
    docker = os.environ.get("DOCKER_CONFIG")
    if docker:
        files.append(AuthFile(Path(docker) / "config.json"))
    else:
        files.append(AuthFile(home / ".docker" / "config.json", "DOCKER_CONFIG unset"))
    files.append(AuthFile(home / ".dockercfg", legacy=True))
    unique: list[AuthFile] = []
    for f in files:  # on macOS the primary file is also the XDG_CONFIG_HOME one
        if all(f.path != u.path for u in unique):
            unique.append(f)
    return unique


def _helper_for(helpers: Any, registry: str) -> str:
    """The ``credHelpers`` entry naming ``registry`` (any key spelling of it), or ''."""
    if isinstance(helpers, dict):
        for key, helper in helpers.items():
            if _normalise_key(str(key)) == _normalise_registry(registry) and isinstance(helper, str):
                return helper
    return ""


class CredentialStore:
    """Looks credentials up lazily, once per (registry, repository), and remembers secrets."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Credential | None] = {}
        self._sources: dict[tuple[str, str], str] = {}  # where each credential came from
        self._looked: dict[tuple[str, str], list[str]] = {}  # every place asked, when none had one
        self.problems: dict[str, str] = {}  # registry → why its helper gave nothing
        self._files: dict[Path, dict[str, Any] | None] = {}

    def _read(self, path: Path) -> dict[str, Any]:
        if path not in self._files:
            self._files[path] = _read_json(path)
        return self._files[path] or {}

    def get(self, registry: str, repository: str = "") -> Credential | None:
        key = (registry, repository)
        if key not in self._cache:
            self._cache[key] = self._find(registry, repository)
        return self._cache[key]

    def _helper(self, helper: str, registry: str) -> Credential | None:
        result = run_helper(helper, registry)
        if result.problem:
            self.problems[registry] = result.problem
            log.warning("%s: %s; continuing without its credentials", registry, result.problem)
        return result.credential

    def problem(self, registry: str) -> str:
        """Why credentials for ``registry`` may be missing (a broken helper), or ''."""
        return self.problems.get(registry, "")

    def source(self, registry: str, repository: str = "") -> str:
        """Where the credential for ``registry`` came from, or every place lockman looked for one.

        Bots run lockman with a trimmed environment (Renovate passes on HOME and PATH but not
        DOCKER_CONFIG or REGISTRY_AUTH_FILE), so an authentication error says which files and
        credential helpers it asked, in order.
        """
        found = self._sources.get((registry, repository))
        if found:
            return f"from {found}"
        looked = self._looked.get((registry, repository))
        if looked is None:
            looked = [f.describe() for f in auth_files()]
        return "looked in " + ", ".join(looked)

    def _find(self, registry: str, repository: str) -> Credential | None:
        looked: list[str] = []
        cred, source = self._search(registry, repository, looked)
        where = f"{registry}/{repository}" if repository else registry
        if cred is None:
            self._looked[(registry, repository)] = looked
            log.debug("%s: no credentials found; anonymous", where)
        else:
            self._sources[(registry, repository)] = source
            kind = "identity token" if cred.identity_token else "username and password"
            log.debug("%s: %s from %s", where, kind, source)
        return cred

    def _search(self, registry: str, repository: str, looked: list[str]) -> tuple[Credential | None, str]:
        """The first credential in :func:`auth_files` order; ``looked`` gets every place asked."""
        for f in auth_files():
            data = self._read(f.path)
            if f.legacy:
                looked.append(f.describe())
                cred = _lookup_auths(data, registry, "")
                if cred:
                    return cred, str(f.path)
                continue
            helper = _helper_for(data.get("credHelpers"), registry)
            if helper:  # this file names the helper for the host: docker asks only it
                where = f"docker-credential-{helper} ({f.path} credHelpers)"
                looked.append(where)
                cred = self._helper(helper, registry)
                if cred:
                    return cred, where
                continue
            store = data.get("credsStore")
            if isinstance(store, str) and store:
                where = f"docker-credential-{store} ({f.path} credsStore)"
                looked.append(where)
                cred = self._helper(store, registry)
                if cred:
                    return cred, where
            looked.append(f.describe())
            cred = _lookup_auths(data.get("auths"), registry, repository)
            if cred:
                return cred, f"{f.path} auths"
        return None, ""
