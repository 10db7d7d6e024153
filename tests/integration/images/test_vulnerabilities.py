"""Known vulnerabilities an update fixes and introduces: real SBOMs on the real docker-registry,
real OSV records from a loopback OSV service (tests/support/osv_server.py).

The CycloneDX SBOMs are osv-scanner's own test SBOM (testdata/osv/sboms, a scalibr CycloneDX
of an Alpine image) with its components swapped; the SPDX ones ride in a buildkit attestation
as ``docker buildx build --sbom`` lays it out. Each test counts what the OSV service was sent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockman.model import lockfile
from tests.support.fixtures import unique_repo
from tests.support.images import Build, attach_sbom, push_build, push_buildkit_index, push_buildkit_platforms
from tests.support.osv_server import OsvServer
from tests.support.paths import TESTDATA
from tests.support.project import image_project as project
from tests.support.registry import Registry

pytestmark = pytest.mark.registry

CDX = "application/vnd.cyclonedx+json"
OLD = {
    "zlib": "pkg:apk/alpine/zlib@1.2.12-r1?arch=x86_64&distro=3.5.0&origin=zlib",
    "openssl": "pkg:apk/alpine/openssl@1.0.2p-r0?arch=x86_64&distro=3.5.0&origin=openssl",
    "requests": "pkg:pypi/requests@2.30.0",
}
NEW = {
    "zlib": "pkg:apk/alpine/zlib@1.2.12-r1?arch=x86_64&distro=3.5.0&origin=zlib",
    "openssl": "pkg:apk/alpine/openssl@1.0.2q-r0?arch=x86_64&distro=3.5.0&origin=openssl",
    "requests": "pkg:pypi/requests@2.31.0",
    "gradio": "pkg:pypi/gradio@4.36.1",
}


def cyclonedx(purls: dict[str, str]) -> bytes:
    """osv-scanner's alpine-zlib CycloneDX with one component per package URL."""
    doc = json.loads((TESTDATA / "osv" / "sboms" / "alpine-zlib-16.cdx.json").read_text())
    template = doc["components"][0]
    doc["components"] = [
        {**template, "bom-ref": name, "name": name, "version": purl.split("@")[1].split("?")[0], "purl": purl}
        for name, purl in purls.items()
    ]
    return json.dumps(doc).encode()


def spdx_debian(packages: dict[str, str]) -> bytes:
    """osv-scanner's scalibr SPDX (only-unimportant.spdx.json), packages swapped for Debian 10 ones."""
    doc = json.loads((TESTDATA / "osv" / "sboms" / "only-unimportant.spdx.json").read_text())
    template = doc["packages"][0]
    doc["packages"] = [
        {
            **template,
            "name": name,
            "SPDXID": f"SPDXRef-Package-{name}",
            "versionInfo": version,
            "externalRefs": [
                {
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": f"pkg:deb/debian/{name}@{version}?arch=amd64&distro=buster&source={name}",
                }
            ],
        }
        for name, version in packages.items()
    ]
    return json.dumps(doc).encode()


def build(registry: Registry, repo: str, salt: str, sbom: bytes) -> Build:
    b = push_build(registry, repo, "v1", [salt.encode() * 100], "2026-01-01T00:00:00Z", {})
    attach_sbom(registry, repo, b, sbom, CDX)
    return b


def locked(registry: Registry, tmp_path: Path, run, repo: str, sbom: bytes) -> Path:
    build(registry, repo, "old", sbom)
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    r = run("update", "--config", cfg, "--no-vulnerabilities")
    assert r.code == 0, r.err
    return cfg


