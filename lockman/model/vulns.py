"""Known vulnerabilities of an image's packages: package URLs, OSV records, severity, the diff.

Pure: package URLs (from an SBOM) in, OSV queries out; OSV records (JSON the service or a
mirror sent) in, findings out. Everything read here is remote text, so each parser is
bounded and a record it cannot read becomes None (the caller notes it), never an exception.
Ids go into a URL path (``GET /v1/vulns/{id}``), so only ids matching a strict grammar are
kept.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, unquote

MAX_ALIASES = 16
MAX_TEXT = 200
MAX_PURL = 512

LEVELS = ("unknown", "none", "low", "medium", "high", "critical")
"""Severity levels, weakest first; ``unknown`` (no rating OSV gives) sorts below ``none``."""

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,99}")


def valid_id(text: object) -> bool:
    """An OSV id safe to put in a URL path and to show: letters, digits and ``._:+-``."""
    return isinstance(text, str) and _ID.fullmatch(text) is not None


def _clip(value: object, limit: int = MAX_TEXT) -> str:
    text = value if isinstance(value, str) else ""
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- package URLs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Purl:
    """A parsed package URL (``pkg:type/namespace/name@version?qualifiers#subpath``)."""

    type: str
    namespace: str
    name: str
    version: str
    qualifiers: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        path = "/".join(quote(p, safe="") for p in (*self.namespace.split("/"), self.name) if p)
        text = f"pkg:{self.type}/{path}"
        if self.version:
            text += "@" + quote(self.version, safe="+~:")
        if self.qualifiers:
            text += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in sorted(self.qualifiers.items()))
        return text


def parse_purl(text: object) -> Purl | None:
    """A package URL, or None when ``text`` is not one (too long, no type or name)."""
    if not isinstance(text, str) or len(text) > MAX_PURL or not text.startswith("pkg:"):
        return None
    try:
        text.encode("utf-8")  # a lone surrogate (JSON's "\udc80") is no package URL, and no URL
    except UnicodeEncodeError:
        return None
    rest = text[4:].split("#", 1)[0]
    rest, _, query = rest.partition("?")
    rest = rest.strip("/")
    path, at, version = rest.rpartition("@")
    if not at:
        path, version = rest, ""
    parts = path.split("/")
    if len(parts) < 2 or not parts[0] or not parts[-1]:
        return None
    kind = parts[0].lower()
    if not re.fullmatch(r"[a-z][a-z0-9.+-]{0,31}", kind):
        return None
    qualifiers: dict[str, str] = {}
    for pair in query.split("&") if query else ():
        key, eq, value = pair.partition("=")
        if eq and key and value:
            qualifiers[key.lower()] = unquote(value)
    return Purl(
        kind,
        "/".join(unquote(p) for p in parts[1:-1]),
        unquote(parts[-1]),
        unquote(version),
        qualifiers,
    )


def build_purl(kind: str, name: str, version: str, distro: tuple[str, str] | None) -> Purl | None:
    """A package URL for a package an SBOM names without one: its type (``deb``, ``apk``,
    ``rpm``, ``pypi``…), name and version, and for OS packages the SBOM's distribution
    (``("debian", "12")``)."""
    kind = kind.lower()
    if not name or not version or not re.fullmatch(r"[a-z][a-z0-9.+-]{0,31}", kind):
        return None
    try:
        (name + version).encode("utf-8")
    except UnicodeEncodeError:
        return None
    if kind in OS_TYPES:
        if distro is None:
            return None
        return Purl(kind, distro[0], name, version, {"distro": f"{distro[0]}-{distro[1]}"})
    return Purl(kind, "", name, version)


OS_TYPES = ("deb", "apk", "rpm")
ECOSYSTEMS = {
    "pypi": "PyPI",
    "npm": "npm",
    "cargo": "crates.io",
    "golang": "Go",
    "gem": "RubyGems",
    "nuget": "NuGet",
    "maven": "Maven",
    "composer": "Packagist",
    "hex": "Hex",
    "pub": "Pub",
}
"""OSV's ecosystem name for each package-URL type of a language ecosystem."""
DEBIAN_RELEASES = {"buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14"}
UBUNTU_RELEASES = {
    "bionic": "18.04",
    "focal": "20.04",
    "jammy": "22.04",
    "mantic": "23.10",
    "noble": "24.04",
    "oracular": "24.10",
    "plucky": "25.04",
}
SOURCE_QUALIFIERS = ("upstream", "source", "origin")
"""Where SBOM tools put a binary package's source package (syft, scalibr, Alpine's origin)."""


