"""fileio's guards for files in shared directories, and the all-or-nothing pair write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lockman.fileio import SafeDir, UnsafePath, open_read, open_write, write_together


def test_pair_is_rolled_back_when_the_second_rename_fails(tmp_path: Path) -> None:
    first, second = tmp_path / "xcargo.toml", tmp_path / "xcargo.lock"
    first.write_bytes(b"old config\r\n")
    second.mkdir()  # cannot be replaced by a file: the second rename fails
    with pytest.raises(OSError) as e:
        write_together([(first, "new config\n"), (second, "new lock\n")])
    assert e.value.filename == str(second)
    assert first.read_bytes() == b"old config\r\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xcargo.lock", "xcargo.toml"]


def test_pair_created_together(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("old")
    write_together([(a, "A"), (b, b"B")])
    assert (a.read_text(), b.read_text()) == ("A", "B")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_open_write_never_goes_through_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "partial"
    link.symlink_to(victim)
    with pytest.raises(UnsafePath, match="symbolic link"):
        open_write(link, append=True)
    with open_write(link, append=False) as f:  # a fresh file replaces the link itself
        f.write(b"registry bytes")
    assert victim.read_bytes() == b"precious" and not link.is_symlink()


def test_hard_linked_partial_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    os.link(victim, tmp_path / "partial")
    with pytest.raises(UnsafePath, match="hard-linked"):
        open_write(tmp_path / "partial", append=True)
    assert victim.read_bytes() == b"precious"


def test_open_read_refuses_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "entry"
    os.mkfifo(fifo)
    with pytest.raises(UnsafePath, match="not a regular file"):
        open_read(fifo)


def test_safe_dir_refuses_links_and_files_as_subdirectories(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "file").write_text("x")
    with SafeDir.open(tmp_path) as top:
        with pytest.raises(UnsafePath, match="link: part is a symbolic link"):
            top.subdir("link", create=True, what="part")
        with pytest.raises(UnsafePath, match="file: part is not a directory"):
            top.subdir("file", create=True, what="part")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_safe_dir_keeps_writing_where_it_was_opened(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "elsewhere").mkdir()
    with SafeDir.open(tmp_path) as top, top.subdir("d") as d:
        (tmp_path / "d").rename(tmp_path / "moved")
        (tmp_path / "d").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
        assert not d.still_at(top, "d")
        with d.open_write("blob", append=False) as f:
            f.write(b"registry bytes")
        d.write_atomic("index.json", b"{}")
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert (tmp_path / "moved" / "blob").read_bytes() == b"registry bytes"
    assert (tmp_path / "moved" / "index.json").read_bytes() == b"{}"


def test_safe_dir_write_atomic_replaces_a_planted_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "index.json").symlink_to(victim)
    with SafeDir.open(tmp_path / "d") as d:
        d.write_atomic("index.json", b"{}")
        assert d.plain_file_size("index.json") == 2
    assert victim.read_bytes() == b"precious"
    assert not (tmp_path / "d" / "index.json").is_symlink()
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["index.json"]  # no temp left


def test_cache_never_writes_through_a_linked_directory(tmp_path: Path) -> None:
    from lockman.model.manifest import compute_digest
    from lockman.registry.cache import ManifestCache

    data = b'{"schemaVersion": 2}'
    digest = compute_digest(data, "sha256")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "cache" / "manifests").mkdir(parents=True)
    (tmp_path / "cache" / "manifests" / "sha256").symlink_to(elsewhere, target_is_directory=True)
    cache = ManifestCache(tmp_path / "cache")
    cache.put(digest, data)
    assert list(elsewhere.iterdir()) == []
    (elsewhere / digest[7:]).write_bytes(data)  # right bytes behind the link: still not read
    assert cache.get(digest) is None and (cache.hits, cache.misses) == (0, 1)