def test_update_says_what_it_fixes_and_introduces(
    tmp_path: Path, registry: Registry, osv_server: OsvServer, run
) -> None:
    repo = unique_repo("vulns")
    cfg = locked(registry, tmp_path, run, repo, cyclonedx(OLD))
    assert osv_server.log == []  # --no-vulnerabilities: not one request
    two = build(registry, repo, "new", cyclonedx(NEW))

    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    assert r.code == 0, r.err
    [entry] = json.loads(r.out)["updates"]
    v = entry["insight"]["vulnerabilities"]
    assert v["status"] == "compared" and v["still_present"] == 0 and v["notes"] == []
    assert [(f["id"], f["package"], f["old_version"], f["new_version"]) for f in v["introduced"]] == [
        ("GHSA-9v2f-6vcg-3hgv", "gradio", None, "4.36.1")
    ]
    [gradio] = v["introduced"]
    assert gradio["aliases"] == ["CVE-2024-39236"]
    assert gradio["severity"] == {"level": "critical", "score": 9.8, "source": "CVSS_V3"}
    fixed = {f["id"]: f for f in v["fixed"]}
    assert set(fixed) == {"CVE-2018-5407", "PYSEC-2023-74"}
    assert fixed["CVE-2018-5407"]["severity"] == {"level": "medium", "score": 4.7, "source": "CVSS_V3"}
    assert (fixed["CVE-2018-5407"]["old_version"], fixed["CVE-2018-5407"]["new_version"]) == (
        "1.0.2p-r0",
        "1.0.2q-r0",
    )
    assert fixed["CVE-2018-5407"]["fixed_version"] == "1.0.2q-r0"
    assert fixed["PYSEC-2023-74"]["fixed_version"] == "2.31.0"
    assert v["fixed"][0]["id"] == "CVE-2018-5407"  # worst first (rated before unrated)
    assert "fixes 2 known vulnerabilities" in json.loads(r.out)["commit_message"]
    # One querybatch for the five distinct packages of both digests, one GET per changed id.
    assert osv_server.count("POST", "/v1/querybatch") == 1
    assert sorted(p for m, p, _ in osv_server.log if m == "GET") == [
        "/v1/vulns/CVE-2018-5407",
        "/v1/vulns/GHSA-9v2f-6vcg-3hgv",
        "/v1/vulns/PYSEC-2023-74",
    ]
    assert v["requests"] == len(osv_server.log) == 4
    # Only package coordinates went out: no registry, repository or digest.
    sent = json.dumps([body for _, _, body in osv_server.log])
    assert registry.host not in sent and repo not in sent and "sha256" not in sent
    assert {"package": {"name": "openssl", "ecosystem": "Alpine:v3.5"}, "version": "1.0.2p-r0"} in (
        osv_server.queries
    )

    r = run("update", "--config", cfg, "--dry-run", "--format", "markdown")
    assert r.code == 0, r.err
    md = r.out
    assert "**Known vulnerabilities**: fixes 2, introduces 1, 0 still present" in md
    assert (
        "| introduced | [GHSA-9v2f-6vcg-3hgv](https://osv.dev/vulnerability/GHSA-9v2f-6vcg-3hgv) "
        "(CVE-2024-39236) | critical 9.8 | gradio | — | 4.36.1 |  | Gradio was discovered" in md
    )
    assert (
        "| fixed | [CVE-2018-5407](https://osv.dev/vulnerability/CVE-2018-5407) | medium 4.7 | openssl " in md
    )

    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    text = [ln.strip() for ln in r.out.splitlines()]
    i = text.index("vulnerabilities: fixes 2, introduces 1, 0 still present")
    assert text[i + 1].startswith("introduced GHSA-9v2f-6vcg-3hgv [CVE-2024-39236] (critical 9.8) gradio")
    assert text[i + 2].startswith("fixed CVE-2018-5407 (medium 4.7) openssl 1.0.2p-r0 → 1.0.2q-r0")
    assert lockfile.read(tmp_path / "xcargo.lock").images[0].digest == two.digest


def test_policy_refuses_an_introduced_vulnerability_unless_accepted(
    tmp_path: Path, registry: Registry, osv_server: OsvServer, run
) -> None:
    repo = unique_repo("vulns-policy")
    cfg = locked(registry, tmp_path, run, repo, cyclonedx(OLD))
    before = (tmp_path / "xcargo.lock").read_bytes()
    build(registry, repo, "new", cyclonedx(NEW))
    (tmp_path / "lockman.toml").write_text('[vulnerabilities]\nrefuse = "high"\n')

    r = run("update", "--config", cfg)
    assert r.code == 1, (r.out, r.err)
    assert "GHSA-9v2f-6vcg-3hgv (critical 9.8)" in r.err and "at or above high" in r.err
    assert (tmp_path / "xcargo.lock").read_bytes() == before  # the lock is unchanged

    # Accepted by its CVE alias: locked.
    (tmp_path / "lockman.toml").write_text(
        '[vulnerabilities]\nrefuse = "high"\naccept = ["CVE-2024-39236"]\n'
    )
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert (tmp_path / "xcargo.lock").read_bytes() != before

    (tmp_path / "lockman.toml").write_text('[vulnerabilities]\nrefuse = "severe"\n')
    r = run("update", "--config", cfg)
    assert r.code == 2 and "refuse must be one of" in r.err


