"""lockman.registry.blobs on the scripted fake registry: every byte hashed as it streams, size and
digest refusals by class, resume with Range (and what happens when the registry or the partial
file cannot be trusted), and file_matches. Resume after 416 is in test_client.py."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from lockman.errors import DigestMismatch, RegistryError, SizeMismatch, TooLarge, VerificationError
from lockman.fileio import SafeDir
from lockman.model import reference
from lockman.model.manifest import Descriptor
from lockman.model.reference import Reference
from lockman.registry import blobs
from lockman.registry.blobs import ATTEMPTS, BlobFiles, download_blob, file_matches, hash_blob, read_blob
from lockman.registry.client import RegistryClient
from tests.support.fake_registry import OCI_LAYER, FakeRegistry, sha256
from tests.support.fifo import within_seconds

T = TypeVar("T")
HOST = "registry.test"
DATA = bytes(range(256)) * 40  # 10 240 bytes


def run(fake: FakeRegistry, go: Callable[[RegistryClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with fake.client() as c:
            return await go(c)

    return asyncio.run(main())


def blob(fake: FakeRegistry, data: bytes = DATA) -> tuple[Reference, Descriptor]:
    digest = fake.put_blob(HOST, "app", data)
    return reference.parse(f"{HOST}/app@{digest}"), Descriptor(OCI_LAYER, digest, len(data))


def serve_instead(fake: FakeRegistry, desc: Descriptor, data: bytes) -> None:
    """The registry answers ``desc``'s digest with other bytes."""
    fake.blobs[(HOST, desc.digest)] = data


def ranges(fake: FakeRegistry) -> list[str | None]:
    return [r.headers.get("range") for r in fake.requests if "/blobs/" in r.path]


@pytest.fixture
def files(tmp_path: Path) -> BlobFiles:
    (tmp_path / "partial").mkdir()
    (tmp_path / "final").mkdir()
    return BlobFiles(
        SafeDir.open(tmp_path / "partial"), "blob.part", SafeDir.open(tmp_path / "final"), "blob"
    )


def partial(tmp_path: Path) -> Path:
    return tmp_path / "partial" / "blob.part"


def final(tmp_path: Path) -> Path:
    return tmp_path / "final" / "blob"


# -- hash_blob: stream and hash, keep nothing ------------------------------------------------------
def test_hash_blob_accepts_the_blob_it_names() -> None:
    fake = FakeRegistry()
    ref, desc = blob(fake, os.urandom(3 * 1024 * 1024 + 17))  # several 1 MiB batches
    run(fake, lambda c: hash_blob(c, ref, desc, what="layer"))
    assert ranges(fake) == [None]


def test_hash_blob_other_bytes_of_the_same_size_are_a_digest_mismatch() -> None:
    fake = FakeRegistry()
    ref, desc = blob(fake)
    serve_instead(fake, desc, DATA[:-1] + b"\x00")
    with pytest.raises(DigestMismatch) as caught:
        run(fake, lambda c: hash_blob(c, ref, desc, what="layer"))
    assert caught.value.subject == "layer" and sha256(DATA[:-1] + b"\x00") in str(caught.value)


@pytest.mark.parametrize("served", [DATA + b"!", DATA[:-1]], ids=["longer", "shorter"])
def test_hash_blob_wrong_length_is_a_size_mismatch(served: bytes) -> None:
    fake = FakeRegistry()
    ref, desc = blob(fake)
    serve_instead(fake, desc, served)
    with pytest.raises(SizeMismatch):
        run(fake, lambda c: hash_blob(c, ref, desc, what="layer"))


def test_hash_blob_cut_short_every_time_is_a_registry_error_after_its_attempts() -> None:
    fake = FakeRegistry(cut_blobs_after=4096)
    ref, desc = blob(fake)
    with pytest.raises(RegistryError, match=f"download interrupted after .* of {len(DATA)} bytes") as caught:
        run(fake, lambda c: hash_blob(c, ref, desc, what="layer"))
    assert not isinstance(caught.value, VerificationError)
    assert ranges(fake) == [None] * ATTEMPTS  # hashing keeps nothing, so each try starts again
    # What arrived is counted, hashed yet or not, and no resume is promised: nothing was kept.
    assert f"interrupted after 4096 of {len(DATA)} bytes" in str(caught.value)
    assert "resume" not in str(caught.value)


# -- read_blob: small blobs into memory --------------------------------------------------------------
def test_read_blob_returns_the_verified_bytes() -> None:
    fake = FakeRegistry()
    ref, desc = blob(fake)
    assert run(fake, lambda c: read_blob(c, ref, desc, what="config")) == DATA


