#!/usr/bin/env python3
"""Fuzz lockman's parsers of outside input for N seconds each (tests/support/fuzz_targets.py lists them).

    python3 scripts/fuzz.py --seconds 60            # every target, a minute each
    python3 scripts/fuzz.py sigstore-bundle pem     # just these
    python3 scripts/fuzz.py --list

Each target runs hypothesis in batches with fresh random seeds until its time is up (the seed
is printed, ``--seed`` replays a run). A finding is an exception outside the target's contract
(anything but a LockmanError): hypothesis shrinks it, the minimal input is printed and written
to ``--out`` (fuzz-findings/), and the exit status is 1.

``--engine atheris`` (when ``pip install atheris`` works; it is not a test dependency) runs
each target under libFuzzer's coverage guidance instead, one subprocess per target, seeded
with the same corpus; it finds what needs many small steps, hypothesis what needs structure.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.support.fuzz_targets import TARGETS, Finding, Target, check, strategy

BATCH = 500


def fuzz(t: Target, seconds: float, first_seed: int) -> tuple[int, bytes | None, str]:
    """(examples run, minimal failing input or None, the failure's traceback)."""
    strat = strategy(t)
    deadline = time.monotonic() + seconds
    count, failing = 0, None
    batch = 0
    while time.monotonic() < deadline:

        @settings(max_examples=BATCH, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                  phases=[Phase.generate, Phase.shrink], report_multiple_bugs=False)
        @seed(first_seed + batch)
        @given(strat)
        def body(data: bytes) -> None:
            nonlocal count, failing
            if failing is None and time.monotonic() > deadline:
                return  # time is up: the rest of the batch is skipped, not failed
            count += 1
            try:
                check(t, data)
            except Finding:
                failing = data  # the last failing input hypothesis tries is the shrunk one
                raise

        try:
            body()
        except Exception:
            return count, failing, traceback.format_exc()
        batch += 1
    return count, None, ""


def _atheris_child(name: str, argv: list[str]) -> None:
    """In the subprocess: instrument lockman, then hand the target to libFuzzer (never returns)."""
    import importlib
    import pkgutil

    import atheris

    import lockman

    logging.disable(logging.WARNING)
    with atheris.instrument_imports(include=["lockman"]):
        for mod in pkgutil.walk_packages(lockman.__path__, "lockman."):
            if not mod.name.startswith(("lockman.commands", "lockman.cli", "lockman.__main__")):
                importlib.import_module(mod.name)
    t = TARGETS[name]

    def one(data: bytes) -> None:
        check(t, data)

    atheris.Setup(argv, one)
    atheris.Fuzz()


def fuzz_atheris(t: Target, seconds: float, first_seed: int, out: Path) -> tuple[int, bytes | None, str]:
    """Run one target under atheris in a subprocess; (runs, crashing input or None, its output)."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"lockman-corpus-{t.name}-") as corpus:
        for i, data in enumerate(t.seeds()):
            Path(corpus, f"seed-{i}").write_bytes(data)
        before = set(out.glob(f"{t.name}-crash-*"))
        argv = [sys.argv[0], f"-max_total_time={int(seconds)}", f"-seed={first_seed}", "-rss_limit_mb=2048",
                "-timeout=30", f"-artifact_prefix={out}/{t.name}-", "-print_final_stats=1", corpus]
        code = f"from scripts.fuzz import _atheris_child; _atheris_child({t.name!r}, {argv!r})"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                              timeout=seconds + 600, check=False)
    log = proc.stdout + proc.stderr
    runs = re.findall(r"stat::number_of_executed_units: (\d+)", log) or re.findall(r"#(\d+)\s", log)
    count = int(runs[-1]) if runs else 0
    crashes = sorted(set(out.glob(f"{t.name}-crash-*")) - before)
    if proc.returncode == 0 and not crashes:
        return count, None, ""
    return count, crashes[0].read_bytes() if crashes else None, log[-4000:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="*", help="target names (default: all)")
    parser.add_argument("--seconds", type=float, default=20.0, help="time per target (default 20)")
    parser.add_argument("--seed", type=int, default=None, help="first hypothesis seed (default: random)")
    parser.add_argument("--out", type=Path, default=Path("fuzz-findings"), help="where reproducers go")
    parser.add_argument("--engine", choices=["hypothesis", "atheris"], default="hypothesis",
                        help="hypothesis (default) or atheris (coverage-guided, if installed)")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    args = parser.parse_args()
    if args.list:
        for name, t in TARGETS.items():
            print(f"{name:26} {len(t.seeds()):4} seeds  ({t.kind})")
        return 0
    unknown = [n for n in args.targets if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target {unknown[0]!r}; --list shows them")
    logging.disable(logging.WARNING)  # "ignoring unreadable credentials file", once per example
    first = args.seed if args.seed is not None else random.randrange(2**31)
    print(f"seed {first}; {args.seconds:g} s per target ({args.engine})", flush=True)
    findings = 0
    for name in args.targets or list(TARGETS):
        t = TARGETS[name]
        started = time.monotonic()
        if args.engine == "atheris":
            count, failing, trace = fuzz_atheris(t, args.seconds, first, args.out)
        else:
            count, failing, trace = fuzz(t, args.seconds, first)
        took = time.monotonic() - started
        if failing is None and not trace:
            print(f"{name:26} {count:8} examples {took:6.1f} s  ok", flush=True)
            continue
        findings += 1
        print(f"{name:26} {count:8} examples {took:6.1f} s  FINDING", flush=True)
        if failing is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            path = args.out / f"{name}-{hashlib.sha256(failing).hexdigest()[:12]}.bin"
            path.write_bytes(failing)
            print(f"  reproducer ({len(failing)} bytes, saved to {path}): {failing[:600]!r}")
        print("  " + trace.strip().replace("\n", "\n  ")[-3000:], flush=True)
    print(f"{findings} finding(s)" if findings else "no findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