def test_no_sbom_is_not_scanned_and_no_insight_sends_nothing(
    tmp_path: Path, registry: Registry, osv_server: OsvServer, run
) -> None:
    repo = unique_repo("vulns-nosbom")
    registry.push_image(repo, "v1", salt="a")
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg).code == 0
    registry.push_image(repo, "v1", salt="b")
    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    v = json.loads(r.out)["updates"][0]["insight"]["vulnerabilities"]
    assert v["status"] == "not-scanned" and v["fixed"] == v["introduced"] == []
    r = run("update", "--config", cfg, "--dry-run")
    assert "vulnerabilities: not scanned (no SBOM for either digest)" in r.out
    r = run("update", "--config", cfg, "--dry-run", "--format", "markdown")
    assert "**Known vulnerabilities**: not scanned" in r.out
    assert osv_server.log == []


def test_buildkit_spdx_debian_packages_still_present_and_fixed(
    tmp_path: Path, registry: Registry, osv_server: OsvServer, run
) -> None:
    repo = unique_repo("vulns-buildkit")
    one = push_build(registry, repo, "one", [b"a" * 10], "2026-01-01T00:00:00Z", {})
    push_buildkit_index(
        registry, repo, "v1", one, spdx_debian({"unixodbc": "2.3.11-2", "chromium": "73.0.3683.75-1"})
    )
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg, "--no-insight").code == 0
    two = push_build(registry, repo, "two", [b"b" * 10], "2026-01-02T00:00:00Z", {})
    push_buildkit_index(registry, repo, "v1", two, spdx_debian({"unixodbc": "2.3.11-2"}))
    r = run("update", "--config", cfg, "--dry-run", "--no-insight", "--format", "json")
    assert r.code == 0 and json.loads(r.out)["updates"][0]["insight"] is None
    assert osv_server.log == []  # --no-insight on a moved image: nothing asked
    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    v = json.loads(r.out)["updates"][0]["insight"]["vulnerabilities"]
    assert v["platform"] == "linux/amd64" and v["still_present"] == 1
    assert [(f["id"], f["package"], f["old_version"], f["new_version"]) for f in v["fixed"]] == [
        ("CVE-2024-3847", "chromium", "73.0.3683.75-1", None)
    ]
    assert v["fixed"][0]["severity"]["level"] == "low"  # Debian's urgency
    assert v["introduced"] == []
    assert {"package": {"name": "unixodbc", "ecosystem": "Debian:10"}, "version": "2.3.11-2"} in (
        osv_server.queries
    )
    # still-present ids are counted, never fetched
    assert [p for m, p, _ in osv_server.log if m == "GET"] == ["/v1/vulns/CVE-2024-3847"]


def test_slow_or_failing_service_is_one_warning_never_a_failed_update(
    tmp_path: Path, registry: Registry, osv_server: OsvServer, run
) -> None:
    repo = unique_repo("vulns-slow")
    cfg = locked(registry, tmp_path, run, repo, cyclonedx(OLD))
    two = build(registry, repo, "new", cyclonedx(NEW))
    (tmp_path / "lockman.toml").write_text('[vulnerabilities]\nrefuse = "low"\n')
    osv_server.delay = 3
    r = run("update", "--config", cfg, "--timeout", "1")
    assert r.code == 0, r.err
    warnings = [ln for ln in r.err.splitlines() if ln.startswith("warning:")]
    assert warnings == [
        f"warning: known vulnerabilities not checked: {osv_server.url} did not answer in time"
    ]
    assert "vulnerabilities: not checked: OSV unavailable" in r.out
    assert lockfile.read(tmp_path / "xcargo.lock").images[0].digest == two.digest
    assert osv_server.count("POST") == 1  # no retry storm against a struggling service


