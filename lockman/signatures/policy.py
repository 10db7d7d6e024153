"""What a signature must prove: a ``Policy``, and the ``[[policy]]`` tables of lockman.toml.

A ``Policy`` is a ``KeyPolicy`` (``cosign verify --key``) or a ``KeylessPolicy`` holding an
``Identity`` (``--certificate-identity[-regexp]`` and ``--certificate-oidc-issuer[-regexp]``, both
required, so that "any Fulcio certificate" can never pass by omission) and GitHub workflow claims.
As in sigstore-python, policies are objects: a key with an identity, half an identity, a workflow
claim on a key or an invalid pattern cannot be built. ``build_policy`` reads cosign's flat options
(flags, lockman.toml) into one, refusing what means nothing as bad input.

Regular expressions must match the *whole* string (``re.fullmatch``). cosign uses Go's
``regexp.MatchString``, which is unanchored: ``--certificate-identity-regexp 'github.com/org/'``
also accepts ``https://evil.example/github.com/org/``. Anchoring is stricter, so lockman never
accepts what cosign would reject; write ``.*`` where a prefix or suffix is meant. Patterns use
Python ``re`` syntax, which agrees with Go RE2 for the usual identity patterns.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions
from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from lockman.errors import InputError, InvalidReference, VerificationError
from lockman.model.reference import DOCKER_HUB, parse
from lockman.signatures.fulcio import (
    _der_utf8,
    _extension_bytes,
    certificate_identities,
    certificate_issuer,
)
from lockman.signatures.keys import PublicKey, key_fingerprint, load_public_key_file
from lockman.signatures.trust import TrustedRoot, default_trusted_root

PREDICATE_TYPE_SHORTHANDS = {
    "slsaprovenance": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance02": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance1": "https://slsa.dev/provenance/v1",
    "link": "https://in-toto.io/Link/v1",
    "spdx": "https://spdx.dev/Document",
    "spdxjson": "https://spdx.dev/Document",
    "cyclonedx": "https://cyclonedx.org/bom",
    "vuln": "https://cosign.sigstore.dev/attestation/vuln/v1",
    "openvex": "https://openvex.dev/ns",
    "custom": "https://cosign.sigstore.dev/attestation/v1",
}
"""cosign verify-attestation's ``--type`` names; anything else must be a predicate type URI."""

_FULCIO = "1.3.6.1.4.1.57264.1."
GITHUB_WORKFLOW_OIDS: dict[str, tuple[str, str | None]] = {
    # name: (deprecated raw-string OID cosign matches, newer DER UTF8String OID or None)
    "trigger": (_FULCIO + "2", _FULCIO + "20"),
    "sha": (_FULCIO + "3", _FULCIO + "13"),
    "name": (_FULCIO + "4", None),
    "repository": (_FULCIO + "5", None),
    "ref": (_FULCIO + "6", _FULCIO + "14"),
}
"""Fulcio's GitHub Actions extensions, as ``--certificate-github-workflow-<name>`` reads them."""


def resolve_predicate_type(value: str) -> str:
    """A ``--type`` shorthand to its URI; URIs pass through; anything else is bad input."""
    if value in PREDICATE_TYPE_SHORTHANDS:
        return PREDICATE_TYPE_SHORTHANDS[value]
    if "://" not in value:
        names = ", ".join(sorted(PREDICATE_TYPE_SHORTHANDS))
        raise InputError(f"predicate type {value!r} is neither a URI nor one of {names}")
    return value


def github_workflow_value(cert: x509.Certificate, name: str) -> str | None:
    """The certificate's GitHub workflow ``name`` claim; both encodings must agree if present."""
    old_oid, new_oid = GITHUB_WORKFLOW_OIDS[name]
    raw = _extension_bytes(cert, ObjectIdentifier(old_oid))
    old = raw.decode("utf-8", "replace") if raw is not None else None
    der = _extension_bytes(cert, ObjectIdentifier(new_oid)) if new_oid else None
    new = _der_utf8(der) if der is not None else None
    if old is not None and new is not None and old != new:
        raise VerificationError(f"certificate GitHub workflow {name} extensions disagree: {old!r} != {new!r}")
    return old if old is not None else new


@dataclass(frozen=True)
class Exact:
    """The value must equal this string."""

    value: str


