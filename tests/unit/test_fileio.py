"""fileio's guards for files in shared directories, and the all-or-nothing pair write."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from lockman.fileio import SafeDir, UnsafePath, open_read, start_writeback, write_atomic, write_together


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
    with SafeDir.open(tmp_path) as d, pytest.raises(UnsafePath, match="symbolic link"):
        d.open_write("partial", append=True)
    with SafeDir.open(tmp_path) as d, d.open_write("partial", append=False) as f:  # replaces the link
        f.write(b"registry bytes")
    assert victim.read_bytes() == b"precious" and not link.is_symlink()


def test_hard_linked_partial_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    os.link(victim, tmp_path / "partial")
    with SafeDir.open(tmp_path) as d, pytest.raises(UnsafePath, match="hard-linked"):
        d.open_write("partial", append=True)
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


# -- SafeDir, one operation at a time ----------------------------------------------------------
def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_safe_dir_notices_a_swap_for_a_link_another_directory_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "other").mkdir()
    with SafeDir.open(tmp_path) as top, top.subdir("d") as d:
        assert d.still_at(top, "d")
        (tmp_path / "d").rename(tmp_path / "moved")
        assert not d.still_at(top, "d")  # gone
        (tmp_path / "d").symlink_to(tmp_path / "moved", target_is_directory=True)
        assert not d.still_at(top, "d")  # a link, even to the very directory
        (tmp_path / "d").unlink()
        (tmp_path / "other").rename(tmp_path / "d")
        assert not d.still_at(top, "d")  # another real directory


def test_safe_dir_reads_and_sizes_only_plain_files(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"12345")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    (tmp_path / "dir").mkdir()
    os.mkfifo(tmp_path / "fifo")
    with SafeDir.open(tmp_path) as d:
        assert d.plain_file_size("file") == 5
        assert [d.plain_file_size(n) for n in ("link", "dir", "fifo", "missing")] == [None] * 4
        with pytest.raises(UnsafePath, match="link: is a symbolic link"):
            d.open_read("link")
        with pytest.raises(UnsafePath, match="fifo: not a regular file"):
            d.open_read("fifo")  # and without blocking


def test_safe_dir_fresh_write_replaces_a_planted_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "partial").symlink_to(victim)
    with SafeDir.open(tmp_path / "d") as d:
        with d.open_write("partial", append=False) as f:
            f.write(b"new")
        with pytest.raises(UnsafePath):
            (tmp_path / "d" / "partial2").symlink_to(victim)
            d.open_write("partial2", append=True)
    assert victim.read_bytes() == b"precious"
    assert (tmp_path / "d" / "partial").read_bytes() == b"new"


def test_safe_dir_names_a_missing_subdirectory_and_closes_what_it_opens(tmp_path: Path) -> None:
    before = _fds()
    with SafeDir.open(tmp_path) as top:
        with pytest.raises(FileNotFoundError) as caught:
            top.subdir("missing")
        assert caught.value.filename == str(tmp_path / "missing")
        with top.subdir("made", create=True):
            pass
    assert _fds() == before and (tmp_path / "made").is_dir()


def test_write_atomic_into_a_missing_directory_fails_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(OSError) as caught:
        write_atomic(tmp_path / "missing" / "index.json", b"{}")
    assert caught.value.filename == str(tmp_path / "missing" / "index.json")


@pytest.mark.parametrize("held", [False, True])
def test_a_failed_atomic_write_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held: bool
) -> None:
    target = tmp_path / "index.json"
    target.write_bytes(b"old")
    failing = "fchmod" if not held else "replace"

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    with SafeDir.open(tmp_path) as d:
        monkeypatch.setattr(os, failing, boom)
        with pytest.raises(OSError) as caught:
            if held:
                d.write_atomic("index.json", b"new")
            else:
                write_atomic(target, b"new")
        monkeypatch.undo()
    assert caught.value.filename == str(target) and "No space left" in str(caught.value)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json"]


def test_cache_entries_are_checked_on_the_way_in_and_out(tmp_path: Path) -> None:
    from lockman.model.manifest import compute_digest
    from lockman.registry.cache import ManifestCache

    cache = ManifestCache(tmp_path / "new" / "cache")  # made on the first put
    data = b'{"schemaVersion": 2}'
    digest = compute_digest(data, "sha256")
    cache.put(digest, data)
    assert cache.get(digest) == data
    big = b" " * (ManifestCache.LIMIT + 1)
    big_digest = compute_digest(big, "sha256")
    cache.put(big_digest, big)  # over the limit: not stored
    cache.put("sha256:short", data)  # not a digest: not stored
    entries = tmp_path / "new" / "cache" / "manifests" / "sha256"
    assert sorted(p.name for p in entries.iterdir()) == [digest[7:]]
    (entries / big_digest[7:]).write_bytes(big)  # planted: the right hash, but too big
    victim = tmp_path / "victim"
    victim.write_bytes(data)
    (entries / digest[7:]).unlink()
    (entries / digest[7:]).symlink_to(victim)  # planted: a link to the right bytes
    assert cache.get(big_digest) is None and cache.get(digest) is None
    assert sorted(p.name for p in entries.iterdir()) == []  # both removed, the link's target kept
    assert victim.read_bytes() == data


# -- files the user names (registries.conf, config.json, auth.json, xcargo.toml, xcargo.lock) ----


def test_read_bounded_accepts_dev_null_and_refuses_what_never_ends(tmp_path: Path) -> None:
    from lockman.errors import InputError
    from lockman.fileio import read_bounded

    assert read_bounded(Path("/dev/null"), limit=10, what="a thing") == b""
    assert read_bounded(tmp_path / "absent", limit=10, what="a thing") is None
    (tmp_path / "ten").write_bytes(b"0123456789")
    assert read_bounded(tmp_path / "ten", limit=10, what="a thing") == b"0123456789"
    with pytest.raises(InputError, match=r"ten: larger than 0 MiB; not a thing"):
        read_bounded(tmp_path / "ten", limit=9, what="a thing")
    with pytest.raises(InputError, match=r"^/dev/zero: larger than 1 MiB; not a thing$"):
        read_bounded(Path("/dev/zero"), limit=1 << 20, what="a thing")
    os.mkfifo(tmp_path / "fifo")  # nobody writes: reading would block forever
    with pytest.raises(InputError, match=r"fifo: not a regular file; not a thing"):
        read_bounded(tmp_path / "fifo", limit=10, what="a thing")
    with pytest.raises(InputError, match=r"not a regular file"):
        read_bounded(tmp_path, limit=10, what="a thing")


def test_xcargo_files_named_as_devices(tmp_path: Path) -> None:
    """xcargo.lock as /dev/null is an empty lock; /dev/zero is bad input, not a hang or a MemoryError."""
    from lockman.errors import InputError
    from lockman.fileio import read_utf8

    assert read_utf8(Path("/dev/null")) == ""
    with pytest.raises(InputError, match=r"^/dev/zero: larger than 64 MiB; not a TOML file$"):
        read_utf8(Path("/dev/zero"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_start_writeback_reaches_the_kernel(tmp_path: Path) -> None:
    with open(tmp_path / "f", "wb") as f:
        f.write(b"x" * (1 << 20))
        f.flush()
        assert start_writeback(f.fileno()) is True
    r, w = os.pipe()
    try:  # the kernel's own answer for a pipe (ESPIPE): asked, refused, nothing raised
        assert start_writeback(w) is False
    finally:
        os.close(r)
        os.close(w)