def test_requests_per_moved_image_are_bounded(
    tmp_path: Path, registry: Registry, osv_server: OsvServer, run
) -> None:
    repo = unique_repo("vulns-many")
    old = {f"p{i}": f"pkg:pypi/p{i}@1.0" for i in range(1500)} | {"requests": OLD["requests"]}
    new = {f"p{i}": f"pkg:pypi/p{i}@1.1" for i in range(1500)} | {"gradio": NEW["gradio"]}
    cfg = locked(registry, tmp_path, run, repo, cyclonedx(old))
    build(registry, repo, "new", cyclonedx(new))
    osv_server.extra_ids, osv_server.unique_extra = 3, True  # 3 made-up ids per package version, no records
    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    assert r.code == 0, r.err
    v = json.loads(r.out)["updates"][0]["insight"]["vulnerabilities"]
    assert v["requests"] == len(osv_server.log) <= 64
    assert osv_server.count("POST") == 4  # 3002 packages: four batches of at most 1000
    assert any("request limit (64)" in n for n in v["notes"])
    # introduced ids are read first: the policy sees the worst of what is new
    assert "/v1/vulns/GHSA-9v2f-6vcg-3hgv" in [p for m, p, _ in osv_server.log if m == "GET"]


def test_toolchain_first_old_to_new_with_a_downgrade_flagged(
    tmp_path: Path, registry: Registry, osv_server: OsvServer, run
) -> None:
    """A cross-rs style rebuild: glibc 2.31 → 2.36 (Debian 11 → 12) and rust going down."""
    repo = unique_repo("toolchain")

    def image(salt: str, rust: str, packages: dict[str, tuple[str, str]], release: str) -> None:
        b = push_build(registry, repo, salt, [salt.encode() * 10], "2026-01-01T00:00:00Z", {},
                       env=["PATH=/usr/local/cargo/bin:/usr/bin", f"RUST_VERSION={rust}"])  # fmt: skip
        doc = json.loads(spdx_debian({n: v for n, (v, _) in packages.items()}))
        for p in doc["packages"]:
            src = packages[p["name"]][1]
            p["externalRefs"][0]["referenceLocator"] = (
                f"pkg:deb/debian/{p['name']}@{p['versionInfo']}?arch=amd64&distro=debian-{release}&upstream={src}"
            )
        push_buildkit_index(registry, repo, "v1", b, json.dumps(doc).encode())

    image("one", "1.80.0", {"libc6": ("2.31-13+deb11u11", "glibc"), "libssl1.1": ("1.1.1w-0+deb11u1", "openssl"),
                            "gcc-10": ("10.2.1-6", "gcc-10")}, "11")  # fmt: skip
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg, "--no-vulnerabilities").code == 0
    image("two", "1.79.0", {"libc6": ("2.36-9+deb12u9", "glibc"), "libssl3": ("3.0.15-1~deb12u1", "openssl"),
                            "gcc-12": ("12.2.0-14", "gcc-12")}, "12")  # fmt: skip
    r = run("update", "--config", cfg, "--dry-run", "--format", "json", "--no-vulnerabilities")
    assert r.code == 0, r.err
    ins = json.loads(r.out)["updates"][0]["insight"]
    assert ins["vulnerabilities"] is None and osv_server.log == []
    assert ins["toolchain"] == [
        {"component": "distro", "old": "debian 11", "new": "debian 12", "downgrade": False},
        {"component": "glibc", "old": "2.31-13+deb11u11", "new": "2.36-9+deb12u9", "downgrade": False},
        {"component": "gcc", "old": "10.2.1-6", "new": "12.2.0-14", "downgrade": False},
        {"component": "openssl", "old": "1.1.1w-0+deb11u1", "new": "3.0.15-1~deb12u1", "downgrade": False},
        {"component": "rust", "old": "1.80.0", "new": "1.79.0", "downgrade": True},
    ]
    r = run("update", "--config", cfg, "--dry-run")
    first = r.out.splitlines()[2].strip()  # the toolchain comes first, under the digest and platform lines
    assert first.startswith(
        "toolchain: distro debian 11 → debian 12, glibc 2.31-13+deb11u11 → 2.36-9+deb12u9"
    )
    assert first.endswith("rust 1.80.0 → 1.79.0 DOWNGRADE")
    r = run("update", "--config", cfg, "--dry-run", "--format", "markdown")
    section = r.out.split("### What changed", 1)[1]
    assert section.index("| Toolchain | Old | New |") < section.index("| What | Old | New |")
    assert "| rust | 1.80.0 | 1.79.0 **(downgrade)** |" in section


