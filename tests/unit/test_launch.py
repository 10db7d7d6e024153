"""The console entry point: what it does to the process, and that library callers are untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT

# Runs lockman's entry() in a fresh interpreter with the CLI's main replaced by a probe that
# reports the collector's state before and after the command starts, as a real command would.
PROBE = """
import gc, json, sys
import lockman.cli
from lockman import launch

def probe(argv=None):
    seen = {"before": gc.isenabled(), "trio": sys.modules.get("trio", "absent") is None}
    launch.command_starting()
    seen["during"] = gc.isenabled()
    seen["frozen"] = gc.get_freeze_count()
    garbage = []
    garbage.append(garbage)  # a cycle made by the run is still collected
    del garbage
    seen["collected"] = gc.collect() >= 1
    print(json.dumps(seen))
    return 3

lockman.cli.main = probe
sys.argv = ["lockman", *sys.argv[1:]]
launch.entry()
"""


def _entry(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )


def test_collector_is_off_while_loading_and_on_for_the_run() -> None:
    p = _entry("resolve", "x")
    assert p.returncode == 3, p.stderr  # the command's exit code is the process's
    seen = json.loads(p.stdout)
    assert seen == {
        "before": False,
        "trio": True,
        "during": True,
        "frozen": seen["frozen"],
        "collected": True,
    }
    assert seen["frozen"] > 1000  # the loaded modules are out of the collector's walk


def test_version_answers_before_anything_loads() -> None:
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.argv=['lockman','--version']; from lockman.launch import entry; entry()",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    from lockman import __version__

    assert (p.returncode, p.stdout) == (0, f"{__version__}\n")


def test_library_callers_keep_their_collector() -> None:
    code = (
        "import gc, sys\n"
        "from lockman.cli import main\n"
        "from lockman import launch\n"
        "launch.command_starting()\n"
        "code = main(['resolve', '--concurrency', '0', 'x/y:1'])\n"
        "print(gc.isenabled(), gc.get_freeze_count(), code, 'trio' in sys.modules and sys.modules['trio'] is None)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False, timeout=60
    )
    assert p.stdout.split() == ["True", "0", "2", "False"], p.stderr


def test_a_run_ending_at_once_exits_cleanly(tmp_path: Path) -> None:
    # Bad input ends the run before the early CA load (lockman.registry.system_trust) is done
    # (3,000 certificates take OpenSSL a few hundred ms); exiting under a running OpenSSL
    # parse crashed the process with SIGSEGV.
    import trustme

    big = tmp_path / "big.pem"
    big.write_bytes(trustme.CA().cert_pem.bytes() * 3000)  # OpenSSL parses every copy
    env = {**os.environ, "SSL_CERT_FILE": str(big)}
    for argv in (["resolve", "example.com/x/y@sha256:short"], ["resolve", "--concurrency", "0", "x/y:1"]):
        p = subprocess.run(
            [sys.executable, "-m", "lockman", *argv],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            check=False,
            timeout=60,
        )
        assert p.returncode == 2, (p.returncode, p.stderr)
        assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