@dataclass(frozen=True)
class Regexp:
    """The whole value must match (``re.fullmatch``). Holds the compiled pattern, so an invalid
    expression cannot be built: :meth:`compile` refuses it as bad input."""

    pattern: re.Pattern[str]

    @classmethod
    def compile(cls, pattern: str, name: str) -> Regexp:
        """``name`` is the option the pattern came from, for the error."""
        try:
            return cls(re.compile(pattern))
        except re.error as exc:
            raise InputError(f"{name}: invalid regular expression {pattern!r} ({exc})") from exc


@dataclass(frozen=True)
class ExactAndRegexp:
    """Both ``--x`` and ``--x-regexp`` given: both must hold, as in cosign."""

    exact: Exact
    regexp: Regexp


Matcher = Exact | Regexp | ExactAndRegexp


def _parts(m: Matcher) -> tuple[Exact | Regexp, ...]:
    return (m.exact, m.regexp) if isinstance(m, ExactAndRegexp) else (m,)


def _holds(part: Exact | Regexp, value: str) -> bool:
    if isinstance(part, Exact):
        return value == part.value
    return part.pattern.fullmatch(value) is not None


def _shown(m: Matcher) -> str:
    """For ``describe``: the exact value, else ``~pattern``."""
    first = _parts(m)[0]
    return first.value if isinstance(first, Exact) else f"~{first.pattern.pattern}"


def matcher(exact: str | None, regexp: str | None, name: str) -> Matcher:
    """The matcher for an option pair (``certificate-identity`` and its ``-regexp``). Keyless
    needs one of each pair: a missing one is bad input."""
    if regexp:
        pattern = Regexp.compile(regexp, f"{name}-regexp")
        return ExactAndRegexp(Exact(exact), pattern) if exact else pattern
    if exact:
        return Exact(exact)
    raise InputError(
        "keyless verification needs both certificate-identity(-regexp) "
        "and certificate-oidc-issuer(-regexp); or give a key",
        subject="policy",
    )


@dataclass(frozen=True)
class Identity:
    """Who a keyless signer must be: the certificate's SAN and its OIDC issuer (sigstore-python's
    ``Identity(identity=, issuer=)``, with regular expressions as cosign allows). Both are
    required, so that "any Fulcio certificate" cannot pass by omission."""

    subject: Matcher
    issuer: Matcher

    def match(self, cert: x509.Certificate) -> tuple[str, str]:
        """Return (identity, issuer) of ``cert`` if they satisfy this identity, else raise.

        The identity is the first SAN that satisfies every subject constraint.
        """
        issuer = certificate_issuer(cert)
        if issuer is None:
            raise VerificationError("certificate has no OIDC issuer extension")
        for part in _parts(self.issuer):
            if _holds(part, issuer):
                continue
            if isinstance(part, Exact):
                raise VerificationError(f"certificate issuer {issuer!r} != expected {part.value!r}")
            raise VerificationError(f"certificate issuer {issuer!r} does not match {part.pattern.pattern!r}")
        sans = certificate_identities(cert)
        for san in sans:
            if all(_holds(part, san) for part in _parts(self.subject)):
                return san, issuer
        first = _parts(self.subject)[0]
        wanted = repr(first.value) if isinstance(first, Exact) else f"regexp {first.pattern.pattern!r}"
        found = ", ".join(repr(s) for s in sans) or "none"
        raise VerificationError(f"certificate identity {found} does not match {wanted}")


@dataclass(frozen=True)
class GithubWorkflow:
    """``--certificate-github-workflow-*``: claims the certificate's GitHub Actions extensions
    must equal (None: not checked). One field per claim, so an unknown claim cannot be named."""

    trigger: str | None = None
    sha: str | None = None
    name: str | None = None
    repository: str | None = None
    ref: str | None = None

    def claims(self) -> tuple[tuple[str, str], ...]:
        """``(name, value)`` of each claim required, in ``GITHUB_WORKFLOW_OIDS`` order."""
        return tuple((n, v) for n in GITHUB_WORKFLOW_OIDS if (v := getattr(self, n)) is not None)

    def match(self, cert: x509.Certificate) -> None:
        """Each claim required must equal the certificate's."""
        for name, want in self.claims():
            got = github_workflow_value(cert, name)
            if got != want:
                found = repr(got) if got is not None else "absent"
                raise VerificationError(f"certificate GitHub workflow {name} {found} != expected {want!r}")


def workflow_claims(pairs: Iterable[tuple[str, str]]) -> GithubWorkflow:
    """The claims from ``(name, value)`` pairs; an unknown name is bad input."""
    claims = dict(pairs)
    for name in claims:
        if name not in GITHUB_WORKFLOW_OIDS:
            raise InputError(f"unknown certificate-github-workflow-{name}", subject="policy")
    return GithubWorkflow(**claims)


