"""RegistryClient on the scripted fake registry: mirror fallback, HEAD→GET, a lying
Docker-Content-Digest, 416 on a resumed blob, token auth. What a real docker-registry cannot be
made to do; the happy paths against the real one are in tests/integration/."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from lockman.errors import (
    AuthError,
    DescriptorMismatch,
    DigestMismatch,
    RegistryError,
    TooLarge,
    UnsupportedMediaType,
    VerificationError,
)
from lockman.fileio import SafeDir
from lockman.model import reference
from lockman.model.manifest import (
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    MAX_MANIFEST_BYTES,
    OCI_MANIFEST,
    Descriptor,
)
from lockman.registry import client as client_module
from lockman.registry.blobs import BlobFiles, download_blob
from lockman.registry.client import NotFound, RangeNotSatisfiable, RegistryClient
from lockman.registry.registries_conf import RegistriesConf
from lockman.registry.retry import RetryPolicy
from tests.support.fake_registry import FakeRegistry, sha256

T = TypeVar("T")
HOST, MIRROR = "registry.test", "mirror.test"


def run_client(fake: FakeRegistry, go: Callable[[RegistryClient], Awaitable[T]], conf: RegistriesConf | None = None) -> T:
    async def main() -> T:
        async with fake.client(registries=conf or RegistriesConf([])) as c:
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


# -- errors: the class is the kind, the fields are the facts --------------------------------------
def test_lying_digest_header_is_a_digest_mismatch_about_the_image() -> None:
    fake = FakeRegistry()
    digest = fake.put_image(HOST, "app", "v1")
    fake.lie_digest = "sha256:" + "0" * 64
    ref = reference.parse(f"{HOST}/app@{digest}")
    with pytest.raises(DigestMismatch) as caught:
        run_client(fake, lambda c: c.get_manifest(ref))
    assert caught.value.subject == ref.familiar() and caught.value.kind == "digest-mismatch"
    assert str(caught.value).startswith(f"{ref.familiar()}: registry's Docker-Content-Digest")


def test_schema1_is_an_unsupported_media_type_on_head_and_on_get() -> None:
    fake = FakeRegistry()
    digest = fake.put_manifest(HOST, "app", "v1", b'{"schemaVersion": 1}', DOCKER_SCHEMA1_SIGNED)
    with pytest.raises(UnsupportedMediaType, match="Docker schema 1 manifests are not supported"):
        run_client(fake, lambda c: c.resolve(reference.parse(f"{HOST}/app:v1")))
    with pytest.raises(UnsupportedMediaType) as caught:
        run_client(fake, lambda c: c.get_manifest(reference.parse(f"{HOST}/app@{digest}")))
    assert not isinstance(caught.value, DigestMismatch)


def test_content_type_that_is_not_the_body_is_a_descriptor_mismatch() -> None:
    fake = FakeRegistry()
    body, _ = fake.manifests[(HOST, "app", fake.put_image(HOST, "app", "v1"))]  # says OCI in its body
    fake.manifests[(HOST, "app", "v1")] = (body, DOCKER_MANIFEST)
    with pytest.raises(DescriptorMismatch, match="registry says Content-Type"):
        run_client(fake, lambda c: c.resolve(reference.parse(f"{HOST}/app:v1"), want_manifest=True))


def test_over_size_manifest_is_too_large() -> None:
    fake = FakeRegistry()
    fake.put_manifest(HOST, "app", "v1", b" " * (MAX_MANIFEST_BYTES + 1))
    with pytest.raises(TooLarge, match=f"manifest declares {MAX_MANIFEST_BYTES + 1} bytes") as caught:
        run_client(fake, lambda c: c.get_manifest(reference.parse(f"{HOST}/app:v1")))
    assert caught.value.subject == f"{HOST}/app:v1"


def test_not_found_carries_status_code_and_registry() -> None:
    fake = FakeRegistry()
    with pytest.raises(NotFound) as caught:
        run_client(fake, lambda c: c.get_manifest(reference.parse(f"{HOST}/app:v1")))
    e = caught.value
    assert (e.subject, e.registry, e.status, e.code) == (f"{HOST}/app:v1", HOST, 404, "MANIFEST_UNKNOWN")
    assert str(e) == f"{HOST}/app:v1: manifest unknown to {HOST}"
    assert e.with_subject(f"{HOST}/app:v1") is e


def test_denied_is_an_auth_error_that_names_the_image() -> None:
    fake = FakeRegistry()
    fake.status[HOST] = 403
    with pytest.raises(AuthError) as caught:
        run_client(fake, lambda c: c.get_manifest(reference.parse(f"{HOST}/app:v1")))
    assert (caught.value.status, caught.value.subject) == (403, f"{HOST}/app:v1")
    assert str(caught.value) == f"{HOST}: access to {HOST}/app:v1 denied"


def test_lasting_5xx_carries_status_and_attempts_and_says_them() -> None:
    fake = FakeRegistry()
    fake.status[HOST] = 503
    policy = RetryPolicy(attempts=3, wait_initial=0.001, wait_max=0.002, wait_jitter=0)

    async def go() -> None:
        async with fake.client(retry=policy) as c:
            await c.get_manifest(reference.parse(f"{HOST}/app:v1"))

    with pytest.raises(RegistryError) as caught:
        asyncio.run(go())
    e = caught.value
    assert (e.status, e.attempts, e.registry, e.subject) == (503, 3, HOST, f"{HOST}/app:v1")
    assert str(e) == f"{HOST}/app:v1: HTTP 503 (gave up after 3 attempts)"


def _ssl_failure(reason: str | None, text: str) -> httpx.ConnectError:
    cause = ssl.SSLError(1, text)
    cause.reason = reason  # type: ignore[misc]  # what OpenSSL's error queue said
    try:
        raise httpx.ConnectError(text) from cause
    except httpx.ConnectError as e:
        return e


def test_plain_http_is_told_by_openssls_reason_not_its_text() -> None:
    suspected = client_module._network_error(HOST, _ssl_failure("WRONG_VERSION_NUMBER", "handshake failed"))
    assert isinstance(suspected, client_module.HandshakeFailed) and suspected.plain_http
    assert str(suspected) == f"{HOST}: cannot connect: handshake failed"
    other = client_module._network_error(HOST, _ssl_failure("SOMETHING_ELSE", "[SSL] wrong version number"))
    assert isinstance(other, client_module.HandshakeFailed) and not other.plain_http


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
