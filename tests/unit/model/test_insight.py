"""The pure half of insight: compare links, SBOM parsing and its bounds, rendering caps, verdicts."""

from __future__ import annotations

import base64
import json

import pytest

from lockman import report
from lockman.model import insight
from lockman.model.insight import ImageFacts, PlatformFacts, Sbom, SbomError

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("source", "old", "new", "url"),
    [
        ("https://github.com/acme/app", "aaa1", "bbb2", "https://github.com/acme/app/compare/aaa1...bbb2"),
        (
            "https://github.com/acme/app.git",
            "v1.0",
            "v1.1",
            "https://github.com/acme/app/compare/v1.0...v1.1",
        ),
        ("git@github.com:acme/app.git", "a", "b", "https://github.com/acme/app/compare/a...b"),
        ("https://gitlab.com/g/sub/p", "a", "b", "https://gitlab.com/g/sub/p/-/compare/a...b"),
        ("https://github.com/acme/app/tree/main", "a", "b", None),  # not a repository URL
        ("https://github.com/acme/app", "a", "a", None),  # nothing to compare
        ("https://github.com/acme/app", None, "b", None),
        ("https://evil.example/github.com/acme/app", "a", "b", None),
        ("https://github.com.evil.example/acme/app", "a", "b", None),
        ("https://github.com/acme/app", "a)[x](http://evil", "b", None),  # registry text stays out
        ("https://github.com/ac me/app", "a", "b", None),
        ("http://github.com/acme/app", "a", "b", None),  # only https links are built
    ],
)
def test_compare_url(source: str, old: str | None, new: str | None, url: str | None) -> None:
    assert insight.compare_url(source, old, new) == url


def test_spdx_cyclonedx_and_their_envelopes() -> None:
    spdx = {"spdxVersion": "SPDX-2.3", "packages": [{"name": "openssl", "versionInfo": "3.0"}, {"name": "x"}]}
    assert insight.parse_sbom(json.dumps(spdx).encode()).packages == {("openssl", "3.0"), ("x", "")}
    cdx = {
        "bomFormat": "CycloneDX",
        "components": [
            {"name": "a", "version": "1", "group": "g", "components": [{"name": "b", "version": "2"}]}
        ],
    }
    s = insight.parse_sbom(json.dumps(cdx).encode())
    assert (s.format, s.packages) == ("CycloneDX", {("g/a", "1"), ("b", "2")})
    statement = {"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://spdx.dev/Document/v2.3",
                 "subject": [], "predicate": spdx}  # fmt: skip
    assert insight.parse_sbom(json.dumps(statement).encode()).format == "SPDX"
    envelope = {"payloadType": "application/vnd.in-toto+json",
                "payload": base64.b64encode(json.dumps(statement).encode()).decode(), "signatures": []}  # fmt: skip
    assert insight.parse_sbom(json.dumps(envelope).encode()).packages == {("openssl", "3.0"), ("x", "")}
    with pytest.raises(SbomError, match="not an SBOM"):
        insight.parse_sbom(
            json.dumps(statement | {"predicateType": "https://slsa.dev/provenance/v1"}).encode()
        )
    with pytest.raises(SbomError, match="neither SPDX nor CycloneDX"):
        insight.parse_sbom(b'{"hello": 1}')
    with pytest.raises(SbomError, match="not valid JSON"):
        insight.parse_sbom(b"\xff\xfe")


def test_sbom_bounds_nesting_and_package_count() -> None:
    deep = b'{"bomFormat":"CycloneDX","components":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(SbomError, match="nested too deeply"):
        insight.parse_sbom(deep)
    # Nesting the parser survives is still only followed MAX_SBOM_DEPTH levels.
    comps: list = []
    node = {"bomFormat": "CycloneDX", "components": comps}
    for i in range(100):
        child: list = []
        comps.append({"name": f"p{i}", "version": "1", "components": child})
        comps = child
    assert len(insight.parse_sbom(json.dumps(node).encode()).packages) == insight.MAX_SBOM_DEPTH + 1
    many = {
        "spdxVersion": "SPDX-2.3",
        "packages": [{"name": f"p{i}", "versionInfo": "1"} for i in range(20_001)],
    }
    big = insight.parse_sbom(json.dumps(many).encode())
    assert big.truncated and len(big.packages) == insight.MAX_PACKAGES
    out = insight.compare(ImageFacts(sbom=big), ImageFacts(sbom=big))
    assert out.notes == (
        f"SBOM lists more than {insight.MAX_PACKAGES} packages; only the first were compared",
    )


def test_compare_orders_base_first_and_skips_the_duplicate_created() -> None:
    p = insight.OCI_PREFIX
    old = ImageFacts("2026-01-01", insight.oci_labels({p + "version": "1", p + "base.digest": "sha256:1", p + "created": "2026-01-01"}),
                     {"": PlatformFacts(("l1", "l2"), 30)})  # fmt: skip
    new = ImageFacts("2026-02-01", insight.oci_labels({p + "version": "2", p + "base.digest": "sha256:2", p + "created": "2026-02-01"}),
                     {"": PlatformFacts(("l1", "l3", "l4"), 50)})  # fmt: skip
    out = insight.compare(old, new)
    assert [f.field for f in out.fields] == ["base.digest", "version", "created"]
    assert out.base_moved is not None and out.notes == ()
    assert out.layers == (insight.LayerChange("", 30, 50, 2, 1, 1),)
    odd = insight.compare(old, ImageFacts("2026-02-01", {**new.labels, "created": "1999"}))
    assert ("image.created", "2026-01-01", "1999") in [(f.field, f.old, f.new) for f in odd.fields]
    one_sided = insight.compare(ImageFacts(sbom=Sbom("SPDX", frozenset(), "referrer")), ImageFacts())
    assert one_sided.notes == ("no SBOM found for the new digest; packages not compared",)