def test_verify_applies_the_policy_to_what_is_locked(
    tmp_path: Path, registry: Registry, osv_server: OsvServer, run
) -> None:
    repo = unique_repo("vulns-verify")
    cfg = locked(registry, tmp_path, run, repo, cyclonedx(NEW))
    other = unique_repo("vulns-verify-bare")
    registry.push_image(other, "v1", salt="a")
    (tmp_path / "xcargo.toml").write_text(
        f'[container]\nimage = "{registry.host}/{repo}:v1"\n'
        f'[targets."aarch64-unknown-linux-gnu".container]\nimage = "{registry.host}/{other}:v1"\n'
    )
    assert run("update", "--config", cfg, "--no-vulnerabilities").code == 0
    r = run("verify", "--config", cfg)
    assert r.code == 0 and osv_server.log == []  # no refuse policy: verify asks OSV nothing

    (tmp_path / "lockman.toml").write_text('[vulnerabilities]\nrefuse = "high"\n')
    r = run("verify", "--config", cfg, "--format", "json")
    assert r.code == 1, r.err
    data = json.loads(r.out)
    assert [(p["kind"], p["image"]) for p in data["problems"]] == [
        ("vulnerability", f"{registry.host}/{repo}:v1")
    ]
    assert "GHSA-9v2f-6vcg-3hgv (critical 9.8)" in data["problems"][0]["message"]
    by = {i["name"]: i for i in data["images"]}
    present = by[f"{registry.host}/{repo}"]["vulnerabilities"]["present"]
    assert {f["id"] for f in present} == {"GHSA-9v2f-6vcg-3hgv"}  # requests 2.31.0, openssl q: fixed
    assert by[f"{registry.host}/{other}"]["vulnerabilities"]["status"] == "not-scanned"
    assert f"notice: {registry.host}/{other}:v1: not scanned for known vulnerabilities (no SBOM" in r.err

    (tmp_path / "lockman.toml").write_text(
        '[vulnerabilities]\nrefuse = "high"\naccept = ["GHSA-9v2f-6vcg-3hgv"]\n'
    )
    r = run("verify", "--config", cfg)
    assert r.code == 0, r.err


def test_diff_insight_commit_message_says_what_it_fixes(
    tmp_path: Path, registry: Registry, osv_server: OsvServer, run
) -> None:
    from tests.support.project import git

    repo = unique_repo("vulns-diff")
    cfg = locked(registry, tmp_path, run, repo, cyclonedx(OLD))
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "xcargo.lock", "xcargo.toml")
    git(tmp_path, "commit", "-qm", "lock")
    two = build(registry, repo, "new", cyclonedx(NEW))
    assert run("update", "--config", cfg, "--no-insight").code == 0
    r = run("diff", "git:HEAD", "--config", cfg, "--commit-message")
    assert r.out.strip() == f"chore(deps): update {registry.host}/{repo}:v1 digest to {two.digest[7:14]}"
    assert osv_server.log == []  # no --insight: offline
    r = run("diff", "git:HEAD", "--config", cfg, "--insight", "--commit-message")
    assert r.code == 0, r.err
    assert r.out.strip() == (
        f"chore(deps): update {registry.host}/{repo}:v1 digest to {two.digest[7:14]} (fixes 2 known vulnerabilities)"
    )
    n = len(osv_server.log)
    r = run("diff", "git:HEAD", "--config", cfg, "--insight", "--no-vulnerabilities", "--format", "json")
    assert json.loads(r.out)["updates"][0]["insight"]["vulnerabilities"] is None and len(osv_server.log) == n


def _platforms_index(registry: Registry, repo: str, salt: str, sboms: dict[str, dict[str, str]]) -> str:
    """A buildkit-style multi-platform index: per platform its own image and its own SPDX SBOM."""
    images = []
    for platform, packages in sboms.items():
        tag = f"{salt}-{platform.replace('/', '-')}"
        b = push_build(registry, repo, tag, [tag.encode() * 10], "2026-01-01T00:00:00Z", {})
        images.append((b, platform, spdx_debian(packages)))
    return push_buildkit_platforms(registry, repo, "v1", images)


