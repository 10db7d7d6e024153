"""Pure parts of pulling: platform matching, lockfile kinds, the layout writer, the cache."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lockman.errors import InputError
from lockman.images.oci_layout import REF_NAME, OciLayout
from lockman.model import lockfile
from lockman.model.lockfile import LockedImage, Lockfile
from lockman.model.manifest import OCI_MANIFEST, Descriptor, Platform, sha256_digest
from lockman.model.platforms import matches, parse_platform, select
from lockman.registry.cache import ManifestCache

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


def desc(digest: str, platform: str | None, **annotations: str) -> Descriptor:
    return Descriptor(OCI_MANIFEST, digest, 1, Platform.parse(platform) if platform else None, annotations)


@pytest.mark.parametrize(
    ("wanted", "candidate", "ok"),
    [
        ("linux/amd64", "linux/amd64", True),
        ("linux/arm64", "linux/arm64/v8", True),  # arm64 means arm64/v8
        ("linux/arm64/v8", "linux/arm64", True),
        ("linux/arm/v7", "linux/arm/v6", False),
        ("linux/arm", "linux/arm/v6", False),  # arm means arm/v7 (containerd)
        ("linux/amd64", "linux/amd64/v3", False),  # no variant asked: no other variant
        ("linux/amd64", "windows/amd64", False),
        ("linux/amd64", "linux/arm64", False),  # Renovate matches architecture only; we do not
        ("linux/aarch64", "linux/arm64/v8", True),
    ],
)
def test_platform_matching(wanted: str, candidate: str, ok: bool) -> None:
    assert matches(Platform.parse(wanted), Platform.parse(candidate)) is ok


def test_select_prefers_exact_and_skips_attestations() -> None:
    children = [
        desc(D3, "unknown/unknown", **{"vnd.docker.reference.type": "attestation-manifest"}),
        desc(D1, "linux/arm/v6"),
        desc(D2, "linux/arm/v7"),
    ]
    assert select(children, Platform.parse("linux/arm")).digest == D2  # arm defaults to v7
    assert select(children, Platform.parse("linux/arm/v6")).digest == D1
    assert select(children, Platform.parse("unknown/unknown")) is None
    with pytest.raises(InputError) as caught:
        parse_platform("linux")
    # the model names the value, not the flag: the caller that read --platform names that
    assert caught.value.subject is None
    assert str(caught.value) == "invalid platform 'linux': expected os/arch[/variant] (name both)"
    assert str(caught.value.with_subject("--platform")).startswith("--platform: invalid platform 'linux'")


def test_lockfile_kind_round_trip_and_backward_compatible() -> None:
    lock = Lockfile(
        (
            LockedImage(
                "rust",
                "1.70",
                D1,
                OCI_MANIFEST,
                "container.image",
                platform="linux/arm64/v8",
                index_digest=D2,
            ),
            LockedImage("musl", "v1", D3, OCI_MANIFEST, "x"),
        )
    )
    text = lockfile.dumps(lock)
    assert text.count('kind = "platform"') == 1
    assert (
        f'name = "rust"\ntag = "1.70"\ndigest = "{D1}"\nkind = "platform"\nplatform = "linux/arm64/v8"\n'
        in text
    )
    back = lockfile.loads(text)
    assert back == lock.sorted()
    assert lockfile.dumps(back) == text  # deterministic
    assert [i.kind for i in back.images] == ["tag", "platform"]
    old = f'version = 1\n[[image]]\nname = "rust"\ntag = "1"\ndigest = "{D1}"\n'
    assert lockfile.loads(old).images[0].kind == "tag"  # lockfiles from before kinds still read


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('kind = "weird"', "image[0].kind: unknown kind"),
        ('kind = "platform"', "image[0].platform: missing"),
        ('platform = "linux/amd64"', 'only allowed with kind = "platform"'),
        ('kind = "platform"\nplatform = "linux"', "invalid platform"),
        ('kind = "platform"\nplatform = "linux/amd64"\nindex-digest = "sha256:x"', "index-digest"),
    ],
)
def test_lockfile_kind_errors(extra: str, problem: str) -> None:
    text = f'version = 1\n[[image]]\nname = "rust"\ntag = "1"\ndigest = "{D1}"\n{extra}\n'
    with pytest.raises(InputError, match=re.escape(problem)):
        lockfile.loads(text)


def test_layout_refs_replace_and_refuse_foreign_dirs(tmp_path: Path) -> None:
    layout = OciLayout.open(tmp_path / "out")
    assert json.loads((tmp_path / "out/oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    layout.set_ref("b:1", Descriptor(OCI_MANIFEST, D1, 10))
    layout.set_ref("a:1", Descriptor(OCI_MANIFEST, D2, 10, Platform("linux", "arm64", "v8")))
    layout.set_ref("b:1", Descriptor(OCI_MANIFEST, D3, 10))
    index = json.loads((tmp_path / "out/index.json").read_text())
    assert [(m["annotations"][REF_NAME], m["digest"]) for m in index["manifests"]] == [
        ("a:1", D2),
        ("b:1", D3),
    ]
    assert index["manifests"][0]["platform"] == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    with pytest.raises(AssertionError):
        layout.put_verified_bytes(D1, b"not what D1 names")
    assert not any((tmp_path / "out/blobs").rglob("*1111*"))

    (tmp_path / "other").mkdir()
    (tmp_path / "other/file.txt").write_text("mine")
    with pytest.raises(InputError, match="not an OCI image layout"):
        OciLayout.open(tmp_path / "other")


def test_cache_rehashes_on_read(tmp_path: Path) -> None:
    cache = ManifestCache(tmp_path)
    data = b'{"schemaVersion": 2}'
    digest = sha256_digest(data)
    cache.put(digest, data)
    cache.put(D1, data)  # bytes that do not hash to the key are never stored
    assert cache.get(digest) == data and cache.get(D1) is None
    path = tmp_path / "manifests/sha256" / digest.split(":")[1]
    path.write_bytes(b"tampered")
    assert cache.get(digest) is None and not path.exists()


@pytest.mark.parametrize(
    "bad", ["linux /arm", "linux/&arm", "/linux/arm", "linux/arm/", "linux/arm/foo/bar", "arm"]
)
def test_malformed_platform_is_exit_2_through_the_cli(tmp_path, run, bad: str) -> None:
    """containerd's TestParseSelectorInvalid inputs (and a lone architecture): usage errors, not drift."""
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text('[container]\nimage = "127.0.0.1:9/x/app:1"\n')  # never contacted
    r = run("update", "--config", cfg, "--platform", bad)
    assert r.code == 2 and "invalid platform" in r.err and "Traceback" not in r.err, r.err
    assert not (tmp_path / "xcargo.lock").exists()


def test_containerd_platform_normalisation() -> None:
    """The issue's cases: armel, i386, x86_64/aarch64 in any case, arm64/v9.0, no-variant matching."""
    assert str(parse_platform("linux/armel")) == "linux/arm/v6"
    assert str(parse_platform("linux/i386")) == "linux/386"
    assert str(parse_platform("Linux/X86_64")) == "linux/amd64"
    assert str(parse_platform("linux/AARCH64")) == "linux/arm64"
    assert matches(parse_platform("linux/arm64/v9"), Platform("linux", "arm64", "v9.0"))
    assert not matches(parse_platform("linux/amd64"), Platform("linux", "amd64", "v3"))
    only_v3 = [desc(D1, "linux/amd64/v3")]
    assert select(only_v3, parse_platform("linux/amd64")) is None  # containerd: no variant, no match
