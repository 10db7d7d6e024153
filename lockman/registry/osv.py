"""Asking OSV (https://osv.dev, or a mirror at ``LOCKMAN_OSV_URL``) which known
vulnerabilities affect a list of packages.

Only package coordinates are sent (ecosystem, name, version, or a package URL without
qualifiers): never an image name, registry or digest. ``POST /v1/querybatch`` names the ids
per package (its ``next_page_token`` pages followed a bounded number of times);
``GET /v1/vulns/{id}`` reads the records the caller asks for (only what an update fixed or
introduced). Every answer is remote text: bodies are capped, ids kept per package and per
lookup are capped, ids must match a strict grammar before they go into a URL, and a record
that does not parse is a note. Answers are cached on disk by package URL (and records by id)
for ``CACHE_SECONDS``, and shared in process: one client asks about a package URL (or reads a
record) once per run, however many images and platforms name it, even while they are all in
flight. Any failure raises :class:`OsvUnavailable`; the caller turns it into one warning,
never a failed run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from lockman import safejson
from lockman.errors import LockmanError
from lockman.fileio import read_bounded, write_atomic
from lockman.model.vulns import (
    Package,
    Vuln,
    osv_package,
    parse_batch_ids,
    parse_purl,
    parse_record,
    valid_id,
)

DEFAULT_URL = "https://api.osv.dev"
BATCH = 1000
"""Queries per ``querybatch`` request (OSV's own limit)."""
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""One answer's body; OSV caps HTTP/1.1 answers at 32 MiB itself."""
MAX_RECORD_BYTES = 2 * 1024 * 1024
MAX_IDS_PER_PACKAGE = 512
MAX_IDS = 20000
"""Ids kept per lookup (all packages of both digests); the rest is a note."""
MAX_PAGES = 3
"""Rounds of ``next_page_token`` followed per lookup."""
MAX_REQUESTS = 64
"""OSV requests per moved image: query batches, their pages and record reads together."""
CACHE_SECONDS = 6 * 3600


class OsvUnavailable(Exception):
    """OSV could not be asked, or answered what is not OSV's API; the message says which."""


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class OsvCache:
    """``<cache>/osv/ids/<sha256(purl)>.json`` (ids per package URL) and
    ``<cache>/osv/vulns/<sha256(id)>.json`` (records), each with the time it was written.

    Nothing in it is trusted more than the service's answer: entries are parsed as the answer
    is, an unreadable or expired one is a miss.
    """

    def __init__(self, root: Path, *, now: Callable[[], float] = time.time) -> None:
        self.root, self.now = root / "osv", now

    def _read(self, kind: str, name: str) -> Any:
        try:
            path = self.root / kind / f"{_key(name)}.json"
            raw = read_bounded(path, limit=MAX_RECORD_BYTES, what="a cache entry")
            obj = safejson.loads(raw) if raw is not None else None
        except (OSError, ValueError, LockmanError):  # unreadable, too large, not JSON: a miss
            return None
        if not isinstance(obj, dict) or obj.get("key") != name:
            return None
        at = obj.get("at")
        if not isinstance(at, int | float) or not 0 <= self.now() - at < CACHE_SECONDS:
            return None
        return obj.get("value")

    def _write(self, kind: str, name: str, value: Any) -> None:
        try:
            (self.root / kind).mkdir(parents=True, exist_ok=True)
            body = json.dumps({"key": name, "at": self.now(), "value": value})
            write_atomic(self.root / kind / f"{_key(name)}.json", body, durable=False)
        except OSError:
            pass  # a cache that cannot be written costs a request next time, nothing else

    def ids(self, purl: str) -> list[str] | None:
        value = self._read("ids", purl)
        if not isinstance(value, list) or not all(valid_id(i) for i in value):
            return None
        return value[:MAX_IDS_PER_PACKAGE]

    def put_ids(self, purl: str, ids: list[str]) -> None:
        self._write("ids", purl, ids)

    def record(self, vid: str) -> Any:
        return self._read("vulns", vid)

    def put_record(self, vid: str, record: Any) -> None:
        self._write("vulns", vid, record)


@dataclass
class Lookup:
    """One image's lookup: ids per package URL, records read, notes, requests sent."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    records: dict[str, Vuln] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    requests: int = 0
    since: int = 0  # notes before this index belong to an earlier platform: said again if met

    def note(self, text: str) -> None:
        if text not in self.notes[self.since :]:
            self.notes.append(text)

    def spend(self) -> bool:
        if self.requests >= MAX_REQUESTS:
            self.note(f"OSV request limit ({MAX_REQUESTS}) reached; the rest was not looked up")
            return False
        self.requests += 1
        return True


class OsvClient:
    """Lookups over the run's httpx client (its proxies and TLS trust), one base URL."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str | None = None,
        *,
        cache: OsvCache | None = None,
    ) -> None:
        self.http, self.base = http, (base_url or DEFAULT_URL).rstrip("/")
        self.cache = cache
        self.sent = 0  # every request this client sent (all images)
        # This run's answers, by package URL and by id, settled once the asking lookup is done:
        # ids (None: that lookup's budget ran out first), a record's JSON (None: OSV has none),
        # or the OsvUnavailable that lookup met. Futures, so concurrent images wait, not ask.
        self._ids: dict[str, asyncio.Future[Any]] = {}
        self._records: dict[str, asyncio.Future[Any]] = {}
        self._partial: set[str] = set()  # package URLs whose ids a limit cut (said to each waiter)

    async def _call(self, method: str, path: str, body: Any, limit: int) -> Any:
        """One request; the JSON answer, or OsvUnavailable (network, status, size, not JSON)."""
        url = self.base + path
        self.sent += 1
        try:
            request = self.http.build_request(
                method,
                url,
                content=json.dumps(body).encode() if body is not None else None,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
            response = await self.http.send(request, stream=True, follow_redirects=False)
            try:
                if response.status_code == 404 and method == "GET":
                    return None
                if response.status_code != 200:
                    status = response.status_code
                    raise OsvUnavailable(f"{self.base} answered HTTP {status} to {method} {path}")
                chunks, total = [], 0
                async for chunk in response.aiter_raw():
                    total += len(chunk)
                    if total > limit:
                        raise OsvUnavailable(f"{self.base}: answer to {method} {path} is over {limit} bytes")
                    chunks.append(chunk)
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise OsvUnavailable(f"{self.base} did not answer in time") from None
        except httpx.HTTPError as e:
            raise OsvUnavailable(f"{self.base} could not be reached ({type(e).__name__})") from None
        try:
            return safejson.loads(b"".join(chunks))
        except (ValueError, UnicodeDecodeError):
            raise OsvUnavailable(f"{self.base}: answer to {method} {path} is not JSON") from None

    async def find(self, packages: Iterable[Package], lookup: Lookup) -> None:
        """Fill ``lookup.ids`` for each package URL (this run's answers, the disk cache, then
        querybatch)."""
        await self._find(sorted({p.purl for p in packages}), lookup)

    async def _find(self, purls: list[str], lookup: Lookup) -> None:
        todo: list[tuple[str, dict[str, Any]]] = []
        waits: list[tuple[str, asyncio.Future[Any]]] = []
        for purl in purls:
            if purl in lookup.ids:
                continue
            if purl in self._ids:
                waits.append((purl, self._ids[purl]))
                continue
            cached = self.cache.ids(purl) if self.cache is not None else None
            if cached is not None:
                lookup.ids[purl] = cached
                continue
            parsed = parse_purl(purl)
            query = osv_package(parsed) if parsed is not None else None
            if query is not None:
                todo.append((purl, query))
        loop = asyncio.get_running_loop()
        mine = {purl: loop.create_future() for purl, _ in todo}
        self._ids.update(mine)
        outcome: OsvUnavailable | None = OsvUnavailable(f"{self.base}: the lookup was interrupted")
        try:
            for start in range(0, len(todo), BATCH):
                await self._batch(todo[start : start + BATCH], lookup)
            outcome = None
        except OsvUnavailable as e:
            outcome = e
            raise
        finally:
            for purl, future in mine.items():
                if outcome is None and purl not in lookup.ids:
                    del self._ids[purl]  # not asked (budget): whoever needs it asks
                future.set_result(outcome if outcome is not None else lookup.ids.get(purl))
        again = []
        for purl, future in waits:
            answer = await future
            if isinstance(answer, OsvUnavailable):
                raise OsvUnavailable(str(answer))
            if answer is None:
                again.append(purl)
            else:
                lookup.ids[purl] = answer
                if purl in self._partial:
                    lookup.note("OSV's answer for some packages was cut by a limit (see other images' notes)")
        if again:
            await self._find(again, lookup)

    async def _batch(self, batch: list[tuple[str, dict[str, Any]]], lookup: Lookup) -> None:
        """One querybatch request, then a bounded number for the queries with more pages."""
        total = sum(len(v) for v in lookup.ids.values())
        pending = list(range(len(batch)))
        tokens: dict[int, str] = {}
        found: dict[int, list[str]] = {i: [] for i in pending}
        answered: set[int] = set()  # a query never sent (the budget) has no answer, not "none"
        complete = True
        for page in range(MAX_PAGES + 1):
            if not pending:
                break
            if page == MAX_PAGES:
                lookup.note(f"OSV has more pages of results than the {MAX_PAGES} read")
            if page == MAX_PAGES or not lookup.spend():
                complete = False
                break
            queries = [{**batch[i][1], **({"page_token": tokens[i]} if i in tokens else {})} for i in pending]
            answer = await self._call("POST", "/v1/querybatch", {"queries": queries}, MAX_RESPONSE_BYTES)
            results = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(results, list) or len(results) != len(queries):
                raise OsvUnavailable(f"{self.base}: querybatch answer is not one result per query")
            still = []
            for i, result in zip(pending, results, strict=True):
                parsed = parse_batch_ids(result, MAX_IDS_PER_PACKAGE + 1)  # one more: to see the cap
                if parsed is None:
                    raise OsvUnavailable(f"{self.base}: querybatch answer holds a malformed result")
                ids, token = parsed
                room = max(0, min(MAX_IDS_PER_PACKAGE - len(found[i]), MAX_IDS - total))
                if len(ids) > room:
                    complete = False
                    lookup.note(
                        f"OSV named more vulnerabilities than lockman keeps ({MAX_IDS_PER_PACKAGE} a "
                        f"package, {MAX_IDS} an image); the rest were dropped"
                    )
                    ids, token = ids[:room], None
                answered.add(i)
                fresh = [x for x in dict.fromkeys(ids) if x not in found[i]]
                found[i] += fresh
                total += len(fresh)
                if token is not None:
                    tokens[i] = token
                    still.append(i)
            pending = still
        for i in sorted(answered):
            lookup.ids[batch[i][0]] = found[i]
            if not complete:
                self._partial.add(batch[i][0])
            elif self.cache is not None:
                self.cache.put_ids(batch[i][0], found[i])

    async def read(self, ids: Sequence[str], lookup: Lookup) -> None:
        """Fill ``lookup.records`` for ``ids`` (this run's, the disk cache, then one GET each,
        within budget)."""
        for vid in ids:
            if vid in lookup.records or not valid_id(vid):
                continue
            if vid in self._records:
                raw = await self._records[vid]
                if isinstance(raw, OsvUnavailable):
                    raise OsvUnavailable(str(raw))
            else:
                raw = self.cache.record(vid) if self.cache is not None else None
                if raw is None:
                    if not lookup.spend():
                        return
                    raw = await self._get(vid)
            if raw is None:
                lookup.note(f"OSV has no record {vid}")
                continue
            record = parse_record(raw)
            if record is None or record.id != vid:
                lookup.note(f"OSV record {vid} is not readable; shown without details")
                continue
            lookup.records[vid] = record
            if self.cache is not None:
                self.cache.put_record(vid, raw)

    async def _get(self, vid: str) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._records[vid] = future
        outcome: Any = OsvUnavailable(f"{self.base}: the lookup was interrupted")
        try:
            outcome = await self._call("GET", f"/v1/vulns/{vid}", None, MAX_RECORD_BYTES)
            return outcome
        except OsvUnavailable as e:
            outcome = e
            raise
        finally:
            future.set_result(outcome)
