"""First use of the command line: what `--help` shows and how a mistyped command line is refused.

Every refusal is one line on stderr, exit 2, in one wording whichever command it is.
"""

from __future__ import annotations

import re

import pytest

from lockman.cli import GLOBAL_FLAGS, GLOBAL_WITH_VALUE, app, main

COMMANDS = ["update", "verify", "diff", "pull", "pin", "completion", "resolve"]


def _help(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:  # cyclopts exits after printing help
        app([*args, "--help"])
    assert e.value.code in (0, None)
    return capsys.readouterr().out


def test_top_level_help_lists_the_options_that_may_come_before_the_command(capsys) -> None:
    out = _help(capsys)
    for option in (*GLOBAL_WITH_VALUE, *GLOBAL_FLAGS):
        assert re.search(rf"(^|[\s,/]){re.escape(option)}\b", out), option
    assert "--insecure-registry HOST[:PORT]" in out
    assert "before the command" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_plain_text(capsys, command: str) -> None:
    """No reStructuredText literals (``x``) and no docstring indentation leaking into help."""
    out = _help(capsys, command)
    assert "``" not in out
    for line in out.splitlines():
        cell = line.strip("│ ")
        assert not cell.startswith("    "), line  # a docstring's continuation line


@pytest.mark.parametrize("command", ["update", "verify", "diff", "pull", "resolve"])
def test_insecure_registry_takes_one_host_per_option(capsys, command: str) -> None:
    out = _help(capsys, command)
    assert "HOST[:PORT]" in out and "STR..." not in out


@pytest.mark.parametrize(
    ("command", "usage"),
    [("diff", "OLD [NEW]"), ("update", "[IMAGES...]"), ("pull", "[IMAGES...]"), ("resolve", "REFERENCES")],
)
def test_usage_names_the_positionals(capsys, command: str, usage: str) -> None:
    out = _help(capsys, command)
    first = out.splitlines()[0]
    assert first.endswith(usage), first
    assert "[ARGS" not in first


def test_runtime_lists_its_choices(capsys) -> None:
    out = " ".join(_help(capsys, "pull").replace("│", " ").split())
    assert re.search(r"\[choices: docker, podman, auto\]", out), out


def test_runtime_outside_the_choices_is_usage_error(capsys) -> None:
    assert main(["pull", "--runtime", "containerd"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: lockman pull: ") and "--runtime" in err


@pytest.mark.parametrize(
    ("argv", "command", "option"),
    [
        (["resolve", "--bogus", "registry.test/app:1"], "resolve", "--bogus"),
        (["--config", "x.toml", "resolve", "registry.test/app:1"], "resolve", "--config"),
        (["update", "--bogus"], "update", "--bogus"),
        (["verify", "--bogus"], "verify", "--bogus"),
        (["diff", "--bogus"], "diff", "--bogus"),
        (["diff", "old.lock", "--bogus"], "diff", "--bogus"),
        (["pull", "--bogus"], "pull", "--bogus"),
        (["pin", "--bogus"], "pin", "--bogus"),
    ],
)
def test_unknown_option_has_one_wording_for_every_command(capsys, argv: list[str], command: str, option: str) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: lockman {command}: unknown option {option}"), err
    assert err.rstrip().endswith(f"(see `lockman {command} --help`)"), err
    assert "invalid reference" not in err


def test_unknown_option_suggests_the_nearest(capsys) -> None:
    assert main(["diff", "a.lock", "--exit-cod"]) == 2
    assert "unknown option --exit-cod (did you mean --exit-code?)" in capsys.readouterr().err


def test_resolve_still_reads_stdin_from_a_dash(capsys, monkeypatch) -> None:
    """"-" is not an option: resolve takes it (here with nothing on stdin, an empty success)."""
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["resolve", "-"]) == 0


@pytest.mark.parametrize("command", ["verify", "pin"])
def test_stray_argument_to_a_command_without_arguments(capsys, command: str) -> None:
    capsys.readouterr()
    assert main([command, "localhost"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: lockman {command}: takes no arguments, only options: 'localhost' "
        f"(see `lockman {command} --help`)\n"
    )


def test_one_argument_too_many(capsys) -> None:
    assert main(["diff", "a.lock", "b.lock", "c.lock"]) == 2
    err = capsys.readouterr().err
    assert err == "error: lockman diff: too many arguments: 'c.lock' (see `lockman diff --help`)\n"