def test_read_blob_over_the_limit_is_too_large_before_any_request() -> None:
    fake = FakeRegistry()
    ref, desc = blob(fake)
    with pytest.raises(TooLarge, match=f"{len(DATA)} bytes exceeds the 1000-byte limit"):
        run(fake, lambda c: read_blob(c, ref, desc, what="config", limit=1000))
    assert ranges(fake) == []


def test_read_blob_refuses_other_bytes_and_more_bytes() -> None:
    fake = FakeRegistry()
    ref, desc = blob(fake)
    serve_instead(fake, desc, bytes(len(DATA)))
    with pytest.raises(DigestMismatch):
        run(fake, lambda c: read_blob(c, ref, desc, what="config"))
    serve_instead(fake, desc, DATA * 2)
    with pytest.raises(SizeMismatch):
        run(fake, lambda c: read_blob(c, ref, desc, what="config"))


def test_read_blob_cut_short_is_a_registry_error() -> None:
    fake = FakeRegistry(cut_blobs_after=100)
    ref, desc = blob(fake)
    with pytest.raises(RegistryError, match="interrupted after 100 of"):
        run(fake, lambda c: read_blob(c, ref, desc, what="config"))


# -- download_blob -----------------------------------------------------------------------------------
def test_download_lands_under_the_final_name_only(files: BlobFiles, tmp_path: Path) -> None:
    fake = FakeRegistry()
    ref, desc = blob(fake)
    assert run(fake, lambda c: download_blob(c, ref, desc, files, what="layer")) == len(DATA)
    assert final(tmp_path).read_bytes() == DATA and not partial(tmp_path).exists()


