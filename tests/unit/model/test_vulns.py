"""lockman.model.vulns: package URLs, OSV queries, severity, records, the diff, the policy."""

from __future__ import annotations

import json

import pytest

from lockman.model import insight, vulns
from lockman.model.vulns import Package, Severity, VulnDiff, VulnPolicy
from tests.support.paths import TESTDATA

RECORDS = TESTDATA / "osv" / "records"


def record(name: str) -> dict:
    return json.loads((RECORDS / f"{name}.json").read_text())


# -- CVSS v3 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:N/A:N", 4.7),  # CVE-2018-5407, as NVD scores it
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),  # scope changed (the usual XSS)
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:H/PR:H/UI:R/S:C/C:L/I:N/A:N", 2.6),  # PR:H under changed scope is 0.5
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0),
    ],
)
def test_cvss3_base_score(vector: str, score: float) -> None:
    assert vulns.cvss3_score(vector) == score


@pytest.mark.parametrize(
    "vector",
    [
        "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",  # a metric missing
        "CVSS:3.1/AV:N/AV:L/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # a metric twice
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "",
    ],
)
def test_malformed_vectors_have_no_score(vector: str) -> None:
    assert vulns.cvss3_score(vector) is None


def test_severity_from_vector_database_or_urgency() -> None:
    assert vulns.severity_of(record("GHSA-9v2f-6vcg-3hgv")) == Severity.of("critical", 9.8, "CVSS_V3")
    assert vulns.severity_of(record("CVE-2018-5407")) == Severity.of("medium", 4.7, "CVSS_V3")
    assert vulns.severity_of(record("CVE-2024-3847")).level == "low"  # Debian's urgency
    assert vulns.severity_of({"database_specific": {"severity": "MODERATE"}}).level == "medium"
    assert vulns.severity_of({"severity": [{"type": "Ubuntu", "score": "high"}]}).level == "high"
    assert vulns.severity_of(record("PYSEC-2023-74")) == vulns.UNKNOWN
    # CVSS v4: FIRST's algorithm (9.3 and 1.0 as FIRST's calculator scores these vectors)
    v4 = {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}
    assert vulns.severity_of({"severity": [v4]}) == Severity.of("critical", 9.3, "CVSS_V4")
    low = {"type": "CVSS_V4", "score": "CVSS:4.0/AV:L/AC:H/AT:P/PR:L/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N"}
    assert vulns.severity_of({"severity": [low]}) == Severity.of("low", 1.0, "CVSS_V4")
    # a malformed v4 vector: the database's rating, else unknown (never a made-up score)
    bad = {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L"}
    assert vulns.severity_of({"severity": [bad]}) == vulns.UNKNOWN
    assert vulns.severity_of({"severity": [bad], "database_specific": {"severity": "HIGH"}}).level == "high"
    # the worst of several ratings wins
    assert vulns.severity_of({"severity": [low, v4]}).score == 9.3


# -- package URLs --------------------------------------------------------------------------------


def test_parse_purl() -> None:
    p = vulns.parse_purl(
        "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&upstream=openssl&distro=debian-12"
    )
    assert p is not None and (p.type, p.namespace, p.name, p.version) == (
        "deb",
        "debian",
        "libssl3",
        "3.0.11-1~deb12u2",
    )
    assert p.qualifiers == {"arch": "amd64", "upstream": "openssl", "distro": "debian-12"}
    npm = vulns.parse_purl("pkg:npm/%40angular/core@16.0.0")
    assert npm is not None and (npm.namespace, npm.name) == ("@angular", "core")
    for bad in ("pkg:", "pkg:deb", "npm/x@1", "pkg:/x@1", "pkg:%%/x@1", "pkg:deb/" + "a" * 600, 3, None):
        assert vulns.parse_purl(bad) is None


@pytest.mark.parametrize(
    ("purl", "query"),
    [
        (
            "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&upstream=openssl&distro=debian-12",
            {"package": {"name": "openssl", "ecosystem": "Debian:12"}, "version": "3.0.11-1~deb12u2"},
        ),
        (
            "pkg:deb/debian/libc6@2.36-9?upstream=glibc%402.36-9&distro=bookworm",
            {"package": {"name": "glibc", "ecosystem": "Debian:12"}, "version": "2.36-9"},
        ),
        (
            "pkg:deb/debian/zlib1g@1.2",
            {"package": {"name": "zlib1g", "ecosystem": "Debian"}, "version": "1.2"},
        ),
        (
            "pkg:deb/ubuntu/pcre3@2%3A8.39-12ubuntu0.1?arch=amd64&distro=focal&source=pcre3",
            {"package": {"name": "pcre3", "ecosystem": "Ubuntu:20.04:LTS"}, "version": "2:8.39-12ubuntu0.1"},
        ),
        (
            "pkg:apk/alpine/zlib@1.2.12-r1?arch=x86_64&distro=3.22.0&origin=zlib",
            {"package": {"name": "zlib", "ecosystem": "Alpine:v3.22"}, "version": "1.2.12-r1"},
        ),
        (
            "pkg:apk/alpine/busybox-binsh@1.36.1-r0?distro=alpine-3.18.0&upstream=busybox",
            {"package": {"name": "busybox", "ecosystem": "Alpine:v3.18"}, "version": "1.36.1-r0"},
        ),
        (
            "pkg:pypi/requests@2.31.0",
            {"package": {"name": "requests", "ecosystem": "PyPI"}, "version": "2.31.0"},
        ),
        (
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
            {
                "package": {"name": "org.apache.logging.log4j:log4j-core", "ecosystem": "Maven"},
                "version": "2.14.1",
            },
        ),
        (
            "pkg:golang/golang.org/x/net@v0.1.0",
            {"package": {"name": "golang.org/x/net", "ecosystem": "Go"}, "version": "v0.1.0"},
        ),
        (
            "pkg:rpm/redhat/openssl@3.0.7-1.el9?arch=x86_64",
            {"package": {"purl": "pkg:rpm/redhat/openssl"}, "version": "3.0.7-1.el9"},
        ),
    ],
)
def test_osv_query_for_each_kind_of_package(purl: str, query: dict) -> None:
    p = vulns.parse_purl(purl)
    assert p is not None and vulns.osv_package(p) == query


def test_a_purl_with_a_lone_surrogate_is_not_one() -> None:
    """Found by the package-url fuzz target: JSON's ``\\udc80`` in an SBOM's purl made
    ``str(Purl)`` raise UnicodeEncodeError, which would have failed the update."""
    assert vulns.parse_purl("pkg:deb/\udc80debian/libssl3@3.0") is None
    doc = {"bomFormat": "CycloneDX", "components": [{"name": "x", "version": "1", "purl": "pkg:pypi/x\udc80@1"}]}
    assert insight.parse_sbom(json.dumps(doc).encode()).purls == frozenset()
    typed = [{"name": "syft:package:type", "value": "python"}]
    doc = {"bomFormat": "CycloneDX", "components": [{"name": "x\udc80", "version": "1", "properties": typed}]}
    assert insight.parse_sbom(json.dumps(doc).encode()).purls == frozenset()


def test_versionless_purl_is_not_asked() -> None:
    p = vulns.parse_purl("pkg:pypi/requests")
    assert p is not None and vulns.osv_package(p) is None


def test_sbom_package_urls_from_real_sboms() -> None:
    cdx = insight.parse_sbom((TESTDATA / "osv" / "sboms" / "alpine-zlib-16.cdx.json").read_bytes())
    assert cdx.purls == {
        Package("zlib", "1.2.12-r1", "pkg:apk/alpine/zlib@1.2.12-r1?arch=x86_64&distro=3.22.0&origin=zlib")
    }
    spdx = insight.parse_sbom((TESTDATA / "osv" / "sboms" / "only-unimportant.spdx.json").read_bytes())
    [p] = spdx.purls
    assert (p.name, p.version) == ("libpcre3", "2:8.39-12ubuntu0.1")
    assert vulns.parse_purl(p.purl) is not None


def test_package_url_built_from_type_and_distro_when_the_sbom_has_none() -> None:
    doc = {
        "bomFormat": "CycloneDX",
        "components": [
            {"type": "operating-system", "name": "debian", "version": "12"},
            {"type": "library", "name": "openssl", "version": "3.0.11-1",
             "properties": [{"name": "syft:package:type", "value": "deb"}]},
            {"type": "library", "name": "jinja2", "version": "3.1.4",
             "properties": [{"name": "aquasecurity:trivy:PkgType", "value": "python"}]},
            {"type": "library", "name": "mystery", "version": "1"},
        ],
    }  # fmt: skip
    sbom = insight.parse_sbom(json.dumps(doc).encode())
    assert sbom.distro == ("debian", "12")
    assert {p.purl for p in sbom.purls} == {
        "pkg:deb/debian/openssl@3.0.11-1?distro=debian-12",
        "pkg:pypi/jinja2@3.1.4",
    }
    [deb] = [vulns.parse_purl(p.purl) for p in sbom.purls if p.name == "openssl"]
    assert deb is not None
    assert vulns.osv_package(deb) == {
        "package": {"name": "openssl", "ecosystem": "Debian:12"},
        "version": "3.0.11-1",
    }


# -- records -------------------------------------------------------------------------------------


def test_parse_real_records() -> None:
    r = vulns.parse_record(record("PYSEC-2023-74"))
    assert r is not None and r.id == "PYSEC-2023-74"
    assert r.fixed_for("requests") == "2.31.0"  # the ECOSYSTEM range, not the GIT commit
    g = vulns.parse_record(record("GHSA-9v2f-6vcg-3hgv"))
    assert g is not None and g.aliases == ("CVE-2024-39236",) and g.fixed_for("gradio") is None
    d = vulns.parse_record(record("CVE-2024-1013"))
    assert d is not None and d.summary.startswith("An out-of-bounds stack write")  # details when no summary


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        {"id": "../../admin"},
        {"id": "CVE-1/../../x"},
        {"id": "x" * 200},
        {"id": ""},
        {"id": 5},
        {"id": "CVE-1\nX"},
    ],
)
def test_records_with_an_id_unsafe_in_a_url_are_refused(bad: object) -> None:
    assert vulns.parse_record(bad) is None