@dataclass(frozen=True, kw_only=True)
class _Checks:
    """What both kinds of policy share: the trust anchors and the checks they relax or add."""

    trusted_root: TrustedRoot | None = None
    """None means ``root_source``'s root, else the shipped public-good one (``default_trusted_root()``)."""
    root_source: Callable[[], TrustedRoot] | None = dataclasses.field(default=None, compare=False, repr=False)
    """Called at the first use of the root, not before: the TUF fetch of the current public-good
    root happens only for a verification that reads it (a key with ``ignore_tlog`` never does)."""
    ignore_tlog: bool = False
    ignore_sct: bool = False
    predicate_type: str | None = None
    """Require an in-toto attestation of this predicate type (a URI, see
    ``resolve_predicate_type``) instead of a plain signature."""

    def root(self) -> TrustedRoot:
        """The trusted root in force."""
        if self.trusted_root is not None:
            return self.trusted_root
        return self.root_source() if self.root_source is not None else default_trusted_root()

    def _attestation(self) -> str:
        return f", attestation {self.predicate_type}" if self.predicate_type is not None else ""


@dataclass(frozen=True, kw_only=True)
class KeyPolicy(_Checks):
    """``cosign verify --key``: signatures must verify with this key; certificates are ignored."""

    key: PublicKey

    def describe(self) -> str:
        """One line for reports: what the policy demands."""
        return f"key {key_fingerprint(self.key)}{self._attestation()}"


@dataclass(frozen=True, kw_only=True)
class KeylessPolicy(_Checks):
    """Keyless: signatures by Fulcio certificates of this identity (and these workflow claims)."""

    identity: Identity
    github_workflow: GithubWorkflow = GithubWorkflow()

    def describe(self) -> str:
        """One line for reports: what the policy demands."""
        who = f"identity {_shown(self.identity.subject)} issued by {_shown(self.identity.issuer)}"
        claims = "".join(f", workflow {k} {v}" for k, v in self.github_workflow.claims())
        return who + claims + self._attestation()

    def match_identity(self, cert: x509.Certificate) -> tuple[str, str]:
        """Return (identity, issuer) of ``cert`` if the identity and workflow claims hold, else raise."""
        found = self.identity.match(cert)
        self.github_workflow.match(cert)
        return found


Policy = KeyPolicy | KeylessPolicy
"""Verification requirements for one image: a key, or a keyless identity; never both, never
neither (sigstore-python's policies are objects too, so a meaningless one cannot be built)."""


def build_policy(
    *,
    key: PublicKey | None = None,
    certificate_identity: str | None = None,
    certificate_identity_regexp: str | None = None,
    certificate_oidc_issuer: str | None = None,
    certificate_oidc_issuer_regexp: str | None = None,
    trusted_root: TrustedRoot | None = None,
    ignore_tlog: bool = False,
    ignore_sct: bool = False,
    predicate_type: str | None = None,
    github_workflow: Sequence[tuple[str, str]] = (),
) -> Policy:
    """A policy from cosign's flat options (flags, ``[[policy]]`` keys); a combination that
    means nothing is bad input (``subject="policy"``)."""
    checks: dict[str, Any] = dict(trusted_root=trusted_root, ignore_tlog=ignore_tlog, ignore_sct=ignore_sct)
    if predicate_type is not None:
        checks["predicate_type"] = resolve_predicate_type(predicate_type)
    identity = (certificate_identity, certificate_identity_regexp)
    issuer = (certificate_oidc_issuer, certificate_oidc_issuer_regexp)
    if key is not None:
        if any(identity + issuer):
            raise InputError("give either a key or certificate identity/issuer, not both", subject="policy")
        return _keyed(KeyPolicy(key=key, **checks), workflow_claims(github_workflow))
    who = Identity(matcher(*identity, "certificate-identity"), matcher(*issuer, "certificate-oidc-issuer"))
    return KeylessPolicy(identity=who, github_workflow=workflow_claims(github_workflow), **checks)


def _keyed(policy: KeyPolicy, workflow: GithubWorkflow) -> KeyPolicy:
    """Workflow claims are read from a Fulcio certificate: with a key there is none."""
    if workflow.claims():
        raise InputError(
            "certificate-github-workflow-* needs keyless verification, not a key", subject="policy"
        )
    return policy


