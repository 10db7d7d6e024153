"""`lockman pull` read back by the tools users already run: skopeo, podman, umoci and
oci-image-tool (issue 27). Each is required where scripts/test installs it (CI), skipped elsewhere.

Images are Docker-format (v2s2 manifests and manifest lists, as `docker push` writes them) with
real gzipped tar layers, so the engines unpack them.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from lockman.model.oci_convert import ORIGINAL
from tests.support.fixtures import unique_repo
from tests.support.images import push_runnable, push_runnable_list
from tests.support.project import images_project
from tests.support.registry import OCI_INDEX, OCI_MANIFEST, Registry, require_tool

pytestmark = pytest.mark.registry


def tool(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    require_tool(argv[0])
    return subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=300)


def blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs/sha256" / digest.split(":")[1]).read_bytes()


@pytest.fixture
def podman_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A podman image store of the test's own (vfs: works in any container); podman started by
    the test or by lockman uses it, and the machine's store is never touched."""
    require_tool("podman")
    conf = tmp_path / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{tmp_path}/podman-root"\nrunroot = "{tmp_path}/podman-run"\n'
    )
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(conf))
    return conf


def test_docker_format_layout_opens_by_name_in_skopeo_podman_umoci(
    tmp_path: Path, registry: Registry, run, podman_store: Path
) -> None:
    """A Docker v2s2 image and a Docker manifest list open by name in every tool (they look up
    only OCI media types in index.json), and the locked digest is still proved from the layout."""
    base = unique_repo("tools")
    single = push_runnable(registry, f"{base}/single", "v1", {"hello.txt": b"single\n"})
    list_digest, list_bytes, children = push_runnable_list(
        registry,
        f"{base}/multi",
        "v1",
        {"amd64": {"arch.txt": b"amd64\n"}, "arm64/v8": {"arch.txt": b"arm64\n"}},
    )
    one, many = f"{registry.host}/{base}/single:v1", f"{registry.host}/{base}/multi:v1"
    cfg = images_project(tmp_path, one, many)
    assert run("update", "--config", cfg).code == 0
    out = tmp_path / "layout"
    r = run("pull", "--config", cfg, "--oci-layout", out)
    assert r.code == 0, r.err

    # index.json names OCI conversions and records the locked original, whose bytes are there.
    entries = json.loads((out / "index.json").read_text())["manifests"]
    named = {e["annotations"]["org.opencontainers.image.ref.name"]: e for e in entries}
    assert set(named) == {one, many}
    assert named[one]["mediaType"] == OCI_MANIFEST and named[many]["mediaType"] == OCI_INDEX
    assert named[one]["annotations"][ORIGINAL] == single.digest
    assert named[many]["annotations"][ORIGINAL] == list_digest
    assert blob(out, single.digest) == single.manifest and blob(out, list_digest) == list_bytes
    for path in (out / "blobs/sha256").iterdir():  # every blob is what its name says
        assert "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == f"sha256:{path.name}"
    converted = json.loads(blob(out, named[one]["digest"]))
    assert converted["annotations"][ORIGINAL] == single.digest
    assert [x["digest"] for x in converted["layers"]] == single.layer_digests
    assert converted["config"]["digest"] == single.config_digest  # the same image ID
    index = json.loads(blob(out, named[many]["digest"]))
    for child in index["manifests"]:
        arch = child["platform"]["architecture"] + ("/v8" if child["platform"].get("variant") else "")
        assert child["mediaType"] == OCI_MANIFEST
        assert json.loads(blob(out, child["digest"]))["annotations"][ORIGINAL] == children[arch].digest

    # skopeo: by name, for both; the digest it shows is the conversion's.
    insp = tool("skopeo", "inspect", f"oci:{out}:{one}")
    assert insp.returncode == 0, insp.stderr
    assert json.loads(insp.stdout)["Digest"] == named[one]["digest"]
    insp = tool("skopeo", "inspect", "--override-arch", "arm64", f"oci:{out}:{many}")
    assert insp.returncode == 0, insp.stderr
    assert json.loads(insp.stdout)["Architecture"] == "arm64"

    # podman: pulls by name; the image ID is the config's, as a pull from the registry gives.
    for name, config in ((one, single.config_digest), (many, children["amd64"].config_digest)):
        p = tool("podman", "pull", "-q", "--arch", "amd64", f"oci:{out}:{name}")
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == config.split(":")[1]

    # umoci: lists both names, and unpacks the single-platform one.
    ls = tool("umoci", "ls", "--layout", str(out))
    assert ls.returncode == 0, ls.stderr
    assert set(ls.stdout.split()) == {one, many}
    stat = tool("umoci", "stat", "--image", f"{out}:{one}")
    assert stat.returncode == 0, stat.stderr
    bundle = tmp_path / "bundle"
    unpack = tool("umoci", "unpack", "--rootless", "--image", f"{out}:{one}", str(bundle))
    assert unpack.returncode == 0, unpack.stderr
    assert (bundle / "rootfs/hello.txt").read_bytes() == b"single\n"

    # oci-image-tool: the whole layout, every name, is a valid OCI image layout.
    valid = tool("oci-image-tool", "validate", "--type", "image", str(out))
    assert valid.returncode == 0, valid.stdout + valid.stderr

    # umoci takes one manifest per name (an index with two platforms is "ambiguous" to it, OCI
    # or not): with --platform the list's arm64 child is named, converted, and unpacks.
    arm = tmp_path / "arm64"
    r = run("pull", many, "--config", cfg, "--oci-layout", arm, "--platform", "linux/arm64")
    assert r.code == 0, r.err
    (entry,) = json.loads((arm / "index.json").read_text())["manifests"]
    assert entry["mediaType"] == OCI_MANIFEST and entry["platform"]["architecture"] == "arm64"
    assert entry["annotations"][ORIGINAL] == children["arm64/v8"].digest
    unpack = tool("umoci", "unpack", "--rootless", "--image", f"{arm}:{many}", str(tmp_path / "b2"))
    assert unpack.returncode == 0, unpack.stderr
    assert (tmp_path / "b2/rootfs/arch.txt").read_bytes() == b"arm64\n"
    valid = tool("oci-image-tool", "validate", "--type", "image", str(arm))
    assert valid.returncode == 0, valid.stdout + valid.stderr

    # Pulled again: the same conversions (same digests), nothing fetched, index.json unchanged.
    before = (out / "index.json").read_bytes()
    r = run("pull", "--config", cfg, "--oci-layout", out)
    assert r.code == 0, r.err
    assert "0 bytes fetched" in r.out
    assert (out / "index.json").read_bytes() == before


