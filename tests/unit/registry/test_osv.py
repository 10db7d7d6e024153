"""lockman.registry.osv against the loopback OSV service: pagination, caps, cache, and hostile
answers (huge, millions of ids, malformed, slow, unsafe ids), each counted on the server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lockman.model.vulns import Package
from lockman.registry import osv
from lockman.registry.osv import Lookup, OsvCache, OsvClient, OsvUnavailable
from tests.support.osv_server import OsvServer

REQUESTS_OLD = Package("requests", "2.30.0", "pkg:pypi/requests@2.30.0")
GRADIO = Package("gradio", "4.36.1", "pkg:pypi/gradio@4.36.1")
OPENSSL = Package("openssl", "1.0.2p-r0", "pkg:apk/alpine/openssl@1.0.2p-r0?distro=3.5.0&origin=openssl")


@pytest.fixture
def server() -> Iterator[OsvServer]:
    s = OsvServer().start()
    yield s
    s.stop()


def lookup(
    server: OsvServer,
    packages: list[Package],
    *,
    read: bool = True,
    cache: OsvCache | None = None,
    timeout: float = 5.0,
) -> Lookup:
    async def go() -> Lookup:
        result = Lookup()
        async with httpx.AsyncClient(timeout=timeout) as http:
            client = OsvClient(http, server.url, cache=cache)
            await client.find(packages, result)
            if read:
                await client.read(sorted({i for ids in result.ids.values() for i in ids}), result)
        return result

    return asyncio.run(go())


def test_ids_then_records(server: OsvServer) -> None:
    r = lookup(server, [REQUESTS_OLD, GRADIO, OPENSSL])
    assert r.ids == {
        REQUESTS_OLD.purl: ["PYSEC-2023-74"],
        GRADIO.purl: ["GHSA-9v2f-6vcg-3hgv"],
        OPENSSL.purl: ["CVE-2018-5407"],
    }
    assert set(r.records) == {"PYSEC-2023-74", "GHSA-9v2f-6vcg-3hgv", "CVE-2018-5407"}
    assert r.requests == len(server.log) == 4 and r.notes == []
    assert server.count("POST") == 1  # three packages, one batch


def test_batches_of_a_thousand(server: OsvServer) -> None:
    many = [Package(f"p{i}", "1.0", f"pkg:pypi/p{i}@1.0") for i in range(2001)]
    r = lookup(server, many, read=False)
    assert server.count("POST", "/v1/querybatch") == r.requests == 3
    assert [len(body["queries"]) for _, _, body in server.log] == [1000, 1000, 1]


def test_pages_are_followed(server: OsvServer) -> None:
    server.page_size, server.extra_ids = 2, 3  # requests: PYSEC + 3 made-up ids = 4 ids, 2 pages
    r = lookup(server, [REQUESTS_OLD], read=False)
    assert r.ids[REQUESTS_OLD.purl] == ["PYSEC-2023-74", "LOCKMAN-TEST-0", "LOCKMAN-TEST-1", "LOCKMAN-TEST-2"]
    assert server.count("POST") == 2 and server.queries[1]["page_token"] == "2"
    assert r.notes == []


def test_pages_are_followed_a_bounded_number_of_times(server: OsvServer) -> None:
    server.page_size, server.extra_ids = 1, 50  # 50 pages on offer
    r = lookup(server, [REQUESTS_OLD], read=False)
    assert server.count("POST") == osv.MAX_PAGES
    assert len(r.ids[REQUESTS_OLD.purl]) == osv.MAX_PAGES
    assert r.notes == [f"OSV has more pages of results than the {osv.MAX_PAGES} read"]


def test_millions_of_ids_is_a_refused_answer_not_memory(server: OsvServer) -> None:
    server.extra_ids = 1_000_000  # ~45 MB of JSON: over the answer cap
    with pytest.raises(OsvUnavailable, match="is over"):
        lookup(server, [REQUESTS_OLD], read=False)


def test_many_ids_are_capped_per_package_with_a_note(server: OsvServer) -> None:
    server.extra_ids = 20_000
    r = lookup(server, [REQUESTS_OLD], read=False)
    assert len(r.ids[REQUESTS_OLD.purl]) == osv.MAX_IDS_PER_PACKAGE
    assert r.notes == [
        f"OSV named more vulnerabilities than lockman keeps ({osv.MAX_IDS_PER_PACKAGE} a package, "
        f"{osv.MAX_IDS} an image); the rest were dropped"
    ]


def test_record_reads_are_bounded_per_image(server: OsvServer) -> None:
    server.extra_ids = 200  # 200 made-up ids, no records for them (404)
    r = lookup(server, [REQUESTS_OLD])
    assert r.requests == len(server.log) == osv.MAX_REQUESTS  # 1 batch + 63 GETs, then a note
    assert f"OSV request limit ({osv.MAX_REQUESTS}) reached; the rest was not looked up" in r.notes


def test_huge_answer_is_cut_off(server: OsvServer) -> None:
    server.huge = osv.MAX_RESPONSE_BYTES + 10_000_000
    with pytest.raises(OsvUnavailable, match=f"over {osv.MAX_RESPONSE_BYTES} bytes"):
        lookup(server, [REQUESTS_OLD], read=False)


def test_slow_service_times_out(server: OsvServer) -> None:
    server.delay = 1.5
    with pytest.raises(OsvUnavailable, match="did not answer in time"):
        lookup(server, [REQUESTS_OLD], read=False, timeout=0.3)


@pytest.mark.parametrize(
    "answer", [b"not json", b"[]", b'{"results": 5}', b'{"results": []}', b'{"results": [{"vulns": 5}]}']
)
def test_malformed_batch_answers(server: OsvServer, answer: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "_batch", lambda body: answer)
    with pytest.raises(OsvUnavailable):
        lookup(server, [REQUESTS_OLD], read=False)


def test_http_errors(server: OsvServer) -> None:
    server.status = 500
    with pytest.raises(OsvUnavailable, match="answered HTTP 500"):
        lookup(server, [REQUESTS_OLD], read=False)


def test_unsafe_ids_never_reach_a_url(server: OsvServer, monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = {"results": [{"vulns": [{"id": "../../admin"}, {"id": "X/../../y"}, {"id": "PYSEC-2023-74"}]}]}
    monkeypatch.setattr(server, "_batch", lambda body: json.dumps(hostile).encode())
    r = lookup(server, [REQUESTS_OLD])
    assert r.ids == {REQUESTS_OLD.purl: ["PYSEC-2023-74"]}
    assert [p for m, p, _ in server.log if m == "GET"] == ["/v1/vulns/PYSEC-2023-74"]


def test_malformed_record_is_a_note(server: OsvServer) -> None:
    server.raw_records["PYSEC-2023-74"] = b'{"id": "SOMETHING-ELSE"}'
    server.raw_records["GHSA-9v2f-6vcg-3hgv"] = b"[1, 2"
    with pytest.raises(OsvUnavailable, match="not JSON"):
        lookup(server, [GRADIO])
    r = lookup(server, [REQUESTS_OLD])
    assert r.records == {} and r.notes == ["OSV record PYSEC-2023-74 is not readable; shown without details"]


def test_cache_by_package_url_with_expiry(server: OsvServer, tmp_path: Path) -> None:
    now = [1000.0]
    cache = OsvCache(tmp_path, now=lambda: now[0])
    lookup(server, [REQUESTS_OLD, GRADIO], cache=cache)
    assert len(server.log) == 3
    r = lookup(server, [REQUESTS_OLD, GRADIO], cache=cache)
    assert len(server.log) == 3 and r.requests == 0  # all from the cache
    assert set(r.records) == {"PYSEC-2023-74", "GHSA-9v2f-6vcg-3hgv"}
    now[0] += osv.CACHE_SECONDS
    lookup(server, [REQUESTS_OLD, GRADIO], cache=cache)
    assert len(server.log) == 6  # expired: asked again


def test_a_cache_entry_for_another_purl_is_a_miss(server: OsvServer, tmp_path: Path) -> None:
    cache = OsvCache(tmp_path)
    lookup(server, [REQUESTS_OLD], read=False, cache=cache)
    [entry] = (tmp_path / "osv" / "ids").iterdir()
    doc = json.loads(entry.read_text())
    entry.write_text(json.dumps({**doc, "key": "pkg:pypi/other@1", "value": ["EVIL-1"]}))
    r = lookup(server, [REQUESTS_OLD], read=False, cache=cache)
    assert r.ids[REQUESTS_OLD.purl] == ["PYSEC-2023-74"] and server.count("POST") == 2


def concurrent(server: OsvServer, n: int, packages: list[Package], timeout: float = 5.0) -> list[Lookup | Exception]:
    """``n`` images' lookups of the same packages, all in flight at once on one client (a run)."""

    async def one(client: OsvClient) -> Lookup:
        result = Lookup()
        await client.find(packages, result)
        await client.read(sorted({i for ids in result.ids.values() for i in ids}), result)
        return result

    async def go() -> list[Lookup | Exception]:
        async with httpx.AsyncClient(timeout=timeout) as http:
            client = OsvClient(http, server.url)  # no disk cache: only the run's sharing
            return list(await asyncio.gather(*(one(client) for _ in range(n)), return_exceptions=True))

    return asyncio.run(go())