def override(
    policy: Policy,
    *,
    trusted_root: TrustedRoot | None = None,
    ignore_tlog: bool = False,
    ignore_sct: bool = False,
    predicate_type: str | None = None,
    github_workflow: Sequence[tuple[str, str]] = (),
) -> Policy:
    """``policy`` with the command line's modifiers on top: each one given replaces the rule's
    (None, False and () leave it); workflow claims on a key policy are bad input."""
    changes: dict[str, Any] = {}
    if ignore_tlog:
        changes["ignore_tlog"] = True
    if ignore_sct:
        changes["ignore_sct"] = True
    if trusted_root is not None:
        changes["trusted_root"] = trusted_root
    if predicate_type is not None:
        changes["predicate_type"] = resolve_predicate_type(predicate_type)
    if not github_workflow:
        return replace(policy, **changes)
    workflow = workflow_claims(github_workflow)
    if isinstance(policy, KeyPolicy):
        return replace(_keyed(policy, workflow), **changes)
    return replace(policy, github_workflow=workflow, **changes)


@dataclass(frozen=True)
class PolicyRule:
    """One ``[[policy]]`` table: the glob patterns it covers and the policy they get."""

    images: tuple[str, ...]
    policy: Policy

    def matches(self, image_name: str) -> bool:
        """Glob match on the name as written, or on it without ``:tag`` / ``@digest``; and, as
        containers/image policy scopes and Sigstore's policy-controller do, on the normalised name.

        Normalised, ``rust:1.70``, ``docker.io/rust:1.70`` and ``index.docker.io/library/rust:1.70``
        are all ``docker.io/library/rust:1.70``, and a pattern is read the same way (``rust*`` is
        ``docker.io/library/rust*``), so no spelling of an image escapes a rule written in another.
        The as-written match is kept so that a rule never covers less than its text says.

        The registry host compares case-insensitively (``LOCALHOST:5000/x`` is
        ``localhost:5000/x``), and only ``*`` and ``?`` are wildcards: ``[::1]:5000/*`` means
        the IPv6 host literally, not a character class.
        """
        name = _fold_host(image_name)
        written = {name, _repository(name)}
        if any(_glob(_fold_host(p)).fullmatch(c) for c in written for p in self.images):
            return True
        normal = _normalised_names(image_name)
        patterns = [q for p in self.images for q in _normalised_patterns(p)]
        return any(_glob(q).fullmatch(c) for c in normal for q in patterns)


def _normalised_names(image_name: str) -> set[str]:
    """``image_name`` normalised (``docker.io/library/rust``), with and without tag and digest."""
    try:
        ref = parse(image_name, default_tag=None)
    except InvalidReference:
        return set()  # not an image reference: only the as-written match applies
    out = {ref.name, str(ref)}
    if ref.tag is not None:
        out.add(f"{ref.name}:{ref.tag}")
    if ref.digest is not None:
        out.add(f"{ref.name}@{ref.digest}")
    return out


_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")


def _normalised_patterns(pattern: str) -> list[str]:
    """``pattern``'s Docker Hub spellings, read as a reference is (see :func:`lockman.model.reference.parse`).

    A first component with a wildcard before a ``/`` (``*/app``, ``docker*/app``) may be a host
    or not: it is matched as written against the normalised name (``*`` spans ``/``). A single
    path component under Docker Hub gets ``library/``; when it holds a wildcard (``docker.io/*``)
    it is also tried without, since ``*`` then stands for any namespace too. Any other host
    needs nothing here: its names normalise to themselves, which the as-written match already
    tries, and the Hub spelling this gives it (``docker.io/ghcr.io/...``) names no Hub repository.
    """
    first, sep, rest = pattern.partition("/")
    if sep and ("*" in first or "?" in first):
        return [_fold_host(pattern)]
    if not (sep and first.lower() in _HUB_HOSTS):
        rest = pattern
    if "/" in rest:
        return [f"{DOCKER_HUB}/{rest}"]
    library = f"{DOCKER_HUB}/library/{rest}"
    return [library, f"{DOCKER_HUB}/{rest}"] if "*" in rest else [library]


def _fold_host(name: str) -> str:
    """Lower-case the registry host of ``name`` (the rule of lockman.model.reference)."""
    first, sep, rest = name.partition("/")
    # No need to ask whether the first component is a host: one that is not (a Hub namespace)
    # has no upper case (an upper-case one is a host by docker's rule), so lower-casing it
    # changes nothing.
    return first.lower() + sep + rest if sep else name


