"""What changed and what failed, rendered for people (text, Markdown) and for bots (JSON).

Pure: lockfile models in, strings out. The JSON shapes are a documented, stable interface
(docs/reports.md, "JSON output"): keys are only ever added, never renamed or removed, so consumers must
ignore keys they do not know. The Markdown is a pull-request body in the style Renovate users
know; the commit message doubles as a PR title.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from lockman.console import count, one_line
from lockman.model import lockfile
from lockman.model.digest import shorten
from lockman.model.insight import Insight, LayerChange, clip, package_kind
from lockman.model.lockfile import LockedImage, LockedPlatform, Lockfile
from lockman.model.reference import is_digest
from lockman.model.toolchain import ToolchainChange
from lockman.model.vulns import Finding, VulnDiff, distinct, merge_platforms

Format = Literal["text", "json", "markdown"]


@dataclass(frozen=True)
class PlatformChange:
    """One child of a multi-platform image that appeared, disappeared or moved."""

    platform: str
    old_digest: str | None
    new_digest: str | None


@dataclass(frozen=True)
class ImageUpdate:
    """One lock entry that appeared (old is None), disappeared (new is None) or moved."""

    name: str
    tag: str
    old_digest: str | None
    new_digest: str | None
    source: str
    platforms_changed: tuple[PlatformChange, ...] = ()
    kind_changed_to: str | None = None  # update --platform: the new pin's platform, "" = tag digest
    insight: Insight | None = None  # what changed inside the image (update; diff --insight)
    old_tag: str | None = None  # a tag bump (``1.70`` → ``tag``): the tag the lock had

    @property
    def display(self) -> str:
        return f"{self.name}:{self.tag}" if self.tag else self.name

    @property
    def tag_change(self) -> str:
        return f"{self.old_tag} → {self.tag}" if self.old_tag is not None else self.tag

    @property
    def kind(self) -> str:
        if self.old_tag is not None:
            return "bumped"
        if self.old_digest is None:
            return "added"
        if self.new_digest is None:
            return "removed"
        return "updated" if self.old_digest != self.new_digest else "platforms"


def _platform_map(platforms: Iterable[LockedPlatform]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in platforms:
        # An index may list one platform twice (e.g. different os.version): keep both digests.
        out[p.platform] = f"{out[p.platform]},{p.digest}" if p.platform in out else p.digest
    return out


def platform_changes(old: LockedImage | None, new: LockedImage | None) -> tuple[PlatformChange, ...]:
    before = _platform_map(old.platforms) if old else {}
    after = _platform_map(new.platforms) if new else {}
    changes = []
    for plat in sorted(set(before) | set(after)):
        a, b = before.get(plat), after.get(plat)
        if a != b:
            changes.append(PlatformChange(plat, a, b))
    return tuple(changes)


def image_updates(old: Lockfile | None, new: Lockfile | None) -> tuple[ImageUpdate, ...]:
    """Entries whose digest or platform list differs between two locks, sorted by name and tag."""
    before = old.by_key() if old else {}
    after = new.by_key() if new else {}
    bumps = lockfile.tag_bumps(old, new)
    updates = []
    for key in sorted(set(before) | set(after)):
        if key in before and key not in after and before[key] in bumps.values():
            continue  # shown with the tag it was bumped to
        a, b = before.get(key) or bumps.get(key), after.get(key)
        if key in bumps:
            assert a is not None and b is not None
            source = b.source or a.source
            updates.append(
                ImageUpdate(
                    key[0], key[1], a.digest, b.digest, source, platform_changes(a, b), old_tag=a.tag
                )
            )
            continue
        if (
            a is not None
            and b is not None
            and a.digest == b.digest
            and a.platforms == b.platforms
            and a.platform == b.platform
        ):
            continue
        source = (b.source if b else "") or (a.source if a else "")
        updates.append(
            ImageUpdate(
                key[0],
                key[1],
                a.digest if a else None,
                b.digest if b else None,
                source,
                platform_changes(a, b),
                b.platform if a is not None and b is not None and a.platform != b.platform else None,
            )
        )
    return tuple(updates)


def with_insight(
    updates: Iterable[ImageUpdate], insights: Mapping[tuple[str, str], Insight]
) -> tuple[ImageUpdate, ...]:
    """The updates, each carrying its insight when one was gathered."""
    from dataclasses import replace

    return tuple(replace(u, insight=insights.get((u.name, u.tag))) for u in updates)


@dataclass(frozen=True)
class KeptPin:
    """A pinned image whose tag moved, left at its pin (``update --repin`` moves it).
    ``unpinned_keys``: where the same name:tag is used bare, also kept at the pin (what a bot's
    branch that bumped the pin leaves; the branch owns it)."""

    name: str
    tag: str
    key: str
    pinned_digest: str
    tag_digest: str
    unpinned_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpdateReport:
    """The result of `update` (or `diff`): what moved and which files were written."""

    updates: tuple[ImageUpdate, ...]
    lockfile: str
    changed_files: tuple[str, ...] = ()
    kept_pins: tuple[KeptPin, ...] = ()

    @property
    def commit_message(self) -> str | None:
        return commit_message(self.updates)


# -- digests -------------------------------------------------------------------------------------


def short7(digest: str | None) -> str:
    """The 7 hex characters Renovate shows (``sha256:`` dropped); several digests joined by ``,``."""
    if not digest:
        return ""
    return ",".join(shorten(d, 7, prefix=False) for d in digest.split(","))


def short12(digest: str) -> str:
    return ",".join(shorten(d, 12) for d in digest.split(","))


# -- commit message ------------------------------------------------------------------------------


def _one_line(u: ImageUpdate) -> str:
    if u.kind == "bumped":
        return f"update {u.name} from {u.old_tag} to {u.tag} ({short7(u.new_digest)})"
    if u.kind == "added":
        return f"lock {u.display} at {short7(u.new_digest)}"
    if u.kind == "removed":
        return f"remove {u.display} from the lock"
    if u.kind == "platforms":
        return f"update {u.display} platform digests"
    return f"update {u.display} digest to {short7(u.new_digest)}"


def fixes(updates: Iterable[ImageUpdate]) -> int:
    """Known vulnerabilities the updates fix (those OSV was asked about)."""
    return sum(
        len(distinct(f for v in u.insight.vulnerability_results for f in v.fixed))
        for u in updates
        if u.insight is not None
    )


def _fixes_suffix(n: int) -> str:
    return f" (fixes {count(n, 'known vulnerability', 'known vulnerabilities')})" if n else ""


def commit_message(updates: Iterable[ImageUpdate]) -> str | None:
    """``chore(deps): update rust:1.70 digest to e4f5a6b``; a summary line plus a body for several.

    The first line is a good pull-request title; None when nothing changed. When the insight
    looked vulnerabilities up and the update fixes some, the line says how many.
    """
    updates = list(updates)
    if not updates:
        return None
    if len(updates) == 1:
        return f"chore(deps): {_one_line(updates[0])}{_fixes_suffix(fixes(updates))}"
    body = "\n".join(f"- {_one_line(u)}{_fixes_suffix(fixes([u]))}" for u in updates)
    title = f"update {count(len(updates), 'container image digest')}{_fixes_suffix(fixes(updates))}"
    return f"chore(deps): {title}\n\n{body}"


# -- JSON ----------------------------------------------------------------------------------------


def update_json(report: UpdateReport) -> dict[str, Any]:
    return {
        "updates": [
            {
                "name": u.name,
                "tag": u.tag,
                "old_tag": u.old_tag,
                "old_digest": u.old_digest,
                "new_digest": u.new_digest,
                "source": u.source,
                "platforms_changed": [
                    {"platform": p.platform, "old_digest": p.old_digest, "new_digest": p.new_digest}
                    for p in u.platforms_changed
                ],
                "insight": u.insight.as_dict() if u.insight is not None else None,
            }
            for u in report.updates
        ],
        "changed_files": list(report.changed_files),
        "lockfile": report.lockfile,
        "commit_message": report.commit_message,
        "kept_pins": [
            {
                "name": k.name,
                "tag": k.tag,
                "key": k.key,
                "pinned_digest": k.pinned_digest,
                "tag_digest": k.tag_digest,
                "unpinned_keys": list(k.unpinned_keys),
            }
            for k in report.kept_pins
        ],
    }


def dump_json(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False)


# -- text ----------------------------------------------------------------------------------------

_RED, _GREEN, _BOLD, _DIM = "31", "32", "1", "2"


def _c(code: str, text: str, colour: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour and text else text


def _arrow(old: str | None, new: str | None, colour: bool, fmt: Any = short12) -> str:
    a = _c(_RED, fmt(old), colour) if old else "(new)"
    b = _c(_GREEN, fmt(new), colour) if new else "(removed)"
    return f"{a} → {b}"


def update_text(report: UpdateReport, *, colour: bool = False) -> str:
    """One line per image (``name:tag  old → new``), one indented line per platform change."""
    lines = []
    for u in report.updates:
        name = _c(_BOLD, u.display, colour)
        if u.kind == "platforms" and u.kind_changed_to is not None:
            # Same digest, other kind: a single-platform image pinned as its platform, or back.
            now = f"platform pin ({u.kind_changed_to})" if u.kind_changed_to else "tag pin"
            lines.append(f"{name}  {short12(u.new_digest or '')} is now a {now}")
            continue
        if u.kind == "platforms":
            lines.append(f"{name}  platforms changed ({short12(u.new_digest or '')})")
        elif u.kind == "bumped":
            bump = f"{_c(_BOLD, u.name, colour)}  {u.tag_change}"
            lines.append(f"{bump}  {_arrow(u.old_digest, u.new_digest, colour)}")
        else:
            lines.append(f"{name}  {_arrow(u.old_digest, u.new_digest, colour)}")
        if u.kind_changed_to is not None:
            lines[-1] += f" (platform {u.kind_changed_to})" if u.kind_changed_to else " (tag digest)"
        if u.old_digest is not None and u.new_digest is not None and u.kind_changed_to is None:
            for p in u.platforms_changed:
                lines.append(f"    {p.platform}  {_arrow(p.old_digest, p.new_digest, colour)}")
        if u.insight is not None:
            lines += [f"    {line}" for line in toolchain_text(u.insight.toolchain, colour=colour)]
            lines += [f"    {line}" for line in insight_text(u.insight)]
            for v in merge_platforms(u.insight.vulnerability_results):
                lines += [f"    {line}" for line in vulns_text(v, colour=colour)]
    return "\n".join(lines)


# -- Markdown ------------------------------------------------------------------------------------


# The ASCII punctuation that opens markup inline in GFM: emphasis (``* _ ~``), code, links and
# images (``[ ]``: ``(`` or ``!`` alone opens nothing), HTML and autolinks (``< >``), entities
# (``&``), table cells (``|``), a heading's closing ``#``, GitHub's math (``$``) and ``\\``
# itself. Anything else (``( ) ; ? ! ' "``…) stays as written, readable in the PR's source.
_MD_PUNCTUATION = re.compile(r"([\\`*_\[\]<>#|~&$])")
# What opens a block only at the start of a line (a list item, a setext underline).
_MD_LINE_START = re.compile(r"^([+=-])(?=[ \t]|[\s=-]*$)|^(\d{1,9})([.)])(?=[ \t]|$)")
_MD_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# Where GitHub would turn plain text into a link: a URL's ``://`` (GFM: ``http``, ``https``,
# ``ftp``), ``www.``, an ``@`` (e-mail addresses, ``mailto:``/``xmpp:``, @mentions) and a ``#``
# (issue references). A backslash does not stop these (they are matched on the text, after
# escapes), so an invisible WORD JOINER goes in the middle: the same visible text, no link.
_MD_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?i:(?<=www)(?=\.))|(?<=[@#])")
_WORD_JOINER = "\u2060"


def md_text(text: str) -> str:
    """``text`` as literal Markdown inline text, safe in a table cell of a pull-request body.

    Only punctuation that could open markup is backslash-escaped (CommonMark renders ``\\x``
    as ``x``), so no emphasis, link, image, table pipe, HTML tag, ``<!--`` comment or mention can
    start; GFM's autolinks (``https://``, ``www.``, e-mail addresses) are broken by a zero-width
    word joiner; line breaks and other control characters are shown as ``\\uXXXX`` instead of
    ending the row.
    """
    text = _MD_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    text = _MD_PUNCTUATION.sub(r"\\\1", text)
    text = _MD_LINE_START.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", text)
    return _MD_AUTOLINK.sub(_WORD_JOINER, text)


def md_code(text: str) -> str:
    """``text`` as a Markdown code span: a fence longer than any backtick run inside it."""
    text = _MD_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_md = md_text


def _md_change(old: str | None, new: str | None) -> str:
    if old is None:
        return f"added `{short7(new)}`"
    if new is None:
        return f"removed (was `{short7(old)}`)"
    return f"`{short7(old)}` → `{short7(new)}`"


def update_markdown(report: UpdateReport) -> str:
    """A pull-request body: ``| Image | Tag | Change |`` for changed images, then platforms."""
    if not report.updates:
        return f"No container image digests changed in {md_code(report.lockfile)}.\n"
    lines = [
        f"This updates the container image digests locked in {md_code(report.lockfile)}.",
        "",
        "| Image | Tag | Change |",
        "|---|---|---|",
    ]
    for u in report.updates:
        change = (
            "platform digests changed" if u.kind == "platforms" else _md_change(u.old_digest, u.new_digest)
        )
        tag = f"{_md(u.old_tag)} → {_md(u.tag)}" if u.old_tag is not None else _md(u.tag)
        lines.append(f"| {_md(u.name)} | {tag} | {change} |")
    platform_rows = [
        f"| {_md(u.display)} | {_md(p.platform)} | {_md_change(p.old_digest, p.new_digest)} |"
        for u in report.updates
        if u.old_digest is not None and u.new_digest is not None
        for p in u.platforms_changed
    ]
    if platform_rows:
        lines += ["", "### Platform changes", "", "| Image | Platform | Change |", "|---|---|---|"]
        lines += platform_rows
    inspected = [u for u in report.updates if u.insight is not None]
    if inspected:
        lines += ["", "### What changed"]
        for u in inspected:
            assert u.insight is not None
            lines += ["", f"#### {_md(u.display)}", "", *toolchain_markdown(u.insight.toolchain)]
            lines += insight_markdown(u.insight)
            for v in merge_platforms(u.insight.vulnerability_results):
                lines += ["", *vulns_markdown(v)]
    lines += ["", "---", "Generated by lockman; `lockman verify` checks each digest against its registry."]
    return "\n".join(lines) + "\n"


def render_update(report: UpdateReport, fmt: Format, *, colour: bool = False) -> str:
    if fmt == "json":
        return dump_json(update_json(report))
    if fmt == "markdown":
        return update_markdown(report)
    return update_text(report, colour=colour)


# -- insight: what changed inside a moved image ---------------------------------------------------

MD_PACKAGES = 40
"""Package rows shown in Markdown per image; the JSON report lists them all."""
MD_NOTES = 5


def _term(text: str) -> str:
    """Registry text in a text report: one line, nothing that could steer a terminal."""
    return one_line(text)


def human_size(n: int) -> str:
    """Decimal units as docker prints them: 12.3 MB."""
    size = float(n)
    for unit in ("B", "kB", "MB"):
        if abs(size) < 1000:
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def _delta(old: int, new: int) -> str:
    d = new - old
    return "" if d == 0 else f" ({'+' if d > 0 else '-'}{human_size(abs(d))})"


def _layers(c: LayerChange) -> str:
    return f"{c.new} new, {c.shared} shared, {c.gone} gone"


def _value(field: str, value: str | None, esc: Callable[[str], str]) -> str:
    if value is None:
        return "(none)"
    if field == "base.digest" and is_digest(value):
        return short12(value)
    return esc(value)


def _sbom_counts(i: Insight) -> str:
    s = i.sbom
    assert s is not None
    return f"{s.count('added')} added, {s.count('removed')} removed, {s.count('changed')} changed"


def insight_text(i: Insight) -> list[str]:
    """At most two lines: the labels (base image first); size, layers, SBOM and notes."""
    out = []
    parts = []
    for f in i.fields:
        old, new = _value(f.field, f.old, _term), _value(f.field, f.new, _term)
        if f.field == "base.digest":
            name = f" {_term(i.base_name)}" if i.base_name else ""
            parts.append(f"base image{name} moved: {old} → {new}")
        else:
            parts.append(f"{f.field} {old} → {new}")
    if i.compare_url:
        parts.append(i.compare_url)
    if parts:
        out.append("; ".join(parts))
    parts = []
    for c in i.layers:
        where = f"{_term(c.platform)} " if c.platform else ""
        parts.append(f"{where}{human_size(c.old_size)} → {human_size(c.new_size)}, layers {_layers(c)}")
    if i.platforms_added:
        parts.append("platforms added: " + ", ".join(_term(p) for p in i.platforms_added))
    if i.platforms_removed:
        parts.append("platforms removed: " + ", ".join(_term(p) for p in i.platforms_removed))
    if i.sbom is not None:
        s = i.sbom
        text = f"SBOM ({s.format}): {_sbom_counts(i)}"
        if s.signature is not None:
            verdict = "verified" if s.signature.verified else "NOT verified"
            text += f" (attestation {verdict}: {_term(s.signature.detail)})"
        parts.append(text)
    if parts:
        out.append("; ".join(parts))
    if i.notes:  # on a line of their own while that keeps it to two lines
        note = "note: " + "; ".join(_term(n) for n in i.notes)
        out = [*out[:1], f"{out[1]}; {note}"] if len(out) == 2 else [*out, note]
    return out


def _md_value(field: str, value: str | None) -> str:
    if field == "base.digest" and value is not None and is_digest(value):
        return f"`{short7(value)}`"
    return _value(field, value, md_text)


def insight_markdown(i: Insight) -> list[str]:
    """A "What | Old | New" table (the base image first), packages in a collapsed list."""
    rows = []
    for f in i.fields:
        old, new = _md_value(f.field, f.old), _md_value(f.field, f.new)
        what = f.field
        if f.field == "base.digest":
            what = f"**Base image{' ' + md_text(i.base_name) if i.base_name else ''} moved**"
        if f.field == "revision" and i.compare_url:
            new += f" ([compare]({i.compare_url}))"
        rows.append(f"| {what} | {old} | {new} |")
    for c in i.layers:
        where = f" {md_text(c.platform)}" if c.platform else ""
        delta = _delta(c.old_size, c.new_size)
        rows.append(f"| size{where} | {human_size(c.old_size)} | {human_size(c.new_size)}{delta} |")
        rows.append(f"| layers{where} | | {_layers(c)} |")
    if i.platforms_added or i.platforms_removed:
        added = ", ".join(md_text(p) for p in i.platforms_added)
        removed = ", ".join(md_text(p) for p in i.platforms_removed)
        rows.append(f"| platforms | {removed and 'removed: ' + removed} | {added and 'added: ' + added} |")
    details: list[str] = []
    s = i.sbom
    if s is not None:
        new = f"{s.new_packages} packages: {_sbom_counts(i)}"
        if s.signature is not None:
            verdict = "verified" if s.signature.verified else "**not verified**"
            new += f"; attestation {verdict} ({md_text(s.signature.detail)})"
        rows.append(f"| SBOM ({s.format}) | {s.old_packages} packages | {new} |")
        if s.changes:
            details = ["", f"<details><summary>SBOM packages: {_sbom_counts(i)}</summary>", ""]
            details += ["| Package | Old | New |", "|---|---|---|"]
            for p in s.changes[:MD_PACKAGES]:
                old = md_text(p.old) if p.old is not None else f"({package_kind(p)})"
                new = md_text(p.new) if p.new is not None else f"({package_kind(p)})"
                details.append(f"| {md_text(p.name)} | {old} | {new} |")
            if len(s.changes) > MD_PACKAGES:
                more = len(s.changes) - MD_PACKAGES
                details.append(f"| … and {more} more | | the full list is in `--format json` |")
            details += ["", "</details>"]
    lines = ["| What | Old | New |", "|---|---|---|", *rows] if rows else []
    lines += details
    notes = [f"> note: {md_text(n)}" for n in i.notes[:MD_NOTES]]
    if len(i.notes) > MD_NOTES:
        notes.append(f"> and {len(i.notes) - MD_NOTES} more notes (see `--format json`)")
    if notes:
        lines += ["", *notes] if lines else notes
    return lines


# -- toolchain: what the update means for the binaries built in the image -------------------------


def _tool_version(v: str | None, esc: Callable[[str], str]) -> str:
    return esc(v) if v is not None else "(none)"


def toolchain_text(changes: Iterable[ToolchainChange], *, colour: bool = False) -> list[str]:
    """One line: the components that changed (old → new, a downgrade flagged), else the
    unchanged ones; nothing when the image names none."""
    changes = list(changes)
    moved = [c for c in changes if c.old != c.new]
    if not changes:
        return []
    if not moved:
        return ["toolchain unchanged: " + ", ".join(f"{c.component} {_term(c.new or '')}" for c in changes)]
    parts = []
    for c in moved:
        flag = " " + _c(_RED, "DOWNGRADE", colour) if c.downgrade else ""
        parts.append(f"{c.component} {_tool_version(c.old, _term)} → {_tool_version(c.new, _term)}{flag}")
    return ["toolchain: " + ", ".join(parts)]


def toolchain_markdown(changes: Iterable[ToolchainChange]) -> list[str]:
    """A "Toolchain | Old | New" table first in an image's section (a downgrade in bold)."""
    changes = list(changes)
    if not changes:
        return []
    rows = ["| Toolchain | Old | New |", "|---|---|---|"]
    for c in changes:
        new = _tool_version(c.new, md_text)
        if c.downgrade:
            new += " **(downgrade)**"
        elif c.old == c.new:
            new = "(unchanged)"
        rows.append(f"| {c.component} | {_tool_version(c.old, md_text)} | {new} |")
    return [*rows, ""]


