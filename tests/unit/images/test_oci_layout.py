"""The OCI layout directory on its own: what it refuses on open, what index.json it accepts,
that blobs are only ever replaced by name, and that it gives back every descriptor it opens."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lockman.errors import InputError
from lockman.fileio import UnsafePath
from lockman.images.oci_layout import REF_NAME, OciLayout
from lockman.model.manifest import OCI_MANIFEST, Descriptor, sha256_digest

D1 = "sha256:" + "1" * 64
MARKER = '{"imageLayoutVersion": "1.0.0"}'


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def layout_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    (out / "oci-layout").write_text(MARKER)
    return out


def test_a_file_is_not_a_layout(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="file: not a directory"):
        OciLayout.open(tmp_path / "file")


def test_a_wrong_marker_is_refused(layout_dir: Path) -> None:
    (layout_dir / "oci-layout").write_text('{"imageLayoutVersion": "9"}')
    with pytest.raises(InputError, match=r"oci-layout: not an OCI image layout 1\.0\.0 marker"):
        OciLayout.open(layout_dir)
    assert not (layout_dir / "blobs").exists()


@pytest.mark.parametrize("part", [".lockman-partial", "index.json", "blobs/sha256"])
def test_linked_parts_are_refused_on_open_before_anything_is_made(
    tmp_path: Path, layout_dir: Path, part: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (layout_dir / part).parent.mkdir(parents=True, exist_ok=True)
    (layout_dir / part).symlink_to(elsewhere, target_is_directory=True)
    before = sorted(p.name for p in layout_dir.iterdir())
    with pytest.raises(UnsafePath, match=f"{part} is a symbolic link"):
        OciLayout.open(layout_dir)
    assert sorted(p.name for p in layout_dir.iterdir()) == before


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "not an OCI image index"),
        ('{"manifests": {}}', "not an OCI image index"),
    ],
)
def test_a_broken_index_is_named(layout_dir: Path, text: str, problem: str) -> None:
    (layout_dir / "index.json").write_text(text)
    with OciLayout.open(layout_dir) as layout, pytest.raises(InputError, match=f"index.json: {problem}"):
        layout.set_ref("x:1", Descriptor(OCI_MANIFEST, D1, 1))
    assert (layout_dir / "index.json").read_text() == text


def test_an_index_without_manifests_gets_them(layout_dir: Path) -> None:
    (layout_dir / "index.json").write_text('{"schemaVersion": 2}')
    with OciLayout.open(layout_dir) as layout:
        layout.set_ref("x:1", Descriptor(OCI_MANIFEST, D1, 1))
    doc = json.loads((layout_dir / "index.json").read_text())
    assert [m["annotations"][REF_NAME] for m in doc["manifests"]] == ["x:1"]


def test_blobs_are_replaced_by_name_never_written_through(tmp_path: Path, layout_dir: Path) -> None:
    data = b'{"schemaVersion": 2}'
    digest = sha256_digest(data)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (layout_dir / "blobs" / "sha256").mkdir(parents=True)
    blob = layout_dir / "blobs" / "sha256" / digest[7:]
    blob.symlink_to(victim)
    with OciLayout.open(layout_dir) as layout:
        desc = Descriptor(OCI_MANIFEST, digest, len(data))
        assert not layout.has_blob(desc)  # a link, even to the right bytes, is not the blob
        layout.put_verified_bytes(digest, data)
        assert layout.has_blob(desc) and layout.read_blob(digest, 100) == data
        layout.discard_blob(digest)
        assert not blob.exists() and not blob.is_symlink()
        blob.symlink_to(victim)
        layout.discard_blob(digest)  # a planted link is removed, its target untouched
    assert not blob.is_symlink() and victim.read_bytes() == b"precious"


def test_every_directory_opened_is_closed(tmp_path: Path, layout_dir: Path) -> None:
    before = _open_fds()
    with OciLayout.open(layout_dir) as layout:
        layout.blob_files(D1)  # opens blobs/sha256 and .lockman-partial as well
        assert _open_fds() > before
    assert _open_fds() == before
    (layout_dir / "oci-layout").write_text("{}")
    with pytest.raises(InputError):
        OciLayout.open(layout_dir)
    (layout_dir / "oci-layout").write_text(MARKER)
    (layout_dir / "blobs" / "sha512").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(UnsafePath):
        OciLayout.open(layout_dir)
    assert _open_fds() == before  # failed opens give back what they took


def test_a_failed_run_removes_only_the_blobs_it_added(layout_dir: Path) -> None:
    """What pull does on failure: the names there before stay (even a stray file in blobs/),
    index.json is not touched, the blobs this run added go."""
    old, new = b"old", b"new"
    (layout_dir / "blobs/sha256").mkdir(parents=True)
    (layout_dir / "blobs/sha256" / sha256_digest(old).split(":")[1]).write_bytes(old)
    (layout_dir / "blobs/stray").write_text("not a directory")
    (layout_dir / "index.json").write_text('{"schemaVersion": 2, "manifests": []}\n')
    with OciLayout.open(layout_dir) as layout:
        before = layout.blob_names()
        layout.put_verified_bytes(sha256_digest(new), new)
        assert len(layout.blob_names()) == len(before) + 1
        layout.remove_blobs_except(before)
        assert layout.blob_names() == before
    assert sorted(p.name for p in (layout_dir / "blobs/sha256").iterdir()) == [sha256_digest(old).split(":")[1]]
    assert (layout_dir / "blobs/stray").read_text() == "not a directory"
    assert (layout_dir / "index.json").read_text() == '{"schemaVersion": 2, "manifests": []}\n'


def test_set_refs_names_every_image_in_one_write(layout_dir: Path) -> None:
    d2 = "sha256:" + "2" * 64
    with OciLayout.open(layout_dir) as layout:
        layout.set_ref("a:1", Descriptor(OCI_MANIFEST, D1, 1))
        layout.set_refs({"b:1": Descriptor(OCI_MANIFEST, D1, 1), "a:1": Descriptor(OCI_MANIFEST, d2, 1)})
    index = json.loads((layout_dir / "index.json").read_text())
    assert [(m["annotations"][REF_NAME], m["digest"]) for m in index["manifests"]] == [("a:1", d2), ("b:1", D1)]