def test_each_platform_is_scanned_with_its_own_sbom_and_equal_results_merge(
    tmp_path: Path, registry: Registry, osv_server: OsvServer, run
) -> None:
    """linux/amd64 drops chromium (fixes CVE-2024-3847); linux/arm64 and linux/arm/v7 add it
    (introduce it): three sections would be noise, so the two equal ones are one."""
    repo = unique_repo("vulns-platforms")
    both = {"unixodbc": "2.3.11-2", "chromium": "73.0.3683.75-1"}
    base = {"unixodbc": "2.3.11-2"}
    _platforms_index(registry, repo, "old", {"linux/amd64": both, "linux/arm64": base, "linux/arm/v7": base})
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg, "--no-insight").code == 0
    _platforms_index(registry, repo, "new", {"linux/amd64": base, "linux/arm64": both, "linux/arm/v7": both})
    before = registry.request_count()

    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    ins = data["updates"][0]["insight"]
    v = ins["vulnerabilities"]  # as before: the first platform's
    assert v["platform"] == "linux/amd64" and [f["id"] for f in v["fixed"]] == ["CVE-2024-3847"]
    assert v["introduced"] == []
    by = {x["platform"]: x for x in ins["vulnerabilities_by_platform"]}
    assert [x["platform"] for x in ins["vulnerabilities_by_platform"]] == [
        "linux/amd64", "linux/arm/v7", "linux/arm64"
    ]  # fmt: skip
    assert by["linux/amd64"] == v
    for plat in ("linux/arm64", "linux/arm/v7"):
        assert by[plat]["fixed"] == [] and by[plat]["still_present"] == 1
        assert [(f["id"], f["package"], f["old_version"], f["new_version"]) for f in by[plat]["introduced"]] == [
            ("CVE-2024-3847", "chromium", None, "73.0.3683.75-1")
        ]
    # The union of the platforms' fixed ids: the commit message counts CVE-2024-3847 once.
    assert "fixes 1 known vulnerability" in data["commit_message"]
    # OSV: the two distinct packages of all six SBOMs in one query, the one changed id read once.
    assert osv_server.count("POST", "/v1/querybatch") == 1 and len(osv_server.queries) == 2
    assert [p for m, p, _ in osv_server.log if m == "GET"] == ["/v1/vulns/CVE-2024-3847"]
    # Registry: per side at most the index, three platform manifests, a config and per
    # platform the attestation manifest and its layer; the registry saw no more than that.
    assert ins["requests"] <= 2 * (1 + 3 + 1 + 3 * 2)
    assert registry.request_count() - before <= ins["requests"] + 4  # + resolving the tag

    r = run("update", "--config", cfg, "--dry-run")
    assert r.code == 0, r.err
    text = [ln.strip() for ln in r.out.splitlines()]
    assert "vulnerabilities (linux/amd64): fixes 1, introduces 0, 1 still present" in text
    assert "vulnerabilities (linux/arm/v7, linux/arm64): fixes 0, introduces 1, 1 still present" in text
    assert sum(ln.startswith("vulnerabilities") for ln in text) == 2
    r = run("update", "--config", cfg, "--dry-run", "--format", "markdown")
    assert "**Known vulnerabilities (linux/arm/v7, linux/arm64)**: fixes 0, introduces 1" in r.out
    assert r.out.count("**Known vulnerabilities") == 2

    # The policy looks at every platform: amd64 alone fixes, arm64 introduces.
    (tmp_path / "lockman.toml").write_text('[vulnerabilities]\nrefuse = "low"\n')
    lock = (tmp_path / "xcargo.lock").read_bytes()
    r = run("update", "--config", cfg)
    assert r.code == 1 and "CVE-2024-3847 (low)" in r.err, (r.out, r.err)
    assert (tmp_path / "xcargo.lock").read_bytes() == lock


def test_platforms_past_the_request_budget_are_not_scanned_not_clean(
    tmp_path: Path, registry: Registry, osv_server: OsvServer, run
) -> None:
    """Eight platforms, each with its own SBOM: reading them all would take more than the 48
    registry calls an image may cost; the ones left are "not scanned", never clean."""
    repo = unique_repo("vulns-budget")
    plats = [f"linux/arch{i}" for i in range(8)]
    _platforms_index(registry, repo, "old", {p: {"unixodbc": "2.3.11-2"} for p in plats})
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg, "--no-insight").code == 0
    _platforms_index(registry, repo, "new", {p: {"chromium": "73.0.3683.75-1"} for p in plats})
    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    assert r.code == 0, r.err
    ins = json.loads(r.out)["updates"][0]["insight"]
    assert ins["requests"] <= 48
    statuses = [x["status"] for x in ins["vulnerabilities_by_platform"]]
    assert len(statuses) == 8 and statuses[0] == "compared" and "not-scanned" in statuses
    assert set(statuses) == {"compared", "not-scanned"}
    assert any("request limit (48)" in n for n in ins["notes"])
    # Every compared platform asks about the same two packages: one query, and one read for
    # each of the two ids (unixodbc's fixed, chromium's introduced), not one per platform.
    assert osv_server.count("POST", "/v1/querybatch") == 1
    assert sorted(p for m, p, _ in osv_server.log if m == "GET") == [
        "/v1/vulns/CVE-2024-1013", "/v1/vulns/CVE-2024-3847"
    ]  # fmt: skip