# -- known vulnerabilities --------------------------------------------------------------------------

TEXT_VULNS = 5
"""Findings listed per image in text (worst first); the JSON report lists them all."""
MD_VULNS = 20


def _vuln_counts(v: VulnDiff) -> str:
    return f"fixes {len(v.fixed)}, introduces {len(v.introduced)}, {v.still_present} still present"


def _status(v: VulnDiff, esc: Callable[[str], str]) -> str | None:
    """The line for an image that was not compared, or None when it was."""
    why = f" ({esc(v.notes[0])})" if v.notes else ""
    if v.status == "not-scanned":
        return f"not scanned{why}"
    if v.status == "unavailable":
        return f"not checked: OSV unavailable{why}"
    return None


def _findings(v: VulnDiff) -> list[tuple[str, Finding]]:
    """Introduced then fixed, each worst first."""
    return [*(("introduced", f) for f in v.introduced), *(("fixed", f) for f in v.fixed)]


def _versions_text(f: Finding, esc: Callable[[str], str]) -> str:
    old = esc(f.old_version) if f.old_version is not None else "(none)"
    new = esc(f.new_version) if f.new_version is not None else "(removed)"
    return f"{old} → {new}"


def vulns_text(v: VulnDiff, *, colour: bool = False) -> list[str]:
    """A count line, then the worst findings (introduced first), capped with "and N more"."""
    where = f" ({_term(v.platform)})" if v.platform else ""
    status = _status(v, _term)
    if status is not None:
        return [f"vulnerabilities{where}: {status}"]
    lines = [f"vulnerabilities{where}: {_vuln_counts(v)}"]
    found = _findings(v)
    for kind, f in found[:TEXT_VULNS]:
        aliases = f" [{', '.join(f.aliases[:3])}]" if f.aliases else ""
        fix = f", fixed in {_term(f.fixed_version)}" if f.fixed_version and kind == "introduced" else ""
        label = _c(_RED if kind == "introduced" else _GREEN, kind, colour)
        lines.append(
            f"  {label} {f.id}{aliases} ({f.severity}) {_term(f.package)} {_versions_text(f, _term)}{fix}"
        )
    if len(found) > TEXT_VULNS:
        lines.append(f"  and {len(found) - TEXT_VULNS} more (see --format json)")
    if v.notes:
        lines.append("  note: " + "; ".join(_term(n) for n in v.notes[:MD_NOTES]))
    return lines