def _release(distro: str, prefix: str) -> str:
    """``debian-12`` / ``12`` / ``bookworm`` → ``12``; ``alpine-3.18.0`` / ``v3.18`` → ``3.18``."""
    d = distro.lower().removeprefix(prefix + "-").removeprefix(prefix).removeprefix("v")
    return DEBIAN_RELEASES.get(d) or UBUNTU_RELEASES.get(d) or d


def osv_package(p: Purl) -> dict[str, Any] | None:
    """The OSV query for one package (``{"package": …, "version": …}``), or None.

    Distribution packages are asked by name and ecosystem (``Debian:12``, ``Alpine:v3.18``,
    ``Ubuntu:22.04:LTS``): OSV's records carry the source package name (the ``upstream``
    qualifier SBOM tools write) and how OSV reads a package URL's ``distro`` depends on its
    spelling, so spelling the ecosystem out is what gives the same answer for every SBOM
    tool. Language packages are asked by ecosystem and name too; anything else by its package
    URL without qualifiers.
    """
    if not p.version:
        return None
    name = p.name
    upstream = next((p.qualifiers[q] for q in SOURCE_QUALIFIERS if p.qualifiers.get(q)), None)
    if p.type in ("deb", "apk") and upstream:
        name = re.split(r"[@ (]", upstream, maxsplit=1)[0] or name
    distro = p.qualifiers.get("distro", "")
    eco: str | None = None
    if p.type == "deb" and p.namespace.lower() == "debian":
        eco = f"Debian:{_release(distro, 'debian')}" if distro else "Debian"
    elif p.type == "deb" and p.namespace.lower() == "ubuntu" and distro:
        rel = _release(distro, "ubuntu")
        lts = re.fullmatch(r"\d*[02468]\.04", rel) is not None
        eco = f"Ubuntu:{rel}:LTS" if lts else f"Ubuntu:{rel}"
    elif p.type == "apk" and p.namespace.lower() == "alpine" and distro:
        rel = ".".join(_release(distro, "alpine").split(".")[:2])
        eco = f"Alpine:v{rel}"
    elif p.type in ECOSYSTEMS:
        eco = ECOSYSTEMS[p.type]
        if p.type == "maven" and p.namespace:
            name = f"{p.namespace}:{p.name}"
        elif p.namespace and p.type in ("npm", "golang", "composer"):
            name = f"{p.namespace}/{p.name}"
    if eco is not None:
        return {"package": {"name": name, "ecosystem": eco}, "version": p.version}
    bare = Purl(p.type, p.namespace, p.name, "", {})
    return {"package": {"purl": str(bare)}, "version": p.version}


# -- severity ------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Severity:
    """A rating: its level (``LEVELS``), the CVSS base score when one was computed, and where
    it came from (``CVSS_V3``, ``database``…)."""

    rank: int
    level: str
    score: float | None = None
    source: str = ""

    @classmethod
    def of(cls, level: str, score: float | None = None, source: str = "") -> Severity:
        level = level if level in LEVELS else "unknown"
        return cls(LEVELS.index(level), level, score, source)

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "score": self.score, "source": self.source}

    def __str__(self) -> str:
        return self.level if self.score is None else f"{self.level} {self.score:.1f}"


UNKNOWN = Severity.of("unknown")

_CVSS3_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_CVSS3_PR = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}


def _roundup(x: float) -> float:
    """CVSS v3.1's Roundup: the smallest number with one decimal that is >= x."""
    i = round(x * 100000)
    return i / 100000.0 if i % 10000 == 0 else (math.floor(i / 10000) + 1) / 10.0


