"""RegistryClient on the scripted fake registry: mirror fallback, HEAD→GET, a lying
Docker-Content-Digest, 416 on a resumed blob, token auth. What a real docker-registry cannot be
made to do; the happy paths against the real one are in tests/integration/."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from lockman.errors import VerificationError
from lockman.fileio import SafeDir
from lockman.model import reference
from lockman.model.manifest import OCI_MANIFEST, Descriptor
from lockman.registry.blobs import BlobFiles, download_blob
from lockman.registry.client import NotFound, RangeNotSatisfiable, RegistryClient
from lockman.registry.registries_conf import RegistriesConf
from tests.support.fake_registry import FakeRegistry, sha256

T = TypeVar("T")
HOST, MIRROR = "registry.test", "mirror.test"


def run_client(fake: FakeRegistry, go: Callable[[RegistryClient], Awaitable[T]], conf: RegistriesConf | None = None) -> T:
    async def main() -> T:
        async with RegistryClient(transport=fake.transport, registries=conf or RegistriesConf([])) as c:
            return await go(c)

    return asyncio.run(main())


def mirrored(isolated_env: Path) -> RegistriesConf:
    """registries.conf: ``mirror.test`` first for everything on ``registry.test``."""
    (isolated_env / "registries.conf").write_text(
        f'[[registry]]\nlocation = "{HOST}"\n\n[[registry.mirror]]\nlocation = "{MIRROR}"\n'
    )
    return RegistriesConf.load()


# -- mirrors ---------------------------------------------------------------------------------------
def test_mirror_without_the_image_hands_over_to_the_location(isolated_env: Path) -> None:
    fake = FakeRegistry()
    digest = fake.put_image(HOST, "app", "v1")
    fake.status[MIRROR] = 404
    resolved = run_client(fake, lambda c: c.resolve(reference.parse(f"{HOST}/app:v1")), mirrored(isolated_env))
    assert resolved.digest == digest
    assert fake.seen("HEAD") == [f"HEAD {MIRROR}/v2/app/manifests/v1", f"HEAD {HOST}/v2/app/manifests/v1"]


def test_mirror_with_the_image_answers_alone(isolated_env: Path) -> None:
    fake = FakeRegistry()
    digest = fake.put_image(MIRROR, "app", "v1")
    resolved = run_client(fake, lambda c: c.resolve(reference.parse(f"{HOST}/app:v1")), mirrored(isolated_env))
    assert resolved.digest == digest
    assert fake.seen(host=HOST) == []  # the location is never asked


def test_failing_mirror_is_warned_about_once_and_skipped(isolated_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeRegistry()
    fake.put_image(HOST, "app", "v1")
    fake.put_image(HOST, "app", "v2", layer=b"other")
    fake.status[MIRROR] = 403

    async def both(c: RegistryClient) -> list[str]:
        return [(await c.resolve(reference.parse(f"{HOST}/app:{t}"))).digest for t in ("v1", "v2")]

    assert len(set(run_client(fake, both, mirrored(isolated_env)))) == 2
    err = capsys.readouterr().err
    assert err.count(f"warning: mirror {MIRROR} for {HOST} failed (HTTP 403)") == 1


def test_the_locations_404_is_final(isolated_env: Path) -> None:
    fake = FakeRegistry()
    fake.status[MIRROR] = 404
    with pytest.raises(NotFound):
        run_client(fake, lambda c: c.resolve(reference.parse(f"{HOST}/app:v1")), mirrored(isolated_env))


# -- HEAD, then GET ------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [405, 400, 503])
def test_head_refused_falls_back_to_a_verified_get(status: int) -> None:
    fake = FakeRegistry()
    digest = fake.put_image(HOST, "app", "v1")
    fake.head_status = status
    resolved = run_client(fake, lambda c: c.resolve(reference.parse(f"{HOST}/app:v1")))
    assert resolved.digest == digest and resolved.manifest is not None
    methods = [s.split()[0] for s in fake.seen(path="/manifests/")]
    assert methods[0] == "HEAD" and methods[-1] == "GET"


def test_head_answer_is_enough_when_it_names_a_digest() -> None:
    fake = FakeRegistry()
    digest = fake.put_image(HOST, "app", "v1")
    resolved = run_client(fake, lambda c: c.resolve(reference.parse(f"{HOST}/app:v1")))
    assert resolved.digest == digest and resolved.manifest is None
    assert fake.seen(path="/manifests/") == [f"HEAD {HOST}/v2/app/manifests/v1"]


# -- a lying Docker-Content-Digest -----------------------------------------------------------------
def test_lying_digest_header_on_a_tag_get_is_refused() -> None:
    fake = FakeRegistry()
    fake.put_image(HOST, "app", "v1")
    fake.lie_digest = "sha256:" + "0" * 64
    with pytest.raises(VerificationError, match="digest mismatch: registry's Docker-Content-Digest"):
        run_client(fake, lambda c: c.resolve(reference.parse(f"{HOST}/app:v1"), want_manifest=True))


def test_lying_digest_header_on_a_digest_get_is_refused() -> None:
    fake = FakeRegistry()
    digest = fake.put_image(HOST, "app", "v1")
    fake.lie_digest = "sha256:" + "0" * 64
    with pytest.raises(VerificationError, match=r"Docker-Content-Digest sha256:0+ does not match"):
        run_client(fake, lambda c: c.get_manifest(reference.parse(f"{HOST}/app@{digest}")))


def test_body_that_is_not_the_digest_asked_for_is_refused() -> None:
    fake = FakeRegistry()
    digest = fake.put_image(HOST, "app", "v1")
    other = fake.put_image(HOST, "app", "v2", layer=b"other")
    fake.manifests[(HOST, "app", digest)] = fake.manifests[(HOST, "app", other)]  # served under the wrong name
    fake.lie_digest = digest  # and the header agrees with the name, not the bytes
    with pytest.raises(VerificationError, match=f"digest mismatch: asked for {digest}"):
        run_client(fake, lambda c: c.get_manifest(reference.parse(f"{HOST}/app@{digest}")))


# -- blobs: Range and 416 --------------------------------------------------------------------------
def _blob_files(tmp_path: Path) -> BlobFiles:
    (tmp_path / "partial").mkdir()
    (tmp_path / "final").mkdir()
    return BlobFiles(SafeDir.open(tmp_path / "partial"), "blob", SafeDir.open(tmp_path / "final"), "blob")


def test_resume_sends_a_range_and_appends(tmp_path: Path) -> None:
    fake = FakeRegistry()
    data = bytes(range(256)) * 64
    digest = fake.put_blob(HOST, "app", data)
    files = _blob_files(tmp_path)
    (tmp_path / "partial" / "blob").write_bytes(data[:1000])
    desc = Descriptor(OCI_MANIFEST, digest, len(data))
    ref = reference.parse(f"{HOST}/app@{digest}")
    fetched = run_client(fake, lambda c: download_blob(c, ref, desc, files, what="blob"))
    assert fetched == len(data) - 1000
    assert (tmp_path / "final" / "blob").read_bytes() == data
    assert [r.headers.get("range") for r in fake.requests if "/blobs/" in r.path] == ["bytes=1000-"]


def test_416_on_resume_starts_the_blob_again(tmp_path: Path) -> None:
    fake = FakeRegistry()
    data = b"x" * 5000
    digest = fake.put_blob(HOST, "app", data)
    fake.range_status = 416
    files = _blob_files(tmp_path)
    (tmp_path / "partial" / "blob").write_bytes(data[:1000])
    desc = Descriptor(OCI_MANIFEST, digest, len(data))
    ref = reference.parse(f"{HOST}/app@{digest}")
    fetched = run_client(fake, lambda c: download_blob(c, ref, desc, files, what="blob"))
    assert fetched == len(data)
    assert (tmp_path / "final" / "blob").read_bytes() == data
    assert not (tmp_path / "partial" / "blob").exists()
    assert [r.headers.get("range") for r in fake.requests if "/blobs/" in r.path] == ["bytes=1000-", None]


def test_stream_blob_names_a_416_on_resume() -> None:
    fake = FakeRegistry()
    digest = fake.put_blob(HOST, "app", b"abc")
    fake.range_status = 416

    async def go(c: RegistryClient) -> None:
        async with c.stream_blob(reference.parse(f"{HOST}/app@{digest}"), digest, offset=1):
            pass

    with pytest.raises(RangeNotSatisfiable, match="refused to resume at byte 1"):
        run_client(fake, go)


# -- token auth ------------------------------------------------------------------------------------
def test_token_is_fetched_once_and_sent() -> None:
    fake = FakeRegistry(token_hosts={HOST})
    fake.put_image(HOST, "app", "v1")
    fake.put_image(HOST, "app", "v2", layer=b"two")

    async def both(c: RegistryClient) -> None:
        for tag in ("v1", "v2"):
            await c.resolve(reference.parse(f"{HOST}/app:{tag}"))

    run_client(fake, both)
    assert len(fake.seen(path="/token")) == 1
    heads = [r for r in fake.requests if r.method == "HEAD" and r.headers.get("authorization")]
    assert len(heads) == 2 and all(h.headers["authorization"] == "Bearer fake-registry-token" for h in heads)


def test_fake_digest_helper_matches_lockman() -> None:
    from lockman.model.manifest import sha256_digest

    assert sha256(b"abc") == sha256_digest(b"abc")