def vulns_markdown(v: VulnDiff) -> list[str]:
    """"Known vulnerabilities": counts, then a table worst first, capped with "and N more"."""
    where = f" ({md_text(v.platform)})" if v.platform else ""
    status = _status(v, md_text)
    if status is not None:
        return [f"**Known vulnerabilities{where}**: {status}"]
    lines = [f"**Known vulnerabilities{where}**: {_vuln_counts(v)}"]
    found = _findings(v)
    if found:
        lines += ["", "| | Vulnerability | Severity | Package | Old | New | Fixed in | Summary |"]
        lines.append("|---|---|---|---|---|---|---|---|")
        for kind, f in found[:MD_VULNS]:
            link = f"[{md_text(f.id)}](https://osv.dev/vulnerability/{f.id})"
            aliases = f" ({', '.join(md_text(a) for a in f.aliases[:3])})" if f.aliases else ""
            old = md_text(f.old_version) if f.old_version is not None else "—"
            new = md_text(f.new_version) if f.new_version is not None else "(removed)"
            fix = md_text(f.fixed_version) if f.fixed_version else ""
            lines.append(
                f"| {kind} | {link}{aliases} | {f.severity} | {md_text(f.package)} | {old} | {new} "
                f"| {fix} | {md_text(clip(f.summary, 120))} |"
            )
        if len(found) > MD_VULNS:
            more = len(found) - MD_VULNS
            lines.append(f"| … and {more} more | | | | | | | the full list is in `--format json` |")
    if v.notes:
        lines += ["", *(f"> note: {md_text(n)}" for n in v.notes[:MD_NOTES])]
    return lines


