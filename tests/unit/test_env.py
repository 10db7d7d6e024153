"""lockman.env: every ``LOCKMAN_*`` variable's parser takes its good values and refuses its bad
ones with the one message format (variable, value, what is allowed); empty counts as unset."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from lockman import env
from lockman.errors import InputError

WHOLE = ["LOCKMAN_CONCURRENCY", "LOCKMAN_RETRY_ATTEMPTS"]
SECONDS = [
    "LOCKMAN_RETRY_WAIT_INITIAL",
    "LOCKMAN_RETRY_WAIT_MAX",
    "LOCKMAN_RETRY_JITTER",
    "LOCKMAN_RETRY_AFTER_MAX",
]
FLAGS = ["LOCKMAN_HTTP2", "LOCKMAN_DEBUG", "LOCKMAN_TUF_OFFLINE"]
DIRECTORIES = ["LOCKMAN_LOCK_DIR", "LOCKMAN_CACHE_DIR"]


def test_every_variable_is_in_one_of_the_groups_tested_here() -> None:
    tested = {
        *WHOLE,
        *SECONDS,
        *FLAGS,
        *DIRECTORIES,
        "LOCKMAN_CERTS_D",
        "LOCKMAN_TUF_URL",
        "LOCKMAN_TUF_ROOT",
        "LOCKMAN_OSV_URL",
    }
    assert set(env.VARIABLES) == tested


def refused(name: str, value: str) -> InputError:
    with pytest.raises(InputError) as caught:
        env.get(name, {name: value})
    assert type(caught.value) is InputError and caught.value.exit_code == 2
    assert str(caught.value) == (
        f"environment variable {name}={value!r} is not valid: expected {env.VARIABLES[name].allowed}"
    )
    return caught.value


@pytest.mark.parametrize("name", list(env.VARIABLES))
def test_unset_and_empty_are_none(name: str) -> None:
    assert env.get(name, {}) is None and env.get(name, {name: ""}) is None


@pytest.mark.parametrize("name", WHOLE)
@pytest.mark.parametrize(("text", "value"), [("1", 1), ("16", 16), (" 8 ", 8)])
def test_whole_numbers(name: str, text: str, value: int) -> None:
    assert env.get(name, {name: text}) == value


@pytest.mark.parametrize("name", WHOLE)
@pytest.mark.parametrize("text", ["0", "-1", "abc", "1.5", "4x", " "])
def test_whole_numbers_refused(name: str, text: str) -> None:
    refused(name, text)


@pytest.mark.parametrize("name", SECONDS)
@pytest.mark.parametrize(("text", "value"), [("0", 0.0), ("0.25", 0.25), ("30", 30.0), (" 2 ", 2.0)])
def test_seconds(name: str, text: str, value: float) -> None:
    assert env.get(name, {name: text}) == value


@pytest.mark.parametrize("name", SECONDS)
@pytest.mark.parametrize("text", ["-0.5", "nan", "inf", "-inf", "soon", "1s"])
def test_seconds_refused(name: str, text: str) -> None:
    refused(name, text)


@pytest.mark.parametrize("name", FLAGS)
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        (" on ", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_flags(name: str, text: str, value: bool) -> None:
    assert env.get(name, {name: text}) is value


@pytest.mark.parametrize("name", FLAGS)
@pytest.mark.parametrize("text", ["2", "y", "enabled", "truee"])
def test_flags_refused(name: str, text: str) -> None:
    refused(name, text)


@pytest.mark.parametrize("name", DIRECTORIES)
def test_directories_existing_or_to_be_created(name: str, tmp_path: Path) -> None:
    assert env.get(name, {name: str(tmp_path)}) == tmp_path
    assert env.get(name, {name: str(tmp_path / "new")}) == tmp_path / "new"


@pytest.mark.parametrize("name", DIRECTORIES)
def test_a_file_is_not_a_directory(name: str, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    refused(name, str(tmp_path / "file"))


def test_certs_d_is_a_list_of_directories(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    text = os.pathsep.join([str(tmp_path / "a"), "", str(tmp_path / "b")])
    assert env.get("LOCKMAN_CERTS_D", {"LOCKMAN_CERTS_D": text}) == [tmp_path / "a", tmp_path / "b"]
    (tmp_path / "file").write_text("")
    refused("LOCKMAN_CERTS_D", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "file")]))


@pytest.mark.parametrize("url", ["https://tuf.example/", "http://127.0.0.1:8080/metadata"])
def test_tuf_url(url: str) -> None:
    assert env.get("LOCKMAN_TUF_URL", {"LOCKMAN_TUF_URL": url}) == url
    assert env.get("LOCKMAN_OSV_URL", {"LOCKMAN_OSV_URL": url}) == url


@pytest.mark.parametrize(
    "url", ["tuf.example", "ftp://tuf.example", "file:///root.json", "https://a b", "https://x\n"]
)
def test_tuf_url_refused(url: str) -> None:
    refused("LOCKMAN_TUF_URL", url)
    refused("LOCKMAN_OSV_URL", url)


def test_tuf_root_must_be_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "root.json").write_text("{}")
    assert (
        env.get("LOCKMAN_TUF_ROOT", {"LOCKMAN_TUF_ROOT": str(tmp_path / "root.json")})
        == tmp_path / "root.json"
    )
    refused("LOCKMAN_TUF_ROOT", str(tmp_path / "absent.json"))
    refused("LOCKMAN_TUF_ROOT", str(tmp_path))


def test_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKMAN_CONCURRENCY", "3")
    assert env.get("LOCKMAN_CONCURRENCY") == 3


def test_check_all_finds_a_bad_value_in_any_variable() -> None:
    environ: dict[str, Any] = {"LOCKMAN_CONCURRENCY": "4", "LOCKMAN_TUF_OFFLINE": "maybe"}
    with pytest.raises(InputError, match=r"LOCKMAN_TUF_OFFLINE='maybe'"):
        env.check_all(environ)
    env.check_all({"LOCKMAN_CONCURRENCY": "4", "UNRELATED": "x"})


def test_invalid_names_a_reason_when_given() -> None:
    e = env.invalid("LOCKMAN_CONCURRENCY", "99999", "too many")
    assert str(e) == (
        "environment variable LOCKMAN_CONCURRENCY='99999' is not valid (too many): "
        "expected a whole number of at least 1"
    )