def test_verify_applies_the_policy_to_every_platform(
    tmp_path: Path, registry: Registry, osv_server: OsvServer, run
) -> None:
    """Only linux/arm64's SBOM has chromium: verify refuses what is locked for that platform,
    though linux/amd64 (the first, the one a single scan would read) is clean under the policy."""
    repo = unique_repo("vulns-verify-platforms")
    _platforms_index(registry, repo, "one", {
        "linux/amd64": {"unixodbc": "2.3.11-2"},
        "linux/arm64": {"unixodbc": "2.3.11-2", "chromium": "73.0.3683.75-1"},
    })  # fmt: skip
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg, "--no-insight").code == 0
    (tmp_path / "lockman.toml").write_text('[vulnerabilities]\nrefuse = "low"\naccept = ["CVE-2024-1013"]\n')
    r = run("verify", "--config", cfg, "--format", "json")
    assert r.code == 1, (r.out, r.err)
    data = json.loads(r.out)
    [problem] = data["problems"]
    assert problem["kind"] == "vulnerability" and "CVE-2024-3847 (low)" in problem["message"]
    assert "linux/arm64" in problem["message"]
    [image] = data["images"]
    assert image["vulnerabilities"]["platform"] == "linux/amd64"  # as before: the first platform
    by = {v["platform"]: v for v in image["vulnerabilities_by_platform"]}
    assert {f["id"] for f in by["linux/arm64"]["present"]} == {"CVE-2024-1013", "CVE-2024-3847"}
    assert {f["id"] for f in by["linux/amd64"]["present"]} == {"CVE-2024-1013"}
    # unixodbc asked about once for both platforms (arm64's query names only chromium)
    assert sorted(q["package"]["name"] for q in osv_server.queries) == ["chromium", "unixodbc"]


def test_sboms_attached_to_each_platform_image_as_referrers(
    tmp_path: Path, registry: Registry, osv_server: OsvServer, run
) -> None:
    """No buildkit attestation and nothing attached to the index: each platform's image has its
    own SBOM as an OCI referrer (``cosign attach sbom``/``oras attach`` per platform digest)."""
    from tests.support.registry import OCI_INDEX, OCI_MANIFEST

    repo = unique_repo("vulns-child-referrers")

    def index(salt: str, versions: dict[str, str]) -> None:
        manifests = []
        for platform, version in versions.items():
            os_, arch = platform.split("/")
            tag = f"{salt}-{arch}"
            b = push_build(registry, repo, tag, [tag.encode() * 10], "2026-01-01T00:00:00Z", {})
            attach_sbom(registry, repo, b, cyclonedx({"requests": f"pkg:pypi/requests@{version}"}), CDX)
            manifests.append({"mediaType": OCI_MANIFEST, "digest": b.digest, "size": len(b.manifest),
                              "platform": {"architecture": arch, "os": os_}})  # fmt: skip
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()
        registry.push_manifest(repo, "v1", body, OCI_INDEX)

    index("old", {"linux/amd64": "2.30.0", "linux/arm64": "2.31.0"})
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg, "--no-insight").code == 0
    index("new", {"linux/amd64": "2.31.0", "linux/arm64": "2.30.0"})
    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    assert r.code == 0, r.err
    ins = json.loads(r.out)["updates"][0]["insight"]
    by = {v["platform"]: v for v in ins["vulnerabilities_by_platform"]}
    assert [f["id"] for f in by["linux/amd64"]["fixed"]] == ["PYSEC-2023-74"]
    assert by["linux/amd64"]["introduced"] == []
    assert [f["id"] for f in by["linux/arm64"]["introduced"]] == ["PYSEC-2023-74"]
    assert by["linux/arm64"]["fixed"] == []
    assert ins["sbom"] is not None  # the package diff reads the first platform's too
    assert ins["requests"] <= 48