# -- verify --------------------------------------------------------------------------------------

# Every kind a problem can have; a consumer may switch on these.
PROBLEM_KINDS = (
    "no-lockfile",  # xcargo.lock does not exist
    "merge-conflict",  # xcargo.lock holds git conflict markers
    "missing",  # the config uses an image the lock lacks
    "stale",  # the lock has an image the config no longer uses
    "pin-mismatch",  # xcargo.toml pins a digest the lock disagrees with
    "edited-outside-lockman",  # an entry's digest no longer matches its details-from
    "not-served",  # the registry does not serve a locked (platform) digest
    "digest-mismatch",  # served bytes do not hash to the locked digest
    "platform-mismatch",  # the locked index no longer lists a locked platform
    "registry",  # the registry could not be asked (network, auth, HTTP error)
    "signature",  # a signature policy applies and no signature passed it
    "media-type-mismatch",  # a platform manifest is not what its index descriptor says
    "blob",  # verify --deep: a config or layer blob is missing, or its bytes are wrong
    "too-large",  # a locked manifest is over the size limit
    "unsupported-media-type",  # a locked manifest is of a type lockman refuses (Docker schema 1)
    "unverifiable",  # a locked manifest cannot be read (not JSON, malformed descriptors)
    "vulnerability",  # a known vulnerability lockman.toml's [vulnerabilities] refuses
)