def test_markdown_caps_the_package_list_and_json_keeps_it_all() -> None:
    old = Sbom("SPDX", frozenset((f"p{i:02}", "1") for i in range(60)), "referrer")
    new = Sbom("SPDX", frozenset((f"p{i:02}", "2") for i in range(60)), "referrer")
    ins = insight.compare(ImageFacts(sbom=old), ImageFacts(sbom=new))
    up = report.ImageUpdate("rust", "1", D, "sha256:" + "b" * 64, "container.image", insight=ins)
    md = report.render_update(report.UpdateReport((up,), "xcargo.lock"), "markdown")
    rows = [ln for ln in md.split("<details>")[1].splitlines() if ln.startswith("| p")]
    assert (
        len(rows) == report.MD_PACKAGES and "| … and 20 more | | the full list is in `--format json` |" in md
    )
    data = json.loads(report.render_update(report.UpdateReport((up,), "xcargo.lock"), "json"))
    assert len(data["updates"][0]["insight"]["sbom"]["changed"]) == 60


def test_registry_text_in_insight_is_escaped_per_format() -> None:
    from lockman.model.insight import FieldChange, Insight

    evil = "1\x1b[2J\n| x | <img src=x> [l](http://evil)"
    ins = Insight((FieldChange("version", "0", evil),), notes=("n\x1b]8;;x\x07",))
    text = "\n".join(report.insight_text(ins))
    assert "\x1b" not in text and "\x07" not in text and len(text.splitlines()) == 2
    assert "version 0 → 1\\x1b[2J\\x0a| x |" in text
    up = report.ImageUpdate("rust", "1", D, "sha256:" + "b" * 64, "container.image", insight=ins)
    md = report.render_update(report.UpdateReport((up,), "xcargo.lock"), "markdown")
    [row] = [ln for ln in md.splitlines() if ln.startswith("| version")]
    assert row == "| version | 0 | " + report.md_text(evil) + " |"
    assert "<img" not in md.replace("\\<img", "") and "\x1b" not in md


def test_json_insight_matches_the_documented_schema() -> None:
    from tests.support.docs_schema import conforms, documented_json

    p = insight.OCI_PREFIX
    old = ImageFacts("1", insight.oci_labels({p + "base.digest": "sha256:1", p + "source": "https://github.com/a/b",
                                              p + "revision": "r1"}), {"linux/amd64": PlatformFacts(("a",), 1)},
                     Sbom("SPDX", frozenset({("x", "1"), ("y", "1")}), "referrer"))  # fmt: skip
    new = ImageFacts("2", insight.oci_labels({p + "base.digest": "sha256:2", p + "source": "https://github.com/a/b",
                                              p + "revision": "r2"}), {"linux/amd64": PlatformFacts(("b",), 2)},
                     Sbom("SPDX", frozenset({("x", "2"), ("z", "1")}), "referrer",
                          signature=insight.SbomSignature(True, "signed by key sha256:1")))  # fmt: skip
    ins = insight.compare(old, new, requests=3)
    from dataclasses import replace

    from lockman.model import vulns

    f = vulns.Finding("CVE-1", ("CVE-2",), vulns.Severity.of("high", 7.5, "CVSS_V3"), "x", "1", "2", "2", "s")
    ins = replace(ins, vulnerabilities=vulns.VulnDiff("compared", "linux/amd64", (f,), (f,), 1, (), 2))
    conforms(ins.as_dict(), documented_json("insight"))
    assert ins.compare_url == "https://github.com/a/b/compare/r1...r2"
    up = report.ImageUpdate("rust", "1", D, "sha256:" + "b" * 64, "container.image", insight=ins)
    conforms(json.loads(report.render_update(report.UpdateReport((up,), "l"), "json")), documented_json("update"))
    assert documented_json("update")["updates"][0]["insight"] is None  # documented as null or the object


def test_text_is_at_most_two_lines_per_image() -> None:
    from lockman.model.insight import FieldChange, Insight, LayerChange

    full = Insight(
        (FieldChange("version", "1", "2"),), layers=(LayerChange("", 1, 2, 1, 0, 1),), notes=("a", "b")
    )
    assert report.insight_text(full) == [
        "version 1 → 2",
        "1 B → 2 B, layers 1 new, 0 shared, 1 gone; note: a; b",
    ]
    bare = Insight(layers=(LayerChange("", 1000, 1_500_000, 1, 0, 1),), notes=("x",))
    assert report.insight_text(bare) == ["1.0 kB → 1.5 MB, layers 1 new, 0 shared, 1 gone", "note: x"]