def test_hostile_record_fields_are_bounded() -> None:
    r = vulns.parse_record(
        {
            "id": "CVE-1",
            "aliases": ["CVE-2", "../x", 7, *[f"A-{i}" for i in range(100)]],
            "summary": "x" * 10000,
            "affected": [{"package": {"name": "p"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "y" * 999}]}]}],
            "severity": "not a list",
        }
    )  # fmt: skip
    assert r is not None
    assert "../x" not in r.aliases and len(r.aliases) <= vulns.MAX_ALIASES
    assert len(r.summary) == vulns.MAX_TEXT and len(r.fixed["p"]) == 128
    assert r.severity == vulns.UNKNOWN


def test_batch_ids_capped_and_checked() -> None:
    ids, token = vulns.parse_batch_ids(
        {"vulns": [{"id": f"X-{i}"} for i in range(10)], "next_page_token": "t"}, 3
    ) or (
        [],
        None,
    )
    assert ids == ["X-0", "X-1", "X-2"] and token == "t"
    assert vulns.parse_batch_ids({"vulns": [{"id": "../x"}, {"id": "OK-1"}]}, 9) == (["OK-1"], None)
    assert vulns.parse_batch_ids({}, 9) == ([], None)
    assert vulns.parse_batch_ids({"vulns": "x"}, 9) is None
    assert vulns.parse_batch_ids("x", 9) is None