@dataclass(frozen=True)
class VerifyProblem:
    kind: str
    image: str  # ``name:tag`` as in the lock, or "" for whole-file problems
    message: str

    def __post_init__(self) -> None:
        if self.kind not in PROBLEM_KINDS:  # consumers switch on kinds: each one is documented
            raise AssertionError(f"undocumented problem kind {self.kind!r}")


@dataclass(frozen=True)
class VerifiedImage:
    """One locked image that was checked; ``signatures`` is the signature verdict when a policy
    covered it (``ImageSignatures.as_dict()``), ``extra`` carries any later per-image results."""

    name: str
    tag: str
    digest: str
    source: str = ""
    signatures: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def display(self) -> str:
        return f"{self.name}:{self.tag}" if self.tag else self.name


@dataclass(frozen=True)
class MovedTag:
    """verify --report-moved: an unpinned tag that points elsewhere than the lock records."""

    name: str
    tag: str
    locked_digest: str
    tag_digest: str


@dataclass(frozen=True)
class VerifyReport:
    lockfile: str
    offline: bool
    images: tuple[VerifiedImage, ...]
    problems: tuple[VerifyProblem, ...]
    signed: int = 0  # images whose signatures a policy checked
    blobs: int | None = None  # verify --deep: blobs streamed and hashed (None: not deep)
    blob_bytes: int = 0
    moved: tuple[MovedTag, ...] | None = None  # verify --report-moved (None: not asked)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_json(report: VerifyReport) -> dict[str, Any]:
    by_image: dict[str, list[str]] = {}
    for p in report.problems:
        by_image.setdefault(p.image, []).append(p.kind)
    return {
        "ok": report.ok,
        "lockfile": report.lockfile,
        "offline": report.offline,
        "images": [
            {
                "name": i.name,
                "tag": i.tag,
                "digest": i.digest,
                "source": i.source,
                "ok": i.display not in by_image,
                "problems": by_image.get(i.display, []),
                "signatures": i.signatures,
                **i.extra,
            }
            for i in report.images
        ],
        "problems": [{"kind": p.kind, "image": p.image, "message": p.message} for p in report.problems],
        **({"deep": {"blobs": report.blobs, "bytes": report.blob_bytes}} if report.blobs is not None else {}),
        **({"moved": [vars(m) for m in report.moved]} if report.moved is not None else {}),
    }


