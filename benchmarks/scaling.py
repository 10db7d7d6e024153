"""Benchmark: how the cost of `resolve` and `update` grows with the number of references.

Same set-up as ``benchmarks/resolve.py`` (docker-registry over TLS behind the 20 ms latency
proxy, images pushed by ``tests/support/bulkpush.py``), plus ``--registries`` more TLS registries
on the same storage, each behind its own proxy. Measured, interleaved, at each size:

- ``lockman resolve -`` of N references on one registry and spread over the other registries,
  against the curl floor of ``resolve.py`` (the ping and N HEADs, multiplexed over HTTP/2);
- ``lockman update`` of an xcargo.toml with N targets (one image each) whose lock is current:
  nothing moved, so the cost is what it takes to see that.

Prints, per size: median wall time, time per reference, requests per reference (access logs),
CPU time, and the ratio to the floor; linear growth shows as a flat time per reference.

    python3 benchmarks/scaling.py [--sizes 250,500,1000,2000] [--update-sizes 75,150,300]
                                  [--registries 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.resolve import (  # noqa: E402
    LOCKMAN_TREE,
    Result,
    environment,
    lockman_env,
    measure,
    run_curl_floor,
    run_lockman,
)

TRIPLES = [
    line.strip()
    for line in (LOCKMAN_TREE / "lockman/model/data/rust-targets.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


def xcargo_with_targets(path: Path, refs: list[str]) -> None:
    """An xcargo.toml with one target per reference (distinct triples)."""
    triples = TRIPLES
    assert len(refs) <= len(triples), f"only {len(triples)} target triples for {len(refs)} images"
    path.write_text(
        "".join(f'[targets."{t}".container]\nimage = "{r}"\n\n' for t, r in zip(triples, refs, strict=False))
    )


def run_update(cfg: Path, env: dict[str, str]) -> dict[str, str]:
    p = subprocess.run(
        [sys.executable, "-m", "lockman", "update", "--config", str(cfg)],
        cwd=LOCKMAN_TREE,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if p.returncode != 0:
        raise RuntimeError(f"lockman update failed ({p.returncode}): {p.stderr.strip()[:500]}")
    return {}


def row(label: str, n: int, res: Result, floor: Result | None, loads: str) -> str:
    per = res.median / n * 1000
    reqs = statistics.median(res.requests) / n
    vs = "-"
    if floor is not None:
        pairs = sorted(a / b for a, b in zip(res.times, floor.times, strict=True))
        vs = f"{res.median / floor.median:.2f}x [{pairs[0]:.2f}-{pairs[-1]:.2f}]"
    return (
        f"| {label} | {n} | {res.median:.2f} s | {per:.2f} ms | {reqs:.3f} | {res.median_cpu:.2f} s "
        f"| {vs} | {loads} |"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="250,500,1000,2000", help="resolve sizes")
    ap.add_argument("--update-sizes", default="75,150,300", help="update sizes (entries)")
    ap.add_argument("--registries", type=int, default=10, help="registries for the spread case")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--delay", type=float, default=0.02)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    usizes = [int(s) for s in args.update_sizes.split(",") if s]
    ns = argparse.Namespace(
        images=max([*sizes, *usizes]), rss_images=0, delay=args.delay, registries=args.registries, keep=False
    )
    lines: list[str] = []
    with environment(ns) as env, tempfile.TemporaryDirectory(prefix="lockman-scaling-") as tmp:
        ca = env["ca"]
        one = f"127.0.0.1:{env['tls_proxy']}"
        many = [f"127.0.0.1:{port}" for _, port in env["many"]]
        count_one = [env["tls"].request_count]
        count_many = [r.request_count for r, _ in env["many"]]
        lenv = lockman_env(ca)
        for n in sizes:
            names = env["names"][:n]
            cases = [("resolve, 1 registry", [f"{one}/{x}" for x in names], count_one)]
            if many:
                spread = [f"{many[i % len(many)]}/{x}" for i, x in enumerate(names)]
                cases.append((f"resolve, {len(many)} registries", spread, count_many))
            for label, refs, counters in cases:
                results: dict[str, Result] = {}
                load0 = os.getloadavg()[0]
                for _ in range(args.runs):
                    got = measure("lockman", lambda refs=refs: run_lockman(refs, lenv), counters, results)
                    assert len(got) == n, f"{len(got)} of {n} resolved"
                    fl = measure("curl", lambda refs=refs: run_curl_floor(refs, ca), counters, results)
                    assert fl == got, "curl and lockman disagree"
                loads = f"{load0:.1f} / {os.getloadavg()[0]:.1f}"
                lines.append(row(f"{label}: lockman", n, results["lockman"], results["curl"], loads))
                lines.append(row(f"{label}: curl floor", n, results["curl"], None, loads))
                print(lines[-2], file=sys.stderr)
        for n in usizes:
            cfg = Path(tmp) / f"u{n}" / "xcargo.toml"
            cfg.parent.mkdir()
            xcargo_with_targets(cfg, [f"{one}/{x}" for x in env["names"][:n]])
            run_update(cfg, lenv)  # writes the lock
            lock = cfg.with_name("xcargo.lock").read_bytes()
            results = {}
            load0 = os.getloadavg()[0]
            for _ in range(args.runs):
                measure("update", lambda cfg=cfg: run_update(cfg, lenv), count_one, results)
            assert cfg.with_name("xcargo.lock").read_bytes() == lock, "nothing moved, yet the lock changed"
            loads = f"{load0:.1f} / {os.getloadavg()[0]:.1f}"
            lines.append(row("update, nothing moved", n, results["update"], None, loads))
            print(lines[-1], file=sys.stderr)
    print(
        f"\nmedian of {args.runs} runs, TLS + {int(args.delay * 1000)} ms, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M')}; vs floor: lockman's time / curl's, median [range of "
        "the per-round ratios]\n"
    )
    print("| case | N | wall | per ref | requests/ref | CPU | vs floor | load (before / after) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