# -- diff and policy -----------------------------------------------------------------------------


def pkg(name: str, version: str) -> Package:
    return Package(name, version, f"pkg:pypi/{name}@{version}")


def test_diff_fixed_introduced_still_present() -> None:
    old = [pkg("requests", "2.30.0"), pkg("jinja2", "3.1.3")]
    new = [pkg("requests", "2.31.0"), pkg("jinja2", "3.1.4"), pkg("gradio", "4.36.1")]
    ids = {
        "pkg:pypi/requests@2.30.0": ["PYSEC-2023-74", "OLD-AND-NEW"],
        "pkg:pypi/jinja2@3.1.4": ["OLD-AND-NEW"],  # moved to another package: still present
        "pkg:pypi/gradio@4.36.1": ["GHSA-9v2f-6vcg-3hgv"],
    }
    records = {
        r.id: r
        for r in (vulns.parse_record(record(n)) for n in ("PYSEC-2023-74", "GHSA-9v2f-6vcg-3hgv"))
        if r
    }
    d = vulns.diff(old, new, ids, records, platform="linux/amd64")
    assert [(f.id, f.package, f.old_version, f.new_version, f.fixed_version) for f in d.fixed] == [
        ("PYSEC-2023-74", "requests", "2.30.0", "2.31.0", "2.31.0")
    ]
    assert [(f.id, f.package, f.old_version, f.new_version) for f in d.introduced] == [
        ("GHSA-9v2f-6vcg-3hgv", "gradio", None, "4.36.1")
    ]
    assert d.still_present == 1 and d.status == "compared"


