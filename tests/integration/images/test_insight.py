"""What changed inside a moved image, against a real docker-registry.

Two builds of one image are pushed (different labels and ``created``, a new base digest, one
new layer, an SPDX SBOM attached to each as an OCI referrer); ``update`` (every format) and
``diff git:HEAD --insight`` must show each change. Then the attacker's side: tampered config
bytes are refused, registry text cannot inject Markdown or terminal escapes, and huge or
deeply nested SBOMs cost one note.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lockman.model import lockfile
from tests.support.faultproxy import FaultProxy
from tests.support.fixtures import unique_repo
from tests.support.images import Build, attach_sbom, push_build, push_buildkit_index
from tests.support.markdown import gfm
from tests.support.project import git
from tests.support.project import image_project as project
from tests.support.registry import OCI_CONFIG, OCI_MANIFEST, Registry

pytestmark = pytest.mark.registry

BASE1 = "sha256:" + "1" * 64
BASE2 = "sha256:" + "2" * 64


def labels(version: str, revision: str, base: str, created: str) -> dict[str, str]:
    p = "org.opencontainers.image."
    return {
        p + "version": version,
        p + "revision": revision,
        p + "source": "https://github.com/acme/app",
        p + "base.name": "docker.io/library/debian:bookworm-slim",
        p + "base.digest": base,
        p + "created": created,
    }


def spdx(packages: dict[str, str]) -> bytes:
    return json.dumps(
        {
            "spdxVersion": "SPDX-2.3",
            "name": "app",
            "packages": [
                {"name": n, "versionInfo": v, "SPDXID": f"SPDXRef-{n}"} for n, v in packages.items()
            ],
        }
    ).encode()


OLD_PACKAGES = {"openssl": "3.0.1", "zlib": "1.2.13", "curl": "8.0.0"}
NEW_PACKAGES = {"openssl": "3.0.2", "zlib": "1.2.13", "libfoo": "1.0"}


def two_builds(reg: Registry, repo: str, host: str | None = None) -> tuple[Build, Build]:
    """Build 1 is pushed; build 2 is returned unpushed-as-tag until ``second()`` is called."""
    base, app = b"base layer " * 40, b"app layer " * 30
    one = push_build(reg, repo, "v1", [base, app], "2026-01-01T00:00:00Z",
                     labels("1.0.0", "aaaa111", BASE1, "2026-01-01T00:00:00Z"))  # fmt: skip
    attach_sbom(reg, repo, one, spdx(OLD_PACKAGES))
    return one, Build("", b"", "")


def second_build(reg: Registry, repo: str) -> Build:
    base, app, extra = b"base layer " * 40, b"app layer " * 30, b"a new layer " * 50
    two = push_build(reg, repo, "v1", [base, app, extra], "2026-02-01T00:00:00Z",
                     labels("1.0.1", "bbbb222", BASE2, "2026-02-01T00:00:00Z"))  # fmt: skip
    attach_sbom(reg, repo, two, spdx(NEW_PACKAGES))
    return two


def test_update_and_diff_say_what_changed_inside(tmp_path: Path, registry: Registry, run) -> None:
    repo = unique_repo("insight")
    one, _ = two_builds(registry, repo)
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "xcargo.lock", "xcargo.toml")
    git(tmp_path, "commit", "-qm", "lock")
    two = second_build(registry, repo)

    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    assert r.code == 0, r.err
    [entry] = json.loads(r.out)["updates"]
    assert (entry["old_digest"], entry["new_digest"]) == (one.digest, two.digest)
    ins = entry["insight"]
    assert ins["base_moved"] is True and ins["base_name"] == "docker.io/library/debian:bookworm-slim"
    changes = {c["field"]: (c["old"], c["new"]) for c in ins["changes"]}
    assert changes == {
        "base.digest": (BASE1, BASE2),
        "version": ("1.0.0", "1.0.1"),
        "revision": ("aaaa111", "bbbb222"),
        "created": ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"),
    }
    assert ins["changes"][0]["field"] == "base.digest"  # the usual reason comes first
    assert ins["compare_url"] == "https://github.com/acme/app/compare/aaaa111...bbbb222"
    [plat] = ins["platforms"]
    assert (plat["layers_new"], plat["layers_shared"], plat["layers_gone"]) == (1, 2, 0)
    assert plat["new_size"] - plat["old_size"] == len(b"a new layer " * 50)
    sbom = ins["sbom"]
    assert sbom["format"] == "SPDX" and (sbom["old_packages"], sbom["new_packages"]) == (3, 3)
    assert sbom["added"] == [{"name": "libfoo", "version": "1.0"}]
    assert sbom["removed"] == [{"name": "curl", "version": "8.0.0"}]
    assert sbom["changed"] == [{"name": "openssl", "old_version": "3.0.1", "new_version": "3.0.2"}]
    assert sbom["signature"] is None  # no signature policy here
    assert ins["notes"] == [] and 0 < ins["requests"] <= 48

    r = run("update", "--config", cfg, "--dry-run", "--format", "markdown")
    assert r.code == 0, r.err
    md = r.out.split("### What changed", 1)[1]
    assert "| **Base image docker.io/library/debian:bookworm-slim moved** | `1111111` | `2222222` |" in md
    assert "| version | 1.0.0 | 1.0.1 |" in md
    assert "([compare](https://github.com/acme/app/compare/aaaa111...bbbb222))" in md
    assert "| layers | | 1 new, 2 shared, 0 gone |" in md
    assert "| SBOM (SPDX) | 3 packages | 3 packages: 1 added, 1 removed, 1 changed |" in md
    assert "<details><summary>SBOM packages: 1 added, 1 removed, 1 changed</summary>" in md
    assert "| openssl | 3.0.1 | 3.0.2 |" in md and "| curl | 8.0.0 | (removed) |" in md

    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith(f"{registry.host}/{repo}:v1  ")
    assert lines.pop(1) == "    toolchain: openssl 3.0.1 → 3.0.2"  # the toolchain comes first
    assert lines[1].startswith(
        "    base image docker.io/library/debian:bookworm-slim moved: sha256:111111111111"
    )
    assert "version 1.0.0 → 1.0.1" in lines[1] and "compare/aaaa111...bbbb222" in lines[1]
    assert (
        "layers 1 new, 2 shared, 0 gone" in lines[2]
        and "SBOM (SPDX): 1 added, 1 removed, 1 changed" in lines[2]
    )
    assert lockfile.read(tmp_path / "xcargo.lock").images[0].digest == two.digest

    r = run("diff", "git:HEAD", "--config", cfg)  # offline by default: no insight
    assert r.code == 0 and "SBOM" not in r.out and len(r.out.splitlines()) == 1, r.out
    r = run("diff", "git:HEAD", "--config", cfg, "--insight", "--format", "json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["updates"][0]["insight"]["changes"] == ins["changes"]
    r = run("diff", "git:HEAD", "--config", cfg, "--insight", "--format", "markdown")
    assert "### What changed" in r.out and "| openssl | 3.0.1 | 3.0.2 |" in r.out


def test_no_labels_no_sbom_is_one_note_and_no_insight_is_bare(
    tmp_path: Path, registry: Registry, run
) -> None:
    repo = unique_repo("insight-bare")
    registry.push_image(repo, "v1", salt="a")
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg).code == 0
    registry.push_image(repo, "v1", salt="b")
    r = run("update", "--config", cfg, "--dry-run", "--no-insight", "--format", "json")
    assert json.loads(r.out)["updates"][0]["insight"] is None
    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    ins = json.loads(r.out)["updates"][0]["insight"]
    assert ins["notes"] == ["no OCI labels and no SBOM published for this image"]
    assert ins["changes"] == [] and ins["sbom"] is None
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    notes = [ln for ln in r.out.splitlines() if "no OCI labels" in ln]
    assert notes == ["    note: no OCI labels and no SBOM published for this image"]


def test_tampered_config_blob_is_refused(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, run
) -> None:
    repo = unique_repo("insight-tamper")
    two_builds(registry, repo)
    cfg = project(tmp_path, f"{fault_proxy.host}/{repo}:v1")
    assert run("update", "--config", cfg).code == 0
    before = (tmp_path / "xcargo.lock").read_text()
    two = second_build(registry, repo)
    fault_proxy.add(
        f"/blobs/{two.config_digest}",
        "alter",
        method="GET",
        transform=lambda b: b.replace(b"1.0.1", b"6.6.6"),
    )
    r = run("update", "--config", cfg)
    assert r.code == 1, (r.out, r.err)
    [error] = [ln for ln in r.err.splitlines() if ln.startswith("error:")]  # (the proxy may log too)
    assert "digest mismatch" in error and f"config {two.config_digest}" in error, r.err
    assert (tmp_path / "xcargo.lock").read_text() == before  # nothing recorded
    assert run("update", "--config", cfg, "--no-insight").code == 0  # the flag skips the read


def test_multi_platform_sizes_layers_and_platforms(tmp_path: Path, registry: Registry, run) -> None:
    repo = unique_repo("insight-multi")
    registry.push_index(repo, "v1", ["linux/amd64", "linux/arm64/v8"], salt="a")
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg).code == 0
    registry.push_index(repo, "v1", ["linux/amd64", "linux/riscv64"], salt="b")
    r = run("update", "--config", cfg, "--format", "json")
    assert r.code == 0, r.err
    ins = json.loads(r.out)["updates"][0]["insight"]
    assert ins["platforms_added"] == ["linux/riscv64"] and ins["platforms_removed"] == ["linux/arm64/v8"]
    assert [
        (p["platform"], p["layers_new"], p["layers_shared"], p["layers_gone"]) for p in ins["platforms"]
    ] == [("linux/amd64", 1, 0, 1)]
    assert ins["notes"] == ["no OCI labels and no SBOM published for this image"]


def test_signed_sbom_attestation_verdict(tmp_path: Path, registry: Registry, run) -> None:
    from lockman.signatures.keys import key_fingerprint
    from tests.support.cosign_registry import attach_bundles
    from tests.support.signing_helpers import make_bundle, new_key, public_pem

    priv = new_key("p256")
    pub = tmp_path / "signer.pub"
    pub.write_bytes(public_pem(priv))
    repo = unique_repo("insight-signed")
    two_builds(registry, repo)
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg).code == 0
    two = second_build(registry, repo)
    predicate = json.loads(spdx(NEW_PACKAGES | {"zlib": "1.3"}))
    attach_bundles(registry, repo, two.digest, OCI_MANIFEST, len(two.manifest), [
        make_bundle(priv, two.digest, None),  # the image's own signature, which update requires
        make_bundle(priv, two.digest, None, predicate_type="https://spdx.dev/Document", predicate=predicate),
    ])  # fmt: skip
    r = run("update", "--config", cfg, "--format", "json", "--key", pub, "--insecure-ignore-tlog")
    assert r.code == 0, r.err
    sbom = json.loads(r.out)["updates"][0]["insight"]["sbom"]
    assert sbom["signature"] == {
        "verified": True,
        "detail": f"signed by key {key_fingerprint(priv.public_key())}",
    }
    assert {"name": "zlib", "old_version": "1.2.13", "new_version": "1.3"} in sbom["changed"]  # the bundle's


def test_registry_text_cannot_inject_markdown_or_terminal_escapes(
    tmp_path: Path, registry: Registry, run
) -> None:
    repo = unique_repo("insight-hostile")
    evil = "1.0\x1b]8;;http://evil\x07\x1b[2J\r| x | <img src=x onerror=alert(1)> [click](http://evil) `"
    one = push_build(
        registry, repo, "v1", [b"a" * 10], "2026-01-01T00:00:00Z", {"org.opencontainers.image.version": "1"}
    )
    attach_sbom(registry, repo, one, spdx({"pkg": "1"}))
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg).code == 0
    hostile = {"org.opencontainers.image.version": evil, "org.opencontainers.image.revision": "\ud800x"}
    two = push_build(registry, repo, "v1", [b"b" * 10], "2026-01-02T00:00:00Z", hostile)
    attach_sbom(registry, repo, two, spdx({"pkg": "2", "<script>|x": "</details>"}))
    r = run("update", "--config", cfg, "--dry-run", "--format", "markdown")
    assert r.code == 0, r.err
    md = r.out
    assert "\x1b" not in md and "\x07" not in md and "\r" not in md
    assert not re.search(r"(?<!\\)<(img|script)", md) and not re.search(r"(?<!\\)\]\(http://evil", md)
    assert "\\<img src=x onerror=alert(1)\\>" in md  # shown, as text
    assert "&lt;img src=x onerror=alert(1)&gt;" in gfm(md) and "<img" not in gfm(md)
    assert md.count("</details>") == 1 and md.count("<details>") == 1
    assert "<a" not in gfm(md)  # as GitHub renders it: not even the bare http://evil is a link
    for row in (ln for ln in md.splitlines() if ln.startswith("| ")):
        assert len(re.findall(r"(?<!\\)\|", row)) == 4, row  # three cells: no extra column
    r = run("update", "--config", cfg, "--dry-run")
    assert "\x1b" not in r.out and "\x07" not in r.out and "\r" not in r.out
    assert "version 1 → 1.0\\x1b]8;;http://evil\\x07\\x1b[2J\\x0d|" in r.out
    assert "revision (none) → ?x" in r.out  # a lone surrogate (JSON "\\ud800") cannot crash the output
    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    assert r.code == 0 and json.loads(r.out)["updates"][0]["insight"]["changes"][1]["new"] == "?x"


def test_huge_or_deeply_nested_sboms_cost_one_note_each(tmp_path: Path, registry: Registry, run) -> None:
    from lockman.images.insight import MAX_SBOM_BYTES

    repo = unique_repo("insight-bomb")
    one = push_build(registry, repo, "v1", [b"a" * 10], "2026-01-01T00:00:00Z", {})
    depth = 200_000
    nested = (
        b'{"bomFormat":"CycloneDX","components":'
        + b'[{"name":"a","components":' * depth
        + b"[]"
        + b"}]" * depth
        + b"}"
    )
    attach_sbom(registry, repo, one, nested, "application/vnd.cyclonedx+json")
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg).code == 0
    two = push_build(registry, repo, "v1", [b"b" * 10], "2026-01-02T00:00:00Z", {})
    huge = b'{"spdxVersion":"SPDX-2.3","packages":[' + b" " * (MAX_SBOM_BYTES + 1) + b"]}"
    attach_sbom(registry, repo, two, huge)
    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    assert r.code == 0, r.err
    ins = json.loads(r.out)["updates"][0]["insight"]
    assert ins["sbom"] is None
    assert ins["notes"] == [
        "old SBOM not readable: SBOM is nested too deeply to read",
        f"new SBOM is over {MAX_SBOM_BYTES} bytes; packages not compared",
    ]


def test_requests_are_counted_and_a_no_op_costs_one_head(tmp_path: Path, registry: Registry, run) -> None:
    repo = unique_repo("insight-count")
    two_builds(registry, repo)
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg).code == 0
    mark = len(registry.access_log_lines())
    assert run("update", "--config", cfg).code == 0
    lines = [ln for ln in registry.access_log_lines()[mark:] if '"GET /v2/ ' not in ln]
    assert len(lines) == 1 and '"HEAD /v2/' in lines[0], lines  # nothing moved: one HEAD, no insight

    second_build(registry, repo)
    mark = len(registry.access_log_lines())
    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    first = json.loads(r.out)["updates"][0]["insight"]["requests"]
    lines = [ln for ln in registry.access_log_lines()[mark:] if '"GET /v2/ ' not in ln]
    assert len(lines) == 2 + first, lines  # HEAD and GET of the new manifest, then the insight's own
    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    again = json.loads(r.out)["updates"][0]["insight"]
    assert again["requests"] < first and again["sbom"] is not None  # manifests and blobs now cached


def attach_att(reg: Registry, repo: str, subject: Build, statement: dict) -> None:
    """A cosign attestation: the ``sha256-<hex>.att`` manifest, one DSSE envelope per layer."""
    import base64

    envelope = json.dumps(
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": base64.b64encode(json.dumps(statement).encode()).decode(),
            "signatures": [{"keyid": "", "sig": "c2ln"}],
        }
    ).encode()
    config = reg.push_blob(repo, b"{}")
    layer = reg.push_blob(repo, envelope)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config, "size": 2},
            "layers": [
                {
                    "mediaType": "application/vnd.dsse.envelope.v1+json",
                    "digest": layer,
                    "size": len(envelope),
                    "annotations": {"predicateType": statement["predicateType"]},
                }
            ],
        }
    ).encode()
    reg.push_manifest(repo, subject.digest.replace(":", "-") + ".att", manifest, OCI_MANIFEST)


def test_sbom_from_cosign_att_attestations(tmp_path: Path, registry: Registry, run) -> None:
    repo = unique_repo("insight-att")

    def statement(packages: dict[str, str]) -> dict:
        return {"_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://cyclonedx.org/bom",
                "subject": [], "predicate": {"bomFormat": "CycloneDX", "components": [
                    {"name": n, "version": v} for n, v in packages.items()]}}  # fmt: skip

    one = push_build(registry, repo, "v1", [b"a" * 10], "2026-01-01T00:00:00Z", {})
    attach_att(registry, repo, one, statement({"musl": "1.2.4"}))
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg).code == 0
    two = push_build(registry, repo, "v1", [b"b" * 10], "2026-01-02T00:00:00Z", {})
    attach_att(registry, repo, two, statement({"musl": "1.2.5"}))
    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    sbom = json.loads(r.out)["updates"][0]["insight"]["sbom"]
    assert sbom["format"] == "CycloneDX"
    assert sbom["changed"] == [{"name": "musl", "old_version": "1.2.4", "new_version": "1.2.5"}]


def test_request_budget_spent_is_a_note(tmp_path: Path, registry: Registry, run, monkeypatch) -> None:
    import lockman.images.insight

    monkeypatch.setattr(lockman.images.insight, "MAX_REQUESTS", 3)
    repo = unique_repo("insight-budget")
    two_builds(registry, repo)
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg).code == 0
    second_build(registry, repo)
    mark = len(registry.access_log_lines())
    r = run("update", "--config", cfg, "--format", "json")
    assert r.code == 0, r.err  # recorded all the same
    ins = json.loads(r.out)["updates"][0]["insight"]
    assert "request limit (3) reached; the rest was not inspected" in ins["notes"]
    lines = [ln for ln in registry.access_log_lines()[mark:] if '"GET /v2/ ' not in ln]
    assert 0 < ins["requests"] == len(lines) - 2 <= 3  # counted exactly, and never over the limit


def test_sbom_from_a_buildkit_attestation_in_the_index(tmp_path: Path, registry: Registry, run) -> None:
    repo = unique_repo("insight-buildkit")
    one = push_build(registry, repo, "one", [b"a" * 10], "2026-01-01T00:00:00Z", {})
    push_buildkit_index(registry, repo, "v1", one, spdx(OLD_PACKAGES))
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg).code == 0
    two = push_build(registry, repo, "two", [b"a" * 10, b"b" * 10], "2026-01-02T00:00:00Z", {})
    push_buildkit_index(registry, repo, "v1", two, spdx(NEW_PACKAGES))
    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    ins = json.loads(r.out)["updates"][0]["insight"]
    assert ins["sbom"]["changed"] == [{"name": "openssl", "old_version": "3.0.1", "new_version": "3.0.2"}]
    assert [(p["platform"], p["layers_new"], p["layers_shared"]) for p in ins["platforms"]] == [
        ("linux/amd64", 1, 1)
    ]
    assert ins["changes"] == [
        {"field": "created", "old": "2026-01-01T00:00:00Z", "new": "2026-01-02T00:00:00Z"}
    ]


def test_digest_set_back_by_hand_is_described_from_its_real_manifest(
    tmp_path: Path, registry: Registry, run
) -> None:
    """xcargo.lock's digest set back by hand to an older index (its platform details still the
    newer one's): what changed is read from the old digest's manifest, not from the lock's claims
    (issue 27)."""
    repo = unique_repo("insight-setback")
    old = registry.push_index(repo, "v1", ["linux/amd64", "linux/arm64/v8"], salt="a", attestation=False)
    new = registry.push_index(repo, "v1", ["linux/amd64", "linux/arm64/v8"], salt="b", attestation=False)
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg).code == 0
    lock = tmp_path / "xcargo.lock"
    assert new.digest in lock.read_text()
    lock.write_text(lock.read_text().replace(f'digest = "{new.digest}"', f'digest = "{old.digest}"'))

    r = run("update", "--config", cfg, "--dry-run", "--format", "json")
    assert r.code == 0, r.err
    [entry] = json.loads(r.out)["updates"]
    assert (entry["old_digest"], entry["new_digest"]) == (old.digest, new.digest)
    changed = {p["platform"]: (p["old_digest"], p["new_digest"]) for p in entry["platforms_changed"]}
    assert changed == {
        p: (old.children[p].digest, new.children[p].digest) for p in ("linux/amd64", "linux/arm64/v8")
    }
    layers = {
        p["platform"]: (p["layers_new"], p["layers_shared"], p["layers_gone"]) for p in entry["insight"]["platforms"]
    }
    assert layers == {"linux/amd64": (1, 0, 1), "linux/arm64/v8": (1, 0, 1)}
    assert lock.read_text().count(old.digest) == 1  # a dry run writes nothing
