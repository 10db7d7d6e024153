"""Endpoints: mirrors in registries.conf order before the location, handing over when they cannot
help, a warning (through logging) once per failing mirror, and the per-host request limits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lockman import console
from lockman.errors import RegistryError
from lockman.model import reference
from lockman.model.reference import Reference
from lockman.registry.endpoints import DEFAULT_CONCURRENCY, DEFAULT_H2_CONCURRENCY, Endpoints
from lockman.registry.registries_conf import RegistriesConf

HOST, MIRROR, DIGESTS = "registry.test", "mirror.test", "digests.test"
D = "sha256:" + "d" * 64


@pytest.fixture
def conf(isolated_env: Path) -> RegistriesConf:
    """``mirror.test`` for everything on ``registry.test``, then ``digests.test`` for digests only."""
    (isolated_env / "registries.conf").write_text(
        f'[[registry]]\nlocation = "{HOST}"\n\n'
        f'[[registry.mirror]]\nlocation = "{MIRROR}"\n\n'
        f'[[registry.mirror]]\nlocation = "{DIGESTS}"\npull-from-mirror = "digest-only"\n'
    )
    return RegistriesConf.load()


@pytest.fixture
def normal_console() -> Iterator[None]:
    """The CLI's logging set-up at the default verbosity, restored afterwards."""
    logger = logging.getLogger("lockman")
    level, verbosity = logger.level, console.verbosity()
    console.set_verbosity()
    console.configure_logging()
    yield
    logger.setLevel(level)
    console.set_verbosity(verbose=verbosity == console.VERBOSE, quiet=verbosity == console.QUIET)


def test_mirrors_in_order_then_the_location(conf: RegistriesConf) -> None:
    eps = Endpoints(conf, None)
    by_tag = eps.endpoints(reference.parse(f"{HOST}/app:1"))
    assert [(e.host, e.mirror) for e in by_tag] == [(MIRROR, True), (HOST, False)]
    by_digest = eps.endpoints(reference.parse(f"{HOST}/app@{D}"))
    assert [e.host for e in by_digest] == [MIRROR, DIGESTS, HOST]


def go(eps: Endpoints, ref: Reference, answers: dict[str, int | Exception]) -> tuple[int, list[str]]:
    """first_useful over scripted endpoints; the final status and who was asked (retry or not)."""
    asked: list[str] = []

    async def send(where: Reference, retry: bool) -> httpx.Response:
        asked.append(f"{where.registry} retry={retry}")
        a = answers[where.registry]
        if isinstance(a, Exception):
            raise a
        return httpx.Response(a)

    return asyncio.run(eps.first_useful(ref, send)).status_code, asked


def test_a_mirror_that_cannot_help_hands_over(conf: RegistriesConf) -> None:
    ref = reference.parse(f"{HOST}/app@{D}")
    answers: dict[str, int | Exception] = {MIRROR: 404, DIGESTS: RegistryError("cannot connect"), HOST: 200}
    assert go(Endpoints(conf, None), ref, answers) == (
        200,
        [f"{MIRROR} retry=False", f"{DIGESTS} retry=False", f"{HOST} retry=True"],
    )


def test_a_mirror_that_answers_is_final(conf: RegistriesConf) -> None:
    ref = reference.parse(f"{HOST}/app:1")
    assert go(Endpoints(conf, None), ref, {MIRROR: 200, HOST: 500}) == (200, [f"{MIRROR} retry=False"])


def test_the_locations_answer_is_final_whatever_it_is(conf: RegistriesConf) -> None:
    ref = reference.parse(f"{HOST}/app:1")
    assert go(Endpoints(conf, None), ref, {MIRROR: 503, HOST: 404})[0] == 404


def test_a_failing_mirror_is_a_warning_record_rendered_once(
    conf: RegistriesConf, normal_console: None, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    eps = Endpoints(conf, None)
    for tag in ("1", "2"):
        go(eps, reference.parse(f"{HOST}/app:{tag}"), {MIRROR: 403, HOST: 200})
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.name == "lockman.endpoints"
    assert record.getMessage() == f"mirror {MIRROR} for {HOST} failed (HTTP 403); using the next location"
    assert capsys.readouterr().err == (
        f"warning: mirror {MIRROR} for {HOST} failed (HTTP 403); using the next location\n"
    )


def test_a_mirror_without_the_image_is_only_a_debug_line(
    conf: RegistriesConf, normal_console: None, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="lockman.endpoints")
    go(Endpoints(conf, None), reference.parse(f"{HOST}/app:1"), {MIRROR: 404, HOST: 200})
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert "warning" not in capsys.readouterr().err


def test_quiet_drops_the_warning(conf: RegistriesConf, capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("lockman")
    level, verbosity = logger.level, console.verbosity()
    console.set_verbosity(quiet=True)
    console.configure_logging()
    try:
        go(Endpoints(conf, None), reference.parse(f"{HOST}/app:1"), {MIRROR: 403, HOST: 200})
    finally:
        logger.setLevel(level)
        console.set_verbosity(verbose=verbosity == console.VERBOSE, quiet=verbosity == console.QUIET)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("concurrency", "version", "bound"),
    [
        (None, "HTTP/1.1", DEFAULT_CONCURRENCY),
        (None, "HTTP/2", DEFAULT_H2_CONCURRENCY),
        (3, "HTTP/2", 3),
    ],
)
def test_per_host_limit_follows_the_pings_http_version(concurrency: int | None, version: str, bound: int) -> None:
    eps = Endpoints(RegistriesConf([]), concurrency)
    eps.set_limit(HOST, version)
    assert eps.limit(HOST)._value == bound
    assert eps.limit("never-pinged.test")._value == (concurrency or DEFAULT_CONCURRENCY)
    assert eps.limit(HOST) is eps.limit(HOST)