def cvss3_score(vector: str) -> float | None:
    """The CVSS v3.0/v3.1 base score of a vector (``CVSS:3.1/AV:N/…``), or None if malformed."""
    parts = vector.strip().split("/")
    if not parts or parts[0] not in ("CVSS:3.0", "CVSS:3.1"):
        return None
    metrics: dict[str, str] = {}
    for part in parts[1:]:
        key, _, value = part.partition(":")
        if key in metrics:
            return None
        metrics[key] = value
    try:
        scope = metrics["S"]
        w = {k: _CVSS3_WEIGHTS[k][metrics[k]] for k in _CVSS3_WEIGHTS}
        pr = _CVSS3_PR[scope][metrics["PR"]]
    except KeyError:
        return None
    iss = 1 - (1 - w["C"]) * (1 - w["I"]) * (1 - w["A"])
    impact = 6.42 * iss if scope == "U" else 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    exploitability = 8.22 * w["AV"] * w["AC"] * pr * w["UI"]
    if impact <= 0:
        return 0.0
    total = impact + exploitability if scope == "U" else 1.08 * (impact + exploitability)
    return _roundup(min(total, 10.0))


def cvss4_score(vector: str) -> float | None:
    """The CVSS v4.0 base score of a vector, or None if malformed.

    v4 scores come from FIRST's table of macro-vector scores and an interpolation within each,
    not from a formula; Red Hat's ``cvss`` library implements that reference algorithm.
    """
    try:
        from cvss import CVSS4
        from cvss.exceptions import CVSSError
    except ImportError:  # pragma: no cover - a declared dependency; without it, v4 is unrated
        return None
    try:
        return float(CVSS4(vector.strip()).base_score)
    except (CVSSError, ValueError, KeyError, TypeError):
        return None


def level_of_score(score: float) -> str:
    """CVSS's qualitative rating of a base score."""
    if score == 0:
        return "none"
    return "low" if score < 4 else "medium" if score < 7 else "high" if score < 9 else "critical"


_WORDS = {
    "critical": "critical",
    "high": "high",
    "important": "high",
    "moderate": "medium",
    "medium": "medium",
    "low": "low",
    "negligible": "low",
    "unimportant": "low",
    "none": "none",
}


def _word(value: object) -> str | None:
    return _WORDS.get(value.strip().lower()) if isinstance(value, str) else None


def severity_of(record: Mapping[str, Any]) -> Severity:
    """The worst rating a record gives: a CVSS v3 or v4 vector's computed base score, else the
    database's own rating (``database_specific.severity``, per-package ratings, Debian's
    urgency, Ubuntu's priority); UNKNOWN when there is none."""
    found: list[Severity] = []
    sev = record.get("severity")
    for s in sev[:8] if isinstance(sev, list) else ():
        if not isinstance(s, dict) or not isinstance(s.get("score"), str):
            continue
        kind, text = s.get("type"), s["score"][:256]
        if kind == "CVSS_V3":
            score = cvss3_score(text)
            if score is not None:
                found.append(Severity.of(level_of_score(score), score, "CVSS_V3"))
        elif kind == "CVSS_V4":
            score = cvss4_score(text)
            if score is not None:
                found.append(Severity.of(level_of_score(score), score, "CVSS_V4"))
        elif kind == "Ubuntu" and _word(text):
            found.append(Severity.of(_word(text) or "unknown", None, "Ubuntu"))
    if found:
        return max(found)
    words = []
    db = record.get("database_specific")
    if isinstance(db, dict):
        words.append(_word(db.get("severity")))
    affected = record.get("affected")
    for a in affected[:64] if isinstance(affected, list) else ():
        for key in ("database_specific", "ecosystem_specific"):
            d = a.get(key) if isinstance(a, dict) else None
            if isinstance(d, dict):
                words += [_word(d.get("severity")), _word(d.get("urgency"))]  # urgency: Debian's
    rated = [Severity.of(w, None, "database") for w in words if w]
    return max(rated) if rated else UNKNOWN


