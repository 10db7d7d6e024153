"""Reports: the documented JSON schema, the Markdown PR body, commit messages, and lock diffs."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from lockman import report
from lockman.console import use_colour
from lockman.model import lockfile
from lockman.model.lockfile import LockedImage, LockedPlatform, Lockfile
from lockman.progress import progress
from tests.support.docs_schema import REPORTS, conforms, documented_json
from tests.support.paths import ROOT


def d(c: str) -> str:
    return "sha256:" + c * 64


def rust(digest: str, platforms: tuple[LockedPlatform, ...] = ()) -> LockedImage:
    return LockedImage("rust", "1.70", digest, source="container.image", platforms=platforms)


OLD = Lockfile(
    (
        rust(
            d("a"),
            (
                LockedPlatform("linux", "amd64", d("1")),
                LockedPlatform("linux", "arm64", d("2"), "v8"),
                LockedPlatform("linux", "arm", d("3"), "v7"),
            ),
        ),
        LockedImage("gone/img", "v1", d("b"), source='targets."x86_64-pc-windows-gnu".container.image'),
        LockedImage("same", "1", d("c")),
    )
)
NEW = Lockfile(
    (
        rust(
            d("e"),
            (
                LockedPlatform("linux", "amd64", d("1")),
                LockedPlatform("linux", "arm64", d("4"), "v8"),
                LockedPlatform("linux", "riscv64", d("5")),
            ),
        ),
        LockedImage("ghcr.io/cross-rs/aarch64-unknown-linux-gnu", "latest", d("f")),
        LockedImage("same", "1", d("c")),
    )
)


def test_diff_of_two_locks_added_removed_and_platforms() -> None:
    ups = report.image_updates(OLD, NEW)
    assert [(u.display, u.kind) for u in ups] == [
        ("ghcr.io/cross-rs/aarch64-unknown-linux-gnu:latest", "added"),
        ("gone/img:v1", "removed"),
        ("rust:1.70", "updated"),
    ]
    assert ups[1].source == 'targets."x86_64-pc-windows-gnu".container.image'
    assert ups[2].platforms_changed == (
        report.PlatformChange("linux/arm/v7", d("3"), None),
        report.PlatformChange("linux/arm64/v8", d("2"), d("4")),
        report.PlatformChange("linux/riscv64", None, d("5")),
    )
    assert report.image_updates(OLD, OLD) == ()
    # a platform list change alone (same index digest) is still reported
    only = report.image_updates(
        Lockfile((rust(d("a")),)), Lockfile((rust(d("a"), (NEW.images[0].platforms[0],)),))
    )
    assert only[0].kind == "platforms"


def test_json_matches_the_documented_example() -> None:
    rep = report.UpdateReport(report.image_updates(OLD, NEW), "xcargo.lock", ("xcargo.lock",))
    real = json.loads(report.render_update(rep, "json"))
    documented = documented_json("update")
    conforms(real, documented)
    assert [u["name"] for u in real["updates"]] == [
        "ghcr.io/cross-rs/aarch64-unknown-linux-gnu",
        "gone/img",
        "rust",
    ]
    assert real["updates"][0]["old_digest"] is None and real["updates"][1]["new_digest"] is None
    assert real["updates"][2]["platforms_changed"][1] == {
        "platform": "linux/arm64/v8",
        "old_digest": d("2"),
        "new_digest": d("4"),
    }
    assert real["commit_message"].startswith("chore(deps): update 3 container image digests\n\n")
    empty = json.loads(report.render_update(report.UpdateReport((), "x/xcargo.lock"), "json"))
    assert empty == {
        "updates": [],
        "changed_files": [],
        "lockfile": "x/xcargo.lock",
        "commit_message": None,
        "kept_pins": [],
    }
    # the documented example is itself consistent with the renderer
    one = report.UpdateReport(
        (
            report.ImageUpdate(
                "rust",
                "1.70",
                documented["updates"][0]["old_digest"],
                documented["updates"][0]["new_digest"],
                "container.image",
            ),
        ),
        "xcargo.lock",
    )
    assert one.commit_message == documented["commit_message"]


def test_verify_json_matches_the_documented_example() -> None:
    rep = report.VerifyReport(
        "xcargo.lock",
        False,
        (
            report.VerifiedImage("rust", "1.70", d("a"), "container.image"),
            report.VerifiedImage("ok", "1", d("b")),
        ),
        (report.VerifyProblem("not-served", "rust:1.70", "rust:1.70: gone"),),
    )
    real = json.loads(report.render_verify(rep, "json"))
    conforms(real, documented_json("verify"))
    assert real["ok"] is False
    assert [(i["name"], i["ok"], i["problems"]) for i in real["images"]] == [
        ("rust", False, ["not-served"]),
        ("ok", True, []),
    ]
    assert {p["kind"] for p in documented_json("verify")["problems"]} <= set(report.PROBLEM_KINDS)
    kinds_paragraph = REPORTS.read_text().split("with a machine-readable `kind`:", 1)[1].split("\n\n")[0]
    undocumented = [k for k in report.PROBLEM_KINDS if f"`{k}`" not in kinds_paragraph]
    assert undocumented == [], f"docs/reports.md's list of problem kinds lacks {undocumented}"
    with pytest.raises(AssertionError, match="undocumented problem kind"):
        report.VerifyProblem("made-up", "x:1", "x")
    assert real["images"][0]["signatures"] is None  # no policy covered it
    # a signature verdict (and any later per-image result) lands on the image object
    signed = report.VerifiedImage("s", "1", d("c"), signatures={"verified": True}, extra={"later": 1})
    out = report.verify_json(report.VerifyReport("l", False, (signed,), (), signed=1))
    conforms(out, documented_json("verify") | {"images": [documented_json("verify")["images"][0] | {"later": 0}]})
    assert out["images"][0]["signatures"] == {"verified": True} and out["ok"] is True
    assert report.verify_text(report.VerifyReport("l", False, (signed,), (), signed=1)).endswith(
        ", 1 signed)"
    )


def test_markdown_pr_body() -> None:
    md = report.render_update(report.UpdateReport(report.image_updates(OLD, NEW), "xcargo.lock"), "markdown")
    assert "| Image | Tag | Change |\n|---|---|---|\n" in md
    assert "| rust | 1.70 | `aaaaaaa` → `eeeeeee` |" in md
    assert "| ghcr.io/cross-rs/aarch64-unknown-linux-gnu | latest | added `fffffff` |" in md
    assert "| gone/img | v1 | removed (was `bbbbbbb`) |" in md
    assert "same" not in md  # only images that changed
    platforms = md.split("### Platform changes", 1)[1]
    assert "| rust:1.70 | linux/arm64/v8 | `2222222` → `4444444` |" in platforms
    assert "| rust:1.70 | linux/arm/v7 | removed (was `3333333`) |" in platforms
    assert "| rust:1.70 | linux/riscv64 | added `5555555` |" in platforms
    assert "linux/amd64" not in md  # unchanged platform
    none = report.render_update(report.UpdateReport((), "xcargo.lock"), "markdown")
    assert "No container image digests changed" in none and "|" not in none


def test_commit_messages() -> None:
    up = report.ImageUpdate("rust", "1.70", d("a"), "sha256:e4f5a6b" + "0" * 57, "container.image")
    assert report.commit_message([up]) == "chore(deps): update rust:1.70 digest to e4f5a6b"
    added = report.ImageUpdate("x/y", "v1", None, d("f"), "")
    assert report.commit_message([added]) == "chore(deps): lock x/y:v1 at fffffff"
    assert report.commit_message([]) is None
    several = report.commit_message([up, added])
    assert several is not None
    title, _, body = several.partition("\n\n")
    assert title == "chore(deps): update 2 container image digests"
    assert body.splitlines() == ["- update rust:1.70 digest to e4f5a6b", "- lock x/y:v1 at fffffff"]


def test_text_report_colour_only_when_asked() -> None:
    rep = report.UpdateReport(report.image_updates(OLD, NEW), "xcargo.lock")
    plain = report.update_text(rep)
    assert "\x1b[" not in plain
    assert f"rust:1.70  {d('a')[:19]} → {d('e')[:19]}" in plain
    assert f"    linux/arm64/v8  {d('2')[:19]} → {d('4')[:19]}" in plain
    assert "gone/img:v1  sha256:bbbbbbbbbbbb → (removed)" in plain
    assert "\x1b[32m" in report.update_text(rep, colour=True)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_needs_a_terminal_and_no_NO_COLOR(monkeypatch: pytest.MonkeyPatch) -> None:
    assert use_colour(_Tty()) is True
    assert use_colour(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_colour(_Tty()) is False


def test_progress_bar_only_on_a_terminal() -> None:
    quiet = io.StringIO()
    with progress(3, "resolving images", quiet) as tick:
        tick()
    assert quiet.getvalue() == ""
    tty = _Tty()
    with progress(2, "resolving images", tty) as tick:
        tick()
        tick()
    assert "resolving images" in tty.getvalue()


def test_lockfile_round_trip_feeds_diff(tmp_path: Path) -> None:
    (tmp_path / "a.lock").write_text(lockfile.dumps(OLD))
    again = lockfile.loads((tmp_path / "a.lock").read_text())
    assert report.image_updates(again, NEW) == report.image_updates(OLD, NEW)


def test_renovate_preset_regex_reads_xcargo_images() -> None:
    cfg = json.loads((ROOT / "renovate" / "xcargo.json").read_text())
    (task,) = [r["postUpgradeTasks"] for r in cfg["packageRules"] if "postUpgradeTasks" in r and "matchFileNames" in r]
    assert "xcargo.lock" in task["fileFilters"]
    # exactly the name:tag the branch bumped (update NAME:TAG), not every tag of the image
    assert task["commands"] == ["lockman update --config {{{packageFile}}} {{{depName}}}:{{{newValue}}}"]
    pattern = re.compile(cfg["customManagers"][0]["matchStrings"][0].replace("(?<", "(?P<"))
    toml = (
        '[container]\nimage = "rust:1.70"  # c\n'
        '[targets."aarch64-unknown-linux-musl".container]\n'
        f"image = 'localhost:5000/team/musl:v1@{d('a')}'\n"
        '# image = "x;id:1"\nimage = "$(id)/x:1"\nimage = "x`id`:1"\n'  # shell syntax: not matched
    )
    found = [m.groupdict() for m in pattern.finditer(toml)]
    assert found == [
        {"depName": "rust", "currentValue": "1.70", "currentDigest": None},
        {"depName": "localhost:5000/team/musl", "currentValue": "v1", "currentDigest": d("a")},
    ]


# -- known vulnerabilities -----------------------------------------------------------------------


def _vuln_update(summary: str, package: str = "gradio", n: int = 1) -> report.ImageUpdate:
    from lockman.model.insight import Insight
    from lockman.model.vulns import Finding, Severity, VulnDiff

    found = tuple(
        Finding(f"GHSA-{i:04d}", ("CVE-2024-39236",), Severity.of("critical", 9.8, "CVSS_V3"), package,
                None, "4.36.1", None, summary)
        for i in range(n)
    )  # fmt: skip
    fixed = (Finding("CVE-2018-5407", (), Severity.of("medium", 4.7), "openssl", "1.0.2p", "1.0.2q", "1.0.2q"),)
    v = VulnDiff("compared", "linux/amd64", fixed, found, 2)
    return report.ImageUpdate("app", "v1", d("a"), d("b"), "container.image", insight=Insight(vulnerabilities=v))


HOSTILE = "**bold** [click](https://evil.example) <img src=x> @admin #1 \x1b]8;;https://evil\x07link\x1b]8;;\x07\n| x |"


def test_hostile_vulnerability_text_cannot_add_markup_links_or_escapes() -> None:
    from tests.support.markdown import gfm, visible

    up = _vuln_update(HOSTILE, package="p\x1b[2J|<b>")
    md = report.update_markdown(report.UpdateReport((up,), "xcargo.lock"))
    html = gfm(md)
    assert "evil.example" not in re.sub(r"\u2060", "", "".join(re.findall(r'href="([^"]*)"', html)))
    assert "<img" not in html and "<b>" not in html
    assert re.findall(r"<strong>[^<]*</strong>", html) == ["<strong>Known vulnerabilities (linux/amd64)</strong>"]
    assert "**bold** [click](https://evil.example)" in visible(html)  # shown as written
    # one table row per finding: the summary's line break and pipe add none
    rows = [ln for ln in md.splitlines() if ln.startswith("| introduced ")]
    table = html.split("Known vulnerabilities", 1)[1]
    assert len(rows) == 1 and table.count("<tr>") == 1 + 2  # header + introduced + fixed
    assert [r.count("<td>") for r in table.split("<tr>")[2:]] == [8, 8]  # no column added
    text = report.update_text(report.UpdateReport((up,), "xcargo.lock"))
    assert "\x1b" not in text and "\x07" not in text
    assert "introduced GHSA-0000 [CVE-2024-39236] (critical 9.8) p\\x1b[2J|<b> (none) → 4.36.1" in text
    data = json.loads(report.render_update(report.UpdateReport((up,), "xcargo.lock"), "json"))
    assert data["updates"][0]["insight"]["vulnerabilities"]["introduced"][0]["summary"] == HOSTILE


def test_vulnerability_lists_are_capped_worst_first_with_a_count_of_the_rest() -> None:
    up = _vuln_update("s", n=30)
    text = report.update_text(report.UpdateReport((up,), "l")).splitlines()
    assert text[1].strip() == "vulnerabilities (linux/amd64): fixes 1, introduces 30, 2 still present"
    assert sum(1 for ln in text if ln.strip().startswith(("introduced ", "fixed "))) == report.TEXT_VULNS
    assert text[-1].strip() == f"and {31 - report.TEXT_VULNS} more (see --format json)"
    md = report.update_markdown(report.UpdateReport((up,), "l"))
    assert sum(1 for ln in md.splitlines() if ln.startswith(("| introduced ", "| fixed "))) == report.MD_VULNS
    assert f"| … and {31 - report.MD_VULNS} more |" in md


def test_commit_message_says_how_many_known_vulnerabilities_it_fixes() -> None:
    up = _vuln_update("s")
    assert report.commit_message([up]) == (
        "chore(deps): update app:v1 digest to bbbbbbb (fixes 1 known vulnerability)"
    )
    two = report.commit_message([up, report.ImageUpdate("b", "1", d("a"), d("c"), "x")])
    assert two is not None and two.splitlines()[0] == (
        "chore(deps): update 2 container image digests (fixes 1 known vulnerability)"
    )
    assert report.commit_message([report.ImageUpdate("b", "1", d("a"), d("c"), "x")]) == (
        "chore(deps): update b:1 digest to ccccccc"
    )


def test_toolchain_comes_first_with_a_downgrade_flagged() -> None:
    from lockman.model.insight import Insight
    from lockman.model.toolchain import ToolchainChange

    tc = (ToolchainChange("glibc", "2.18", "2.29"), ToolchainChange("rust", "1.70.0", "1.69.0", True),
          ToolchainChange("gcc", "12", "12"))  # fmt: skip
    up = report.ImageUpdate("app", "v1", d("a"), d("b"), "x", insight=Insight(toolchain=tc))
    text = report.update_text(report.UpdateReport((up,), "l")).splitlines()
    assert text[1] == "    toolchain: glibc 2.18 → 2.29, rust 1.70.0 → 1.69.0 DOWNGRADE"
    md = report.update_markdown(report.UpdateReport((up,), "l"))
    section = md.split("#### app:v1", 1)[1].strip().splitlines()
    assert section[:5] == [
        "| Toolchain | Old | New |",
        "|---|---|---|",
        "| glibc | 2.18 | 2.29 |",
        "| rust | 1.70.0 | 1.69.0 **(downgrade)** |",
        "| gcc | 12 | (unchanged) |",
    ]
    same = report.ImageUpdate("app", "v1", d("a"), d("b"), "x", insight=Insight(toolchain=tc[2:]))
    assert report.update_text(report.UpdateReport((same,), "l")).splitlines()[1] == "    toolchain unchanged: gcc 12"


def test_tag_bumps_are_one_row_each_with_both_tags_and_digests() -> None:
    """Three images bumped by a bot: three bumps, not three removals and three additions (the
    commit message said "update 6 container image digests")."""
    old = Lockfile(
        (
            LockedImage("rust", "1.70", d("a"), source="container.image"),
            LockedImage("cross", "0.2.4", d("b")),
            LockedImage("tool", "1", d("c")),
            LockedImage("two", "1", d("1")),
            LockedImage("two", "2", d("2")),
        )
    )
    new = Lockfile(
        (
            LockedImage("rust", "1.71", d("e"), source="container.image"),
            LockedImage("cross", "0.2.5", d("f")),
            LockedImage("tool", "2", d("c")),  # a new tag at the same digest is still a bump
            LockedImage("two", "3", d("3")),  # two tags gone, one came: no guess
        )
    )
    ups = report.image_updates(old, new)
    bumps = [(u.name, u.old_tag, u.tag, u.old_digest, u.new_digest) for u in ups if u.kind == "bumped"]
    assert bumps == [
        ("cross", "0.2.4", "0.2.5", d("b"), d("f")),
        ("rust", "1.70", "1.71", d("a"), d("e")),
        ("tool", "1", "2", d("c"), d("c")),
    ]
    assert sorted((u.display, u.kind) for u in ups if u.name == "two") == [
        ("two:1", "removed"),
        ("two:2", "removed"),
        ("two:3", "added"),
    ]
    three = report.UpdateReport(tuple(u for u in ups if u.name != "two"), "xcargo.lock")
    message = three.commit_message
    assert message is not None
    assert message.splitlines()[0] == "chore(deps): update 3 container image digests"
    assert "- update rust from 1.70 to 1.71 (eeeeeee)" in message.splitlines()
    md = report.update_markdown(three)
    assert "| rust | 1.70 → 1.71 | `aaaaaaa` → `eeeeeee` |" in md
    text = report.update_text(three)
    assert f"rust  1.70 → 1.71  {d('a')[:19]} → {d('e')[:19]}" in text.splitlines()
    doc = json.loads(report.render_update(three, "json"))
    assert [(u["tag"], u["old_tag"]) for u in doc["updates"]] == [("0.2.5", "0.2.4"), ("1.71", "1.70"), ("2", "1")]
    assert report.image_updates(new, new) == ()