def podman_image(ref: str) -> tuple[str, list[str]]:
    p = tool("podman", "image", "inspect", "--format", "{{.Id}} {{json .RepoDigests}}", ref)
    assert p.returncode == 0, p.stderr
    image_id, _, digests = p.stdout.strip().partition(" ")
    return image_id, json.loads(digests)


def test_podman_pulls_over_plain_http_then_tags_as_configured(
    tmp_path: Path, registry: Registry, run, podman_store: Path
) -> None:
    """The registry speaks plain HTTP (loopback, as lockman allows): podman is given
    --tls-verify=false, the image gets the configured tag once podman's RepoDigests hold the
    locked digest, and a tag that named other bytes before now names the locked image."""
    base = unique_repo("engine")
    list_digest, _, children = push_runnable_list(
        registry, f"{base}/rust", "1.70", {"amd64": {"v": b"new\n"}, "arm64/v8": {"v": b"new-arm\n"}}
    )
    other = push_runnable(registry, f"{base}/other", "v1", {"v": b"other\n"})
    name = f"{registry.host}/{base}/rust"
    cfg = images_project(tmp_path, f"{name}:1.70")
    assert run("update", "--config", cfg).code == 0
    # The configured tag names other bytes locally (an older pull, another build).
    p = tool("podman", "pull", "-q", "--tls-verify=false", f"{registry.host}/{base}/other:v1")
    assert p.returncode == 0, p.stderr
    assert tool("podman", "tag", p.stdout.strip(), f"{name}:1.70").returncode == 0

    r = run("pull", "--config", cfg, "--runtime", "podman", "--platform", "linux/amd64")
    assert r.code == 0, r.err
    assert f"+ podman pull --tls-verify=false --platform linux/amd64 {name}@{list_digest}" in r.out
    assert f"{name}:1.70 -> {list_digest} (podman RepoDigests confirm it)" in r.out
    image_id, digests = podman_image(f"{name}:1.70")
    assert image_id == children["amd64"].config_digest.split(":")[1]
    assert f"{name}@{list_digest}" in digests
    assert other.config_digest.split(":")[1] != image_id
