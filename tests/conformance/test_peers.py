"""The peers' own test tables, run over lockman's functions (see testdata/conformance/PROVENANCE.md).

Every row is the peer's input and expected result, transcribed as data. A row where lockman
deliberately differs carries ``lockman`` (the result lockman gives instead) and ``reason``; the
docs/registries.md ("Registries and credentials") states each difference. Pure function calls and
files in tmp_path: no registry, so the whole table runs in about a second.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import lockman.registry.registries_conf as rc
from lockman.errors import InputError
from lockman.model.manifest import Platform
from lockman.model.platforms import matches, parse_platform
from lockman.model.reference import Reference, parse
from lockman.registry.credentials import CredentialStore, convert_to_hostname, lookup_order
from tests.support.paths import ROOT as REPO

HERE = REPO / "testdata" / "conformance"
SYSREG = HERE / "containers-image" / "sysregistriesv2"
AUTH_FILES = HERE / "containers-image" / "docker-config"
_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


def _rows() -> list[Any]:
    params = []
    for path in sorted(HERE.glob("*.json")):
        peer = json.loads(path.read_text())
        for table in peer["tables"]:
            for i, row in enumerate(table["rows"]):
                ident = f"{peer['peer']}:{table['test'].split(',')[0]}:{i}"
                params.append(pytest.param(table["check"], row, id=ident))
    return params


def _raw_reference(text: str) -> Reference:
    """The peer's string as a Reference *without* Docker Hub qualification: containers/image matches
    prefixes against names its callers have already qualified, so the rows are written that way."""
    name, _, digest = text.partition("@")
    tag = None
    if name.rfind(":") > name.rfind("/") and "/" in name:
        name, tag = name[: name.rfind(":")], name[name.rfind(":") + 1 :]
    registry, _, repository = name.partition("/")
    return Reference(registry.lower(), repository, tag, digest or None, name)


def _reference(text: str, default_tag: str | None = None) -> dict[str, Any]:
    try:
        r = parse(text, default_tag=default_tag)
    except InputError as e:
        return {"error": True, "message": str(e)}
    pull = f"{r.name}@{r.digest}" if r.digest else f"{r.name}:{r.tag or 'latest'}"
    return {
        "error": False,
        "name": r.name,
        "registry": r.registry,
        "repository": r.repository,
        "tag": r.tag,
        "digest": r.digest,
        "string": str(r),
        "pull": pull,
    }


def _platform_parse(text: str) -> dict[str, Any]:
    try:
        return {"error": False, "platform": str(parse_platform(text))}
    except InputError as e:
        return {"error": True, "message": str(e)}


def _platform_match(inp: dict[str, Any]) -> dict[str, Any]:
    cand = inp["candidate"]
    try:
        wanted = parse_platform(inp["wanted"])
        if isinstance(cand, dict):
            candidate = Platform(cand["os"], cand["architecture"], cand["variant"] or None)
        else:
            candidate = parse_platform(cand)
    except InputError as e:
        return {"error": True, "message": str(e)}
    return {"error": False, "match": matches(wanted, candidate)}


def _prefix_match(inp: dict[str, Any]) -> dict[str, Any]:
    prefix, version = rc._split_tag(inp["prefix"])
    entry = rc.RegistryEntry(prefix=prefix, location="x.example", version=version)
    n = entry.matches(_raw_reference(inp["ref"]))
    return {"match": n > 0, "length": n}


def _rewrite(inp: dict[str, Any]) -> dict[str, Any]:
    prefix, version = rc._split_tag(inp["prefix"])
    entry = rc.RegistryEntry(prefix=prefix, location=inp["location"], version=version, source="row")
    try:
        new = rc._rewrite(parse(inp["ref"], default_tag=None), entry, inp["location"])
    except InputError as e:
        return {"error": True, "message": str(e)}
    return {"error": False, "rewritten": str(new)}


def _registries_file(
    inp: dict[str, Any], want: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(SYSREG / inp["conf"]))
    monkeypatch.setattr(
        rc, "SYSTEM_CONF_D", SYSREG / inp["drop_ins"] if inp["drop_ins"] else tmp_path / "none"
    )
    try:
        conf = rc.RegistriesConf.load()
    except InputError as e:
        return {"error": True, "message": str(e)}
    out: dict[str, Any] = {
        "error": False,
        "count": len(conf.entries),
        "locations_by_prefix": [e.location or e.prefix for e in sorted(conf.entries, key=lambda e: e.key)],
    }
    if "ref" in inp:
        entry = conf.entry_for(_raw_reference(inp["ref"]))
        out["found"] = entry is not None
        if entry is not None:
            out.update(prefix=entry.key, location=entry.location, insecure=entry.insecure)
            out.update(blocked=entry.blocked, mirrors=[[m.location, m.insecure] for m in entry.mirrors])
            if "sources" in want:
                eps = conf.endpoints(parse(inp["ref"], default_tag=None))
                out["sources"] = [[str(e.ref), e.insecure] for e in eps]
    return out


def _config_path(inp: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    if inp["env"] is None:
        monkeypatch.delenv("CONTAINERS_REGISTRIES_CONF", raising=False)
    else:
        monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", inp["env"])
    user = Path.home() / ".config" / "containers" / "registries.conf"
    if inp["user_file"]:
        user.parent.mkdir(parents=True, exist_ok=True)
        user.write_text("")
    main = rc.config_sources().main
    return {"main": "<system>" if main == rc.SYSTEM_CONF else "<user>" if main == user else str(main)}


def _parse_location(value: str) -> dict[str, Any]:
    try:
        return {"error": False, "value": rc._location(value, "row", "location")}
    except InputError as e:
        return {"error": True, "message": str(e)}


def _auth_file(inp: dict[str, Any], where: Path) -> dict[str, Any]:
    if inp["file"]:
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_bytes((AUTH_FILES / inp["file"]).read_bytes())
    host, _, repository = inp["key"].partition("/")
    registry = "docker.io" if host in _HUB else host
    cred = CredentialStore().get(registry, repository)
    if cred is None:
        return {"username": "", "password": "", "identity_token": ""}
    return {"username": cred.username, "password": cred.password, "identity_token": cred.identity_token}


def _check(actual: dict[str, Any], expected: dict[str, Any], row: dict[str, Any]) -> None:
    for key, want in expected.items():
        if key == "names":
            assert actual["error"], (row, actual)
            message = actual["message"]
            assert want in message and row["input"]["conf"] in message, (row, message)
        else:
            assert actual.get(key) == want, (key, row, actual)


@pytest.mark.parametrize(("check", "row"), _rows())
def test_peer_row(check: str, row: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = row.get("lockman", row["expected"])
    if "lockman" in row:
        assert row["reason"], "a deliberate difference needs its reason"
    inp = row["input"]
    if check == "reference":
        _check(_reference(inp), expected, row)
    elif check == "reference_regclient":  # regclient fills in ``latest`` as lockman does
        _check(_reference(inp, default_tag="latest"), expected, row)
    elif check == "platform_parse":
        _check(_platform_parse(inp), expected, row)
    elif check == "platform_match":
        _check(_platform_match(inp), expected, row)
    elif check == "prefix_match":
        _check(_prefix_match(inp), expected, row)
    elif check == "rewrite":
        _check(_rewrite(inp), expected, row)
    elif check == "registries_file":
        _check(_registries_file(inp, expected, tmp_path, monkeypatch), expected, row)
    elif check == "config_path":
        _check(_config_path(inp, monkeypatch), expected, row)
    elif check == "parse_location":
        _check(_parse_location(inp), expected, row)
    elif check == "convert_to_hostname":
        _check({"host": convert_to_hostname(inp)}, expected, row)
    elif check == "auth_key_order":
        host, _, repository = inp.partition("/")
        _check({"order": lookup_order(host, repository)}, expected, row)
    elif check == "auth_file":
        # As the peer does: once as podman's auth.json, once as docker's config.json.
        runtime = tmp_path / "run"
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
        _check(_auth_file(inp, runtime / "containers" / "auth.json"), expected, row)
        (runtime / "containers" / "auth.json").unlink(missing_ok=True)
        _check(_auth_file(inp, Path.home() / ".docker" / "config.json"), expected, row)
    else:
        raise AssertionError(f"unknown check {check!r}")


def test_every_peer_is_ported_with_provenance() -> None:
    """Each data file names its repository, commit and licence, and has rows for every table."""
    files = sorted(HERE.glob("*.json"))
    assert {p.stem for p in files} == {
        "containerd-platforms",
        "containers-image",
        "distribution-reference",
        "docker-cli",
        "google-go-containerregistry",
        "regclient-regclient",
    }
    provenance = (HERE / "PROVENANCE.md").read_text()
    for path in files:
        peer = json.loads(path.read_text())
        assert len(peer["commit"]) == 40 and peer["licence"] and peer["commit"] in provenance
        assert all(t["rows"] for t in peer["tables"])