def test_download_starts_writing_the_partial_file_to_disk_before_its_fsync(
    files: BlobFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[int] = []  # the partial file's size each time writeback was started
    monkeypatch.setattr(blobs, "start_writeback", lambda fd: started.append(os.fstat(fd).st_size) or True)
    fake = FakeRegistry()
    ref, desc = blob(fake)
    run(fake, lambda c: download_blob(c, ref, desc, files, what="layer"))
    assert started and started[-1] == len(DATA)


def test_download_of_other_bytes_leaves_nothing_behind(files: BlobFiles, tmp_path: Path) -> None:
    fake = FakeRegistry()
    ref, desc = blob(fake)
    serve_instead(fake, desc, bytes(len(DATA)))
    with pytest.raises(DigestMismatch):
        run(fake, lambda c: download_blob(c, ref, desc, files, what="layer"))
    assert not final(tmp_path).exists() and not partial(tmp_path).exists()


def test_download_of_too_many_bytes_stops_and_leaves_nothing_behind(files: BlobFiles, tmp_path: Path) -> None:
    fake = FakeRegistry()
    ref, desc = blob(fake)
    serve_instead(fake, desc, DATA * 300)  # 3 MB for a 10 kB descriptor
    with pytest.raises(SizeMismatch, match="larger than its descriptor"):
        run(fake, lambda c: download_blob(c, ref, desc, files, what="layer"))
    assert not final(tmp_path).exists() and not partial(tmp_path).exists()


def test_interrupted_body_is_resumed_with_range_in_the_same_run(files: BlobFiles, tmp_path: Path) -> None:
    fake = FakeRegistry(cut_blobs_after=4096)
    ref, desc = blob(fake)  # 10 240 bytes: 4096 + 4096 + 2048
    assert run(fake, lambda c: download_blob(c, ref, desc, files, what="layer")) == len(DATA)
    assert ranges(fake) == [None, "bytes=4096-", "bytes=8192-"]
    assert final(tmp_path).read_bytes() == DATA


def test_lasting_interruption_keeps_the_prefix_for_the_next_run(files: BlobFiles, tmp_path: Path) -> None:
    fake = FakeRegistry(cut_blobs_after=2048)
    ref, desc = blob(fake)
    with pytest.raises(
        RegistryError, match=f"interrupted after 6144 of {len(DATA)} bytes.*run the command again"
    ):
        run(fake, lambda c: download_blob(c, ref, desc, files, what="layer"))
    assert partial(tmp_path).read_bytes() == DATA[:6144] and not final(tmp_path).exists()

    fake.cut_blobs_after = None  # the next run resumes where this one stopped
    fake.requests.clear()
    assert run(fake, lambda c: download_blob(c, ref, desc, files, what="layer")) == len(DATA) - 6144
    assert ranges(fake) == ["bytes=6144-"] and final(tmp_path).read_bytes() == DATA


def test_registry_that_ignores_range_sends_the_whole_blob_again(files: BlobFiles, tmp_path: Path) -> None:
    fake = FakeRegistry(ignore_range=True)
    ref, desc = blob(fake)
    partial(tmp_path).write_bytes(DATA[:3000])
    assert run(fake, lambda c: download_blob(c, ref, desc, files, what="layer")) == len(DATA)
    assert ranges(fake) == ["bytes=3000-"]
    assert final(tmp_path).read_bytes() == DATA  # not the prefix followed by the whole blob


def test_partial_longer_than_the_blob_is_discarded(files: BlobFiles, tmp_path: Path) -> None:
    fake = FakeRegistry()
    ref, desc = blob(fake)
    partial(tmp_path).write_bytes(DATA + b"junk")
    run(fake, lambda c: download_blob(c, ref, desc, files, what="layer"))
    assert ranges(fake) == [None] and final(tmp_path).read_bytes() == DATA


def test_corrupt_prefix_is_blamed_once_and_the_blob_fetched_afresh(files: BlobFiles, tmp_path: Path) -> None:
    fake = FakeRegistry()
    ref, desc = blob(fake)
    partial(tmp_path).write_bytes(b"\xff" * 3000)  # the right length for a prefix, the wrong bytes
    assert run(fake, lambda c: download_blob(c, ref, desc, files, what="layer")) == 2 * len(DATA) - 3000
    assert ranges(fake) == ["bytes=3000-", None]
    assert final(tmp_path).read_bytes() == DATA


def test_corrupt_prefix_and_a_lying_registry_is_a_digest_mismatch(files: BlobFiles, tmp_path: Path) -> None:
    fake = FakeRegistry()
    ref, desc = blob(fake)
    serve_instead(fake, desc, bytes(len(DATA)))
    partial(tmp_path).write_bytes(b"\x00" * 3000)
    with pytest.raises(DigestMismatch):
        run(fake, lambda c: download_blob(c, ref, desc, files, what="layer"))
    assert ranges(fake) == ["bytes=3000-", None]  # the fresh try is made once, then it is refused
    assert not partial(tmp_path).exists() and not final(tmp_path).exists()


def test_planted_link_at_the_partial_name_is_never_followed(files: BlobFiles, tmp_path: Path) -> None:
    fake = FakeRegistry()
    ref, desc = blob(fake)
    outside = tmp_path / "outside"
    outside.write_bytes(DATA[:3000])
    partial(tmp_path).symlink_to(outside)
    run(fake, lambda c: download_blob(c, ref, desc, files, what="layer"))
    assert outside.read_bytes() == DATA[:3000]  # neither read as a prefix nor written through
    assert ranges(fake) == [None] and final(tmp_path).read_bytes() == DATA


def test_link_at_the_final_name_is_replaced_not_followed(files: BlobFiles, tmp_path: Path) -> None:
    fake = FakeRegistry()
    ref, desc = blob(fake)
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep")
    final(tmp_path).symlink_to(outside)
    run(fake, lambda c: download_blob(c, ref, desc, files, what="layer"))
    assert outside.read_bytes() == b"keep"
    assert not final(tmp_path).is_symlink() and final(tmp_path).read_bytes() == DATA


def test_empty_blob_is_an_empty_file(files: BlobFiles, tmp_path: Path) -> None:
    fake = FakeRegistry()
    ref, desc = blob(fake, b"")
    assert run(fake, lambda c: download_blob(c, ref, desc, files, what="layer")) == 0
    assert final(tmp_path).read_bytes() == b""


# -- file_matches ------------------------------------------------------------------------------------
@pytest.fixture
def here(tmp_path: Path) -> SafeDir:
    return SafeDir.open(tmp_path)


DESC = Descriptor(OCI_LAYER, sha256(DATA), len(DATA))


def test_file_matches_the_exact_blob(here: SafeDir, tmp_path: Path) -> None:
    (tmp_path / "b").write_bytes(DATA)
    assert file_matches(here, "b", DESC)


@pytest.mark.parametrize(
    "content", [DATA[:-1], DATA + b"x", DATA[:-1] + b"\x00", b""], ids=["short", "long", "other", "empty"]
)
def test_file_that_differs_does_not_match(here: SafeDir, tmp_path: Path, content: bytes) -> None:
    (tmp_path / "b").write_bytes(content)
    assert not file_matches(here, "b", DESC)


def test_missing_file_does_not_match(here: SafeDir) -> None:
    assert not file_matches(here, "absent", DESC)


def test_link_to_the_right_bytes_does_not_match(here: SafeDir, tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(DATA)
    (tmp_path / "b").symlink_to(tmp_path / "real")
    assert not file_matches(here, "b", DESC)


def test_fifo_does_not_match_and_does_not_hang(here: SafeDir, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "b")
    assert within_seconds(lambda: file_matches(here, "b", DESC), tmp_path / "b") is False