def test_worst_first() -> None:
    def f(i: str, s: Severity) -> vulns.Finding:
        return vulns.Finding(i, (), s, "p", None, "1", None)

    found = [f("A", vulns.UNKNOWN), f("B", Severity.of("high", 7.5)), f("C", Severity.of("high", 8.8)),
             f("D", Severity.of("low", 2.0)), f("E", Severity.of("critical"))]  # fmt: skip
    assert [x.id for x in vulns.worst_first(found)] == ["E", "C", "B", "D", "A"]


def test_policy_refuses_at_or_above_unless_accepted() -> None:
    crit = vulns.Finding(
        "GHSA-9v2f-6vcg-3hgv", ("CVE-2024-39236",), Severity.of("critical", 9.8), "g", None, "1", None
    )
    med = vulns.Finding("CVE-2018-5407", (), Severity.of("medium", 4.7), "o", None, "1", None)
    unknown = vulns.Finding("PYSEC-1", (), vulns.UNKNOWN, "r", None, "1", None)
    d = VulnDiff("compared", introduced=(crit, med, unknown))
    assert VulnPolicy().refused(d) == ()
    assert VulnPolicy("high").refused(d) == (crit,)
    assert VulnPolicy("medium").refused(d) == (crit, med)
    assert VulnPolicy("high", frozenset({"CVE-2024-39236"})).refused(d) == ()  # by alias
    assert VulnPolicy("none").refused(d) == (crit, med)  # unknown is below every level
    assert VulnPolicy("low").refused(VulnDiff("compared", fixed=(crit,))) == ()  # fixing is fine


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("x", "must be a table"),
        ({"refuse": "severe"}, "refuse must be one of"),
        ({"refuse": 7}, "refuse must be one of"),
        ({"refuse": "unknown"}, "refuse must be one of"),
        ({"accept": "CVE-1"}, "accept must be a list"),
        ({"accept": ["../x"]}, "accept must be a list"),
        ({"enabled": "yes"}, "enabled must be true or false"),
        ({"refuse": "high", "refuze": "x"}, "unknown key 'refuze'"),
    ],
)
def test_policy_table_refuses_what_means_nothing(table: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        vulns.parse_policy(table, "lockman.toml")


def test_policy_table() -> None:
    p = vulns.parse_policy({"refuse": "HIGH", "accept": ["CVE-1"], "enabled": False}, "x")
    assert p == VulnPolicy("high", frozenset({"CVE-1"}), False)
    assert vulns.parse_policy(None, "x") == VulnPolicy()


def test_platforms_with_the_same_result_merge_and_a_fix_counts_once() -> None:
    from lockman.model.vulns import Finding, Severity, VulnDiff, distinct, merge_platforms

    f = Finding("CVE-1", (), Severity.of("high", 7.5, "CVSS_V3"), "x", "1", "2", "2")
    g = Finding("CVE-2", (), Severity.of("low", 2.0, "CVSS_V3"), "y", "1", "2", None)
    amd = VulnDiff("compared", "linux/amd64", (f,), (), 1, (), 3)
    arm = VulnDiff("compared", "linux/arm64", (f,), (), 1, (), 0)  # fewer requests: same result
    v7 = VulnDiff("compared", "linux/arm/v7", (f,), (g,), 1)
    merged = merge_platforms([amd, v7, arm])
    assert [m.platform for m in merged] == ["linux/amd64, linux/arm64", "linux/arm/v7"]
    assert merged[0].fixed == (f,) and merged[1].introduced == (g,)
    assert merge_platforms([VulnDiff("not-scanned", "")])[0].platform == ""  # a single-platform image
    assert distinct([f, g, f]) == (f, g)