# -- records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vuln:
    """The parts of one OSV record a report shows."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    severity: Severity
    fixed: Mapping[str, str]  # package name (lower case) → first fixed version OSV names

    def fixed_for(self, name: str, *more: str) -> str | None:
        for n in (name, *more):
            if n and n.lower() in self.fixed:
                return self.fixed[n.lower()]
        return None


def parse_record(obj: Any) -> Vuln | None:
    """An OSV record (``GET /v1/vulns/{id}``) → Vuln; None when it is not a readable record."""
    if not isinstance(obj, dict) or not valid_id(obj.get("id")):
        return None
    aliases = obj.get("aliases")
    names = tuple(a for a in (aliases if isinstance(aliases, list) else [])[:MAX_ALIASES] if valid_id(a))
    summary = obj.get("summary") if isinstance(obj.get("summary"), str) else obj.get("details")
    fixed: dict[str, str] = {}
    affected = obj.get("affected")
    for a in affected[:256] if isinstance(affected, list) else ():
        pkg = a.get("package") if isinstance(a, dict) else None
        name = pkg.get("name") if isinstance(pkg, dict) else None
        ranges = a.get("ranges") if isinstance(a, dict) else None
        if not isinstance(name, str) or not isinstance(ranges, list):
            continue
        for r in ranges[:16]:
            events = r.get("events") if isinstance(r, dict) and r.get("type") != "GIT" else None
            for e in events[:64] if isinstance(events, list) else ():
                if isinstance(e, dict) and isinstance(e.get("fixed"), str):
                    fixed.setdefault(name.lower()[:MAX_TEXT], _clip(e["fixed"], 128))
    return Vuln(obj["id"], names, _clip(summary), severity_of(obj), fixed)


def parse_batch_ids(result: Any, limit: int) -> tuple[list[str], str | None] | None:
    """One entry of ``querybatch``'s ``results``: (ids, next page token); None if malformed.

    At most ``limit`` ids are kept: a service that names millions costs a note, not memory.
    """
    if not isinstance(result, dict):
        return None
    vulns = result.get("vulns", [])
    if not isinstance(vulns, list):
        return None
    ids = [v["id"] for v in vulns[:limit] if isinstance(v, dict) and valid_id(v.get("id"))]
    token = result.get("next_page_token")
    return ids, token if isinstance(token, str) and 0 < len(token) <= 1024 else None


# -- comparing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Package:
    """One SBOM package that can be looked up: its name, version and package URL."""

    name: str
    version: str
    purl: str


@dataclass(frozen=True)
class Finding:
    """One vulnerability fixed or introduced by an update, in one package."""

    id: str
    aliases: tuple[str, ...]
    severity: Severity
    package: str
    old_version: str | None
    new_version: str | None
    fixed_version: str | None
    summary: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "aliases": list(self.aliases),
            "severity": self.severity.as_dict(),
            "package": self.package,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "fixed_version": self.fixed_version,
            "summary": self.summary,
        }


STATUSES = ("compared", "not-scanned", "unavailable")
"""``not-scanned``: a side has no SBOM (never "clean"); ``unavailable``: OSV could not be asked."""


@dataclass(frozen=True)
class VulnDiff:
    """Known vulnerabilities of one image's packages, old digest against new."""

    status: str
    platform: str = ""
    fixed: tuple[Finding, ...] = ()
    introduced: tuple[Finding, ...] = ()
    still_present: int = 0
    notes: tuple[str, ...] = ()
    requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "platform": self.platform,
            "fixed": [f.as_dict() for f in self.fixed],
            "introduced": [f.as_dict() for f in self.introduced],
            "still_present": self.still_present,
            "notes": list(self.notes),
            "requests": self.requests,
        }


def merge_platforms(diffs: Iterable[VulnDiff]) -> tuple[VulnDiff, ...]:
    """Platforms with the same result as one, named ``linux/amd64, linux/arm64``: an index whose
    platforms share an SBOM would otherwise say the same thing once per platform."""
    groups: dict[VulnDiff, list[str]] = {}
    for d in diffs:
        groups.setdefault(replace(d, platform="", requests=0), []).append(d.platform)
    return tuple(replace(d, platform=", ".join(p for p in ps if p)) for d, ps in groups.items())


def distinct(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """One finding per id (platforms fixing or introducing the same one count it once)."""
    seen: dict[str, Finding] = {}
    for f in findings:
        seen.setdefault(f.id, f)
    return tuple(seen.values())


def worst_first(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: (-f.severity.rank, -(f.severity.score or 0), f.id)))