def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` any run of characters, ``?`` one character; everything else literal."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.S)


def _repository(image_name: str) -> str:
    name = image_name.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


@dataclass(frozen=True)
class PolicySet:
    """The policies of a project, in file order; the first matching rule wins."""

    rules: tuple[PolicyRule, ...] = ()
    source: str = ""

    def policy_for(self, image_name: str) -> Policy | None:
        """The policy for ``image_name`` (as written in the project), or None if unsigned."""
        for rule in self.rules:
            if rule.matches(image_name):
                return rule.policy
        return None


_STRING_KEYS = {
    "key": "key",
    "certificate-identity": "certificate_identity",
    "certificate-identity-regexp": "certificate_identity_regexp",
    "certificate-oidc-issuer": "certificate_oidc_issuer",
    "certificate-oidc-issuer-regexp": "certificate_oidc_issuer_regexp",
    "trusted-root": "trusted_root",
    "predicate-type": "predicate_type",
}
_BOOL_KEYS = {"insecure-ignore-tlog": "ignore_tlog", "insecure-ignore-sct": "ignore_sct"}
_WORKFLOW_KEYS = {f"certificate-github-workflow-{n}": n for n in GITHUB_WORKFLOW_OIDS}
_ALL_KEYS = {"images", "type", *_STRING_KEYS, *_BOOL_KEYS, *_WORKFLOW_KEYS}


def _rule(table: Any, where: str, base: Path) -> PolicyRule:
    if not isinstance(table, dict):
        raise InputError(f"{where}: must be a table")
    unknown = sorted(set(table) - _ALL_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_ALL_KEYS))})")
    images = table.get("images")
    if not isinstance(images, list) or not images or not all(isinstance(i, str) and i for i in images):
        raise InputError(f"{where}: images must be a non-empty list of glob strings")
    args: dict[str, Any] = {}
    for toml_key, field in _STRING_KEYS.items():
        if toml_key in table:
            value = table[toml_key]
            if not isinstance(value, str) or not value:
                raise InputError(f"{where}: {toml_key} must be a non-empty string")
            args[field] = value
    if "type" in table:
        if "predicate_type" in args:
            raise InputError(f"{where}: give type or predicate-type, not both")
        if not isinstance(table["type"], str) or not table["type"]:
            raise InputError(f"{where}: type must be a non-empty string")
        args["predicate_type"] = table["type"]
    workflow = []
    for toml_key, name in _WORKFLOW_KEYS.items():
        if toml_key in table:
            if not isinstance(table[toml_key], str) or not table[toml_key]:
                raise InputError(f"{where}: {toml_key} must be a non-empty string")
            workflow.append((name, table[toml_key]))
    args["github_workflow"] = tuple(workflow)
    for toml_key, field in _BOOL_KEYS.items():
        if toml_key in table:
            if not isinstance(table[toml_key], bool):
                raise InputError(f"{where}: {toml_key} must be true or false")
            args[field] = table[toml_key]
    if "key" in args:
        try:
            args["key"] = load_public_key_file(base / args["key"])
        except InputError as exc:
            raise InputError(f"{where}: key: {exc}") from exc
    if "trusted_root" in args:
        try:
            args["trusted_root"] = TrustedRoot.from_file(base / args["trusted_root"])
        except InputError as exc:
            raise InputError(f"{where}: trusted-root: {exc}") from exc
    try:
        policy = build_policy(**args)
    except InputError as exc:
        said = exc.message if exc.subject == "policy" else str(exc)  # the rule names it better
        raise InputError(said, subject=where) from exc
    return PolicyRule(images=tuple(images), policy=policy)


def parse_policies(text: str, source: str, base: Path) -> PolicySet:
    """Parse the ``[[policy]]`` array of a lockman.toml text; other tables are ignored."""
    try:
        doc = tomlkit.parse(text).unwrap()
    except tomlkit.exceptions.ParseError as exc:
        raise InputError(f"{source}: invalid TOML ({exc})") from exc
    tables = doc.get("policy", [])
    if not isinstance(tables, Sequence) or isinstance(tables, str):
        raise InputError(f"{source}: policy must be an array of tables ([[policy]])")
    rules = tuple(_rule(t, f"{source}: [[policy]] #{i + 1}", base) for i, t in enumerate(tables))
    return PolicySet(rules=rules, source=source)


def load_policy_file(path: str | Path) -> PolicySet:
    """Read lockman.toml; key and trusted-root paths are relative to its directory."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read policy file ({exc})") from exc
    return parse_policies(text, str(p), p.parent)


def policy_for(policies: PolicySet, image_name: str) -> Policy | None:
    """Functional spelling of ``PolicySet.policy_for``."""
    return policies.policy_for(image_name)