def _registries(n: int) -> str:
    return "its registry" if n == 1 else "their registries"


def verify_text(report: VerifyReport, *, colour: bool = False) -> str:
    if not report.ok:  # the problems went to stderr, one line each; this says how many
        images = {p.image for p in report.problems if p.image}
        what = count(len(report.problems), "problem")
        what += f" in {count(len(images), 'image')}" if images else ""
        return f"{report.lockfile}: {_c(_RED, 'FAILED', colour)} ({what})"
    mode = (
        "offline: lock matches config"
        if report.offline
        else f"{count(len(report.images), 'image')} verified against {_registries(len(report.images))}"
    )
    if report.blobs is not None:
        mode += f"; {count(report.blobs, 'blob')}, {count(report.blob_bytes, 'byte')} hashed"
    if report.signed:
        mode += f", {report.signed} signed"
    return f"{report.lockfile}: {_c(_GREEN, 'ok', colour)} ({mode})"


def verify_markdown(report: VerifyReport) -> str:
    how = "offline (lock against config)" if report.offline else f"against {_registries(len(report.images))}"
    lock = md_code(report.lockfile)
    if report.ok:
        return f"**lockman verify**: all {count(len(report.images), 'image')} in {lock} verified {how}.\n"
    lines = [
        f"**lockman verify** found {count(len(report.problems), 'problem')} in {lock} ({how}):",
        "",
        "| Image | Problem | Details |",
        "|---|---|---|",
    ]
    for p in report.problems:
        lines.append(f"| {_md(p.image) or '—'} | `{p.kind}` | {_md(p.message)} |")
    return "\n".join(lines) + "\n"


def render_verify(report: VerifyReport, fmt: Format, *, colour: bool = False) -> str:
    if fmt == "json":
        return dump_json(verify_json(report))
    if fmt == "markdown":
        return verify_markdown(report)
    return verify_text(report, colour=colour)