def test_images_in_one_run_share_their_lookups_even_in_flight(server: OsvServer) -> None:
    server.delay = 0.3  # every image is waiting on the first answer when the next one asks
    found = concurrent(server, 3, [REQUESTS_OLD, GRADIO, OPENSSL])
    assert server.count("POST") == 1 and server.count("GET") == 3
    for r in found:
        assert isinstance(r, Lookup)
        assert r.ids[GRADIO.purl] == ["GHSA-9v2f-6vcg-3hgv"] and set(r.records) == {
            "PYSEC-2023-74", "GHSA-9v2f-6vcg-3hgv", "CVE-2018-5407"
        }  # fmt: skip
    assert sum(r.requests for r in found if isinstance(r, Lookup)) == 4  # each request counted once


def test_a_shared_lookup_that_fails_fails_every_image_waiting_on_it(server: OsvServer) -> None:
    server.delay = 2
    found = concurrent(server, 2, [GRADIO], timeout=0.5)
    assert all(isinstance(r, OsvUnavailable) for r in found)  # never "no ids": that reads as clean
    assert server.count("POST") == 1  # the second image did not ask a failing service again


def test_a_package_one_image_had_no_budget_to_ask_about_is_not_clean_for_the_next(server: OsvServer) -> None:
    """The first image's budget is spent before it asks: gradio has no answer (not "no ids"),
    and the next image of the run asks for itself instead of taking that as clean."""

    async def go() -> tuple[Lookup, Lookup]:
        async with httpx.AsyncClient(timeout=5) as http:
            client = OsvClient(http, server.url)
            spent, fresh = Lookup(requests=osv.MAX_REQUESTS), Lookup()
            await asyncio.gather(client.find([GRADIO], spent), client.find([GRADIO], fresh))
            return spent, fresh

    spent, fresh = asyncio.run(go())
    assert GRADIO.purl not in spent.ids and any("request limit" in n for n in spent.notes)
    assert fresh.ids[GRADIO.purl] == ["GHSA-9v2f-6vcg-3hgv"] and server.count("POST") == 1
