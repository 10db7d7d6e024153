"""Image references: the distribution reference grammar and Docker Hub normalisation.

Pure: no I/O. The grammar follows distribution/reference (v2.8) and the OCI distribution spec:

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path-component ( "/" path-component )*
    domain     := host [ ":" port ]
    tag        := [\\w][\\w.-]{0,127}
    digest     := "sha256:" 64 lowercase hex | "sha512:" 128 lowercase hex   (lockman.model.digest)

The first path component is a registry host only when it contains ``.`` or ``:`` or is
``localhost`` (docker's rule); otherwise the name lives on Docker Hub, where single-component
names get the ``library/`` prefix. Host names are case-insensitive (RFC 4343), so the registry is
lower-cased here, once: ``LOCALHOST:5000/x`` and ``localhost:5000/x`` are one registry to every
policy, ``blocked`` entry and credential lookup downstream. Only registered digest algorithms
are accepted: an unknown one could never be verified, so it is an error rather than something to
pass along.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lockman.errors import InvalidReference
from lockman.model.digest import Digest, digest_problem

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
MAX_NAME_LENGTH = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"

PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
DOMAIN_RE = re.compile(_DOMAIN)
TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_IMAGE_ID = re.compile(r"[a-f0-9]{64}|sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")


def validate_digest(digest: str, *, what: str = "digest") -> Digest:
    """``digest`` as a :class:`Digest` (registered algorithm, well-formed hex), else raise."""
    return Digest.parse(digest, what=what)


def is_digest(value: str) -> bool:
    return digest_problem(value) is None


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference.

    ``written`` keeps the name exactly as the user wrote it (without tag or digest): that is
    what the lockfile records, so a Renovate regex over xcargo.toml and xcargo.lock agree.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None
    written: str = ""

    @property
    def name(self) -> str:
        """Fully qualified repository name, e.g. ``docker.io/library/rust``."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """Host (and port) that serves the distribution API for this registry."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    def scope(self, action: str) -> str:
        """The token scope for ``action`` on this repository, as ggcr's ``Repository.Scope``:
        taken from the reference, so a repository with ``/blobs/`` in its name is still one name."""
        return repository_scope(self.repository, action)

    def with_digest(self, digest: str | None) -> Reference:
        return Reference(self.registry, self.repository, self.tag, digest, self.written)

    def with_tag(self, tag: str | None) -> Reference:
        return Reference(self.registry, self.repository, tag, self.digest, self.written)

    def __str__(self) -> str:
        s = self.name
        if self.tag is not None:
            s += f":{self.tag}"
        if self.digest is not None:
            s += f"@{self.digest}"
        return s

    def familiar(self) -> str:
        """The name as written, with tag and digest: what a user recognises in messages."""
        s = self.written or self.name
        if self.tag is not None:
            s += f":{self.tag}"
        if self.digest is not None:
            s += f"@{self.digest}"
        return s


def repository_scope(repository: str, action: str) -> str:
    """``repository:<name>:<action>``: the distribution token-scope grammar, written in one place."""
    return f"repository:{repository}:{action}"


def _split_domain(name: str) -> tuple[str | None, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        return first, rest
    return None, name


def parse(text: str, *, default_tag: str | None = "latest") -> Reference:
    """Parse ``text`` into a :class:`Reference`, normalising Docker Hub names.

    ``default_tag`` fills in the tag when neither tag nor digest is given (docker's ``latest``).
    Raises :class:`InvalidReference` naming the reference and the problem.
    """
    if not isinstance(text, str):
        raise InvalidReference(f"invalid reference {text!r}: not a string")
    if text == "":
        raise InvalidReference("invalid reference '': empty")
    if any(c.isspace() for c in text):  # leading, trailing or inside
        raise InvalidReference(f"invalid reference {_show(text)}: contains whitespace")

    if len(text) > 4 * MAX_NAME_LENGTH + 256:  # cheap guard before any regex: no valid reference is this long
        raise InvalidReference(f"invalid reference {_show(text)}: longer than any valid reference")
    if _IMAGE_ID.fullmatch(text):
        raise InvalidReference(
            f"invalid reference {_show(text)}: an image ID or bare digest is not an image name"
        )
    remainder, at, digest = text.partition("@")
    digest_value: str | None = None
    if at:
        if "@" in digest:
            raise InvalidReference(f"invalid reference {_show(text)}: more than one '@'")
        why = digest_problem(digest)
        if why is not None:
            raise InvalidReference(f"invalid reference {_show(text)}: {why}")
        digest_value = digest

    name, tag = remainder, None
    colon = remainder.rfind(":")
    if colon > remainder.rfind("/"):
        name, tag = remainder[:colon], remainder[colon + 1 :]
        if not TAG_RE.fullmatch(tag):
            why = "longer than 128 characters" if len(tag) > 128 else "not a valid tag"
            raise InvalidReference(f"invalid reference {_show(text)}: tag {_show(tag)} is {why}")

    if not name:
        raise InvalidReference(f"invalid reference {_show(text)}: missing repository name")

    domain, path = _split_domain(name)
    if domain is not None and (not DOMAIN_RE.fullmatch(domain) or not _valid_ipv6(domain)):
        raise InvalidReference(f"invalid reference {_show(text)}: invalid registry host {_show(domain)}")
    if not PATH_RE.fullmatch(path):
        if PATH_RE.fullmatch(path.lower()):  # so path has an upper-case letter
            raise InvalidReference(f"invalid reference {_show(text)}: repository name must be lowercase")
        raise InvalidReference(f"invalid reference {_show(text)}: invalid repository name {_show(path)}")

    registry = domain.lower() if domain is not None else DOCKER_HUB
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if len(path) > MAX_NAME_LENGTH:  # the qualified path (library/ included), as distribution/reference
        raise InvalidReference(
            f"invalid reference {_show(text)}: repository longer than {MAX_NAME_LENGTH} characters"
            f" once qualified ({registry}/{path[:20]}…)"
        )
    if tag is None and digest_value is None:
        tag = default_tag
    return Reference(registry, path, tag, digest_value, name)


def _valid_ipv6(domain: str) -> bool:
    """A bracketed host must be a real IPv6 address (``[1::2::3]`` is not), as regclient checks."""
    if not domain.startswith("["):
        return True
    import ipaddress

    try:
        ipaddress.IPv6Address(domain[1 : domain.index("]")])
    except ValueError:
        return False
    return True


def _show(text: str, limit: int = 100) -> str:
    """The reference quoted for a message, shortened: an absurd input must not flood the terminal."""
    return repr(text if len(text) <= limit else text[:limit] + "…")