def _versions(packages: Iterable[Package]) -> dict[str, str]:
    out: dict[str, set[str]] = {}
    for p in packages:
        out.setdefault(p.name, set()).add(p.version)
    return {k: ", ".join(sorted(v)) for k, v in out.items()}


def _upstream(purl: str) -> str:
    p = parse_purl(purl)
    source = next((p.qualifiers[q] for q in SOURCE_QUALIFIERS if p.qualifiers.get(q)), "") if p else ""
    return re.split(r"[@ (]", source, maxsplit=1)[0]


def diff(
    old: Iterable[Package],
    new: Iterable[Package],
    ids: Mapping[str, Iterable[str]],
    records: Mapping[str, Vuln],
    *,
    platform: str = "",
    notes: Iterable[str] = (),
    requests: int = 0,
) -> VulnDiff:
    """Fixed (known in an old package, in no new one), introduced (the reverse) and the count
    still present, from each package URL's vulnerability ids (``ids``) and the records read.

    A vulnerability is one id per image: fixed in one package and present in another is still
    present. Findings without a record (not fetched) carry the id and an unknown severity.
    """
    old, new = list(old), list(new)

    def where(pkgs: list[Package]) -> dict[str, Package]:
        found: dict[str, Package] = {}
        for p in sorted(pkgs, key=lambda p: (p.name, p.version)):
            for i in ids.get(p.purl, ()):
                found.setdefault(i, p)
        return found

    before, after = where(old), where(new)
    old_v, new_v = _versions(old), _versions(new)

    def finding(i: str, p: Package) -> Finding:
        r = records.get(i)
        if r is None:
            return Finding(i, (), UNKNOWN, p.name, old_v.get(p.name), new_v.get(p.name), None)
        fixed = r.fixed_for(p.name, _upstream(p.purl))
        versions = old_v.get(p.name), new_v.get(p.name)
        return Finding(i, r.aliases, r.severity, p.name, *versions, fixed, r.summary)

    fixed = worst_first(finding(i, p) for i, p in before.items() if i not in after)
    introduced = worst_first(finding(i, p) for i, p in after.items() if i not in before)
    still = sum(1 for i in after if i in before)
    return VulnDiff("compared", platform, fixed, introduced, still, tuple(notes), requests)


# -- policy --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VulnPolicy:
    """``[vulnerabilities]`` of lockman.toml: refuse a digest introducing a vulnerability at or
    above ``refuse`` unless its id (or an alias) is in ``accept``."""

    refuse: str | None = None  # a LEVELS name other than "unknown"; None: report only
    accept: frozenset[str] = frozenset()
    enabled: bool = True

    def refused(self, d: VulnDiff) -> tuple[Finding, ...]:
        if self.refuse is None:
            return ()
        floor = LEVELS.index(self.refuse)
        return tuple(
            f for f in d.introduced if f.severity.rank >= floor and not ({f.id, *f.aliases} & self.accept)
        )


def parse_policy(table: Any, where: str) -> VulnPolicy:
    """The ``[vulnerabilities]`` table; ValueError (with ``where``) for what means nothing."""
    if table is None:
        return VulnPolicy()
    if not isinstance(table, Mapping):
        raise ValueError(f"{where}: [vulnerabilities] must be a table")
    unknown = set(table) - {"refuse", "accept", "enabled"}
    if unknown:
        raise ValueError(f"{where}: [vulnerabilities] has unknown key {sorted(unknown)[0]!r}")
    refuse = table.get("refuse")
    choices = LEVELS[2:]
    if refuse is not None and (not isinstance(refuse, str) or refuse.lower() not in choices):
        raise ValueError(f"{where}: [vulnerabilities] refuse must be one of {', '.join(choices)}")
    accept = table.get("accept", [])
    if not isinstance(accept, list) or not all(isinstance(a, str) and valid_id(a) for a in accept):
        raise ValueError(f"{where}: [vulnerabilities] accept must be a list of vulnerability ids")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValueError(f"{where}: [vulnerabilities] enabled must be true or false")
    return VulnPolicy(refuse.lower() if isinstance(refuse, str) else None, frozenset(accept), enabled)
