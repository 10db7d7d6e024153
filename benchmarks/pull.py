"""Benchmark: `lockman pull --oci-layout` against `skopeo copy`, and `verify --deep` against sha256sum.

Everything runs on this machine and is started here: a docker-registry over TLS (certificate
from a throw-away CA made with trustme), a plain-HTTP one on the same storage for pushing, and
the TCP proxy of ``benchmarks/latency_proxy.py`` adding 20 ms per client-to-server chunk in front
of the TLS one. Images of random (incompressible) layers are pushed:

- ``5x64``: one image of 5 layers of 64 MiB;
- ``multi``: an index of 2 platforms with 3 layers of 32 MiB each;
- ``index2`` / ``index8``: indexes of 2 and 8 platforms, 2 layers of 16 MiB each;
- ``rss``: one layer of 64 MiB, one of 256 MiB (peak RSS must not grow with the size);
- ``1g``: one 1 GiB layer (peak RSS must not grow with it);
- ``--deep-gib 1,2,4``: images of 4, 8, 16 layers of 256 MiB for ``verify --deep``.

Each scenario runs skopeo and lockman alternately, several times, each time into a fresh
layout directory. lockman runs as a user runs it: ``lockman pull --oci-layout DIR`` in the locked
project's directory, with its bytecode compiled (as installed) and its manifest cache on. In the
same round comes the floor: ``curl --parallel --http2`` downloads the same blobs side by side
over one connection, then ``sha256sum`` (and ``openssl dgst``, which uses the CPU's SHA
instructions) hashes the files. The table shows the median wall time, the rate over the image's
bytes, the ratio to skopeo's median (> 1: lockman is faster), the ratio to the floor
(max(curl, sha256sum) of the same round; median and range of the per-round ratios), and the CPU
time (user + system) and peak RSS of the client's process tree (``RUSAGE_CHILDREN`` of a fresh
parent). On a shared machine CPU time is the steadier figure; the registry's CPU is not in it.
``verify --deep --no-cache`` is timed against ``cat blobs/* | sha256sum`` over the same bytes
(the files are in the page cache).
Every layout lockman writes is checked blob by blob. ``uptime`` load is printed with each
scenario: the machine is shared.

    python3 benchmarks/pull.py [--runs 5] [--delay 0.02] [--big-mib 1024] [--big-runs 1] [--baseline DIR]
                               [--only direct,latency,...] [--deep-gib 1,2,4]

``--baseline DIR`` also times the lockman of another checkout (e.g. ``git archive main``
unpacked in DIR), alternating with this tree's, so before/after ratios come from one run.
Needs docker-registry, skopeo and the test extras (trustme).
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trustme

HERE = Path(__file__).resolve().parent
TREE = HERE.parent
sys.path.insert(0, str(TREE))

from benchmarks.resolve import start_proxy  # noqa: E402
from tests.support.registry import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, Registry  # noqa: E402

MiB = 1 << 20

# Runs ARGV, prints {"code", "secs", "cpu", "rss_kib", "err"}: CPU time and peak RSS are the
# child tree's alone.
_WRAP = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
secs = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = ru.ru_utime + ru.ru_stime
err = p.stderr.decode()[-1500:]
print(json.dumps({"code": p.returncode, "secs": secs, "cpu": cpu, "rss_kib": ru.ru_maxrss, "err": err}))
"""


# -- pushing -----------------------------------------------------------------------------------
def push_random_blob(c: httpx.Client, repo: str, size: int, rng: random.Random) -> str:
    """Upload ``size`` random bytes in 8 MiB chunks (never whole in memory); return the digest."""
    h = hashlib.sha256()
    loc = c.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    sent = 0
    while sent < size:
        data = rng.randbytes(min(8 * MiB, size - sent))
        h.update(data)
        r = c.patch(
            loc,
            content=data,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{sent}-{sent + len(data) - 1}",
            },
        )
        assert r.status_code == 202, r.text
        loc, sent = r.headers["location"], sent + len(data)
    digest = "sha256:" + h.hexdigest()
    r = c.put(f"{loc}{'&' if '?' in loc else '?'}digest={digest}")
    assert r.status_code == 201, r.text
    return digest


def push_image(reg: Registry, repo: str, tag: str | None, sizes: list[int], arch: str, seed: int) -> dict:
    """An image of random layers; returns its descriptor (as an index would list it)."""
    rng = random.Random(seed)
    config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers"}}).encode()
    with reg.client() as c:
        layers = [
            {"mediaType": OCI_LAYER, "digest": push_random_blob(c, repo, n, rng), "size": n} for n in sizes
        ]
    cd = reg.push_blob(repo, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": len(config)},
            "layers": layers,
        }
    ).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    reg.push_manifest(repo, tag or digest, manifest, OCI_MANIFEST)
    return {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": len(manifest),
        "platform": {"architecture": arch, "os": "linux"},
    }


ARCHES = ["amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le"]


def push_index(
    reg: Registry, repo: str, tag: str, per_platform: list[int], seed: int, platforms: int = 2
) -> None:
    children = [
        push_image(reg, repo, None, per_platform, a, seed + i) for i, a in enumerate(ARCHES[:platforms])
    ]
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()
    reg.push_manifest(repo, tag, index, OCI_INDEX)


# The floor rows of each pull scenario: the download floor, and two hashes of the same files.
FLOOR_ROWS = ("curl --parallel --http2", "sha256sum", "openssl dgst -sha256")


# -- running -----------------------------------------------------------------------------------
@dataclass
class Sample:
    secs: float
    cpu: float
    rss_kib: int


@dataclass
class Row:
    scenario: str
    client: str
    nbytes: int
    samples: list[Sample] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(s.secs for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    @property
    def rss_mib(self) -> float:
        return max(s.rss_kib for s in self.samples) / 1024


def timed(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Sample:
    p = subprocess.run(
        [sys.executable, "-c", _WRAP, *argv], env=env, capture_output=True, text=True, check=False, cwd=cwd
    )
    res = json.loads(p.stdout)
    if res["code"] != 0:
        raise SystemExit(f"{' '.join(argv[:4])}... failed ({res['code']}): {res['err']}")
    return Sample(res["secs"], res["cpu"], res["rss_kib"])


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def layout_bytes(layout: Path) -> int:
    """Total blob bytes; fails when a blob does not hash to its name (nothing unverified)."""
    total = 0
    for p in (layout / "blobs/sha256").iterdir():
        h = hashlib.sha256()
        with p.open("rb") as f:
            while chunk := f.read(4 * MiB):
                h.update(chunk)
        assert h.hexdigest() == p.name, f"{p}: does not hash to its name"
        total += p.stat().st_size
    return total


@dataclass
class Client:
    label: str
    tree: Path

    def env(self, work: Path, ca: Path) -> dict[str, str]:
        env = dict(
            os.environ,
            PYTHONPATH=str(self.tree),
            SSL_CERT_FILE=str(ca),
            NO_PROXY="127.0.0.1,localhost",
            XDG_CACHE_HOME=str(work / "cache"),
        )
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "lockman", *args]


@contextlib.contextmanager
def environment(root: Path, delay: float) -> Iterator[dict]:
    procs: list[subprocess.Popen] = []
    regs: list[Registry] = []
    try:
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        cert_dir = root / "certs"
        cert_dir.mkdir()
        ca.cert_pem.write_to_path(str(cert_dir / "ca.crt"))
        cert, key = root / "server.crt", root / "server.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        storage = root / "storage"
        plain = Registry(root / "plain", storage=storage, log_level="warn").start()
        regs.append(plain)
        tls = Registry(root / "tls", storage=storage, log_level="warn", tls=(cert, key)).start()
        regs.append(tls)
        proxy_port, proc = start_proxy(tls.port, delay)
        procs.append(proc)
        yield {"plain": plain, "tls": tls, "proxy": f"127.0.0.1:{proxy_port}", "cert_dir": cert_dir}
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        for r in regs:
            r.stop()


def layout_blobs(layout: Path) -> list[str]:
    """The config and layer digests of every image manifest in a layout: what a pull downloads."""
    digests: list[str] = []
    for p in (layout / "blobs/sha256").iterdir():
        if p.stat().st_size > 4 * MiB:
            continue
        try:
            doc = json.loads(p.read_bytes())
        except ValueError:
            continue
        if isinstance(doc, dict) and "layers" in doc:
            for d in [doc["config"], *doc["layers"]]:
                if d["digest"] not in digests:
                    digests.append(d["digest"])
    return digests


def curl_floor_argv(host: str, repo: str, digests: list[str], ca: Path, out: Path) -> list[str]:
    """curl (C, nghttp2) fetching every blob side by side over one HTTP/2 connection, each to a
    file named by its digest: the network and the registry's floor for a pull."""
    argv = ["curl", "--silent", "--show-error", "--fail", "--parallel", "--parallel-max", "64"]
    argv += ["--http2", "--cacert", str(ca), "--noproxy", "*", "--create-dirs"]
    for d in digests:
        argv += ["-o", str(out / d.removeprefix("sha256:")), f"https://{host}/v2/{repo}/blobs/{d}"]
    return argv


def run_scenario(
    title: str,
    ref: str,
    all_platforms: bool,
    nbytes: int,
    runs: int,
    clients: list[Client],
    cert_dir: Path,
    work: Path,
    skopeo: bool,
) -> list[Row]:
    ca = cert_dir / "ca.crt"
    cfg_dir = work / f"cfg-{abs(hash(ref))}"
    cfg_dir.mkdir(exist_ok=True)
    cfg = cfg_dir / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{ref}"\n')
    c0 = clients[0]
    subprocess.run(
        c0.argv("update", "--config", str(cfg)), env=c0.env(work, ca), check=True, capture_output=True
    )
    rows = {c.label: Row(title, c.label, nbytes) for c in clients}
    if skopeo:
        rows["skopeo copy"] = Row(title, "skopeo copy", nbytes)
    for label in FLOOR_ROWS:
        rows[label] = Row(title, label, nbytes)
    out = work / "out"
    host, _, rest = ref.partition("/")
    repo = rest.rpartition(":")[0]
    blobs: list[str] = []
    # Who runs right after whom changes every round: a client timed after another one's large
    # write pays for some of its writeback (seen with the 1 GiB layer), so no order is fixed.
    pullers: list[Client | None] = ([None] if skopeo else []) + list(clients)  # None: skopeo
    for round_no in range(runs):
        k = round_no % len(pullers)
        for c in pullers[k:] + pullers[:k]:
            shutil.rmtree(out, ignore_errors=True)
            if c is None:
                argv = ["skopeo", "--insecure-policy", "copy", "-q", "--src-cert-dir", str(cert_dir)]
                argv += ["--all"] if all_platforms else []
                rows["skopeo copy"].samples.append(
                    timed([*argv, f"docker://{ref}", f"oci:{out}:x"], dict(os.environ))
                )
                continue
            # The command a user types in a locked project: from its directory, cache as configured.
            pull = c.argv("pull", "--oci-layout", str(out))
            rows[c.label].samples.append(timed(pull, c.env(work, ca), cwd=cfg_dir))
            got = layout_bytes(out)
            assert got >= nbytes, f"{c.label}: {got} bytes in the layout, expected at least {nbytes}"
            blobs = blobs or layout_blobs(out)
        # The floor, in the same round: curl downloads, then sha256sum (and openssl) hash the files.
        shutil.rmtree(out, ignore_errors=True)
        rows[FLOOR_ROWS[0]].samples.append(
            timed(curl_floor_argv(host, repo, blobs, ca, out), dict(os.environ))
        )
        sums = timed(["sh", "-c", f"cd {out} && sha256sum * > ../sums"], dict(os.environ))
        rows[FLOOR_ROWS[1]].samples.append(sums)
        for line in (out.parent / "sums").read_text().splitlines():
            digest, name = line.split()
            assert digest == name, f"curl wrote {name}, which hashes to {digest}"
        rows[FLOOR_ROWS[2]].samples.append(
            timed(["sh", "-c", f"cat {out}/* | openssl dgst -sha256"], dict(os.environ))
        )
    shutil.rmtree(out, ignore_errors=True)
    return list(rows.values())


def run_deep(
    title: str, ref: str, nbytes: int, runs: int, clients: list[Client], cert_dir: Path, work: Path
) -> list[Row]:
    """verify --deep --no-cache vs `cat blobs/* | sha256sum` over the same blobs."""
    ca = cert_dir / "ca.crt"
    cfg_dir = work / f"deep-{abs(hash(ref))}"
    cfg_dir.mkdir(exist_ok=True)
    cfg = cfg_dir / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{ref}"\n')
    c0 = clients[0]
    layout = work / "deep-layout"
    subprocess.run(
        c0.argv("update", "--config", str(cfg)), env=c0.env(work, ca), check=True, capture_output=True
    )
    shutil.rmtree(layout, ignore_errors=True)
    subprocess.run(
        c0.argv("pull", "--config", str(cfg), "--oci-layout", str(layout)),
        env=c0.env(work, ca),
        check=True,
        capture_output=True,
    )
    rows = {c.label: Row(title, f"{c.label} verify --deep", nbytes) for c in clients}
    rows["sha256sum"] = Row(title, "sha256sum", nbytes)  # cat blobs/* | sha256sum
    for _ in range(runs):
        shell = f"cat {layout}/blobs/sha256/* | sha256sum"
        rows["sha256sum"].samples.append(timed(["sh", "-c", shell], dict(os.environ)))
        for c in clients:
            deep = c.argv("verify", "--deep", "--no-cache", "--config", str(cfg))
            rows[c.label].samples.append(timed(deep, c.env(work, ca)))
    shutil.rmtree(layout, ignore_errors=True)
    return list(rows.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per client and scenario (median shown)")
    ap.add_argument("--delay", type=float, default=0.02, help="latency proxy delay in seconds")
    ap.add_argument("--big-mib", type=int, default=1024, help="size of the one-layer image (0: skip)")
    ap.add_argument("--baseline", type=Path, help="also time the lockman of this checkout")
    ap.add_argument(
        "--only", help="comma-separated scenarios: direct,latency,multi,index2,index8,rss,deep,big"
    )
    ap.add_argument("--big-runs", type=int, default=1, help="runs of the --big-mib layer (default 1)")
    ap.add_argument("--deep-gib", default="", help="verify --deep of images of these sizes, e.g. 1,2,4")
    args = ap.parse_args()
    deep_gib = [int(g) for g in args.deep_gib.split(",") if g]
    for exe in ("skopeo", "docker-registry"):
        if shutil.which(exe) is None:
            sys.exit(f"benchmarks/pull.py: {exe} is not installed")
    only = set(args.only.split(",")) if args.only else {"direct", "latency", "multi", "index8", "deep", "big"}
    clients = [Client("lockman", TREE)]
    if args.baseline:
        clients.append(Client("lockman (baseline)", args.baseline.resolve()))
    for c in clients:  # bytecode cached, as `pip install` leaves it; a run that compiles pays ~0.14 s CPU
        compileall.compile_dir(c.tree / "lockman", quiet=1)
    root = Path(tempfile.mkdtemp(prefix="lockman-pull-bench-"))
    table: list[tuple[Row, dict[str, Row], str]] = []  # row, the scenario's rows by client, loads
    here = Path.cwd()
    os.chdir(root)  # `python -m lockman` imports from the working directory first: not a checkout
    try:
        with environment(root, args.delay) as env:
            t0 = time.perf_counter()
            plain: Registry = env["plain"]
            push_image(plain, "bench/layers", "5x64", [64 * MiB] * 5, "amd64", 1)
            push_index(plain, "bench/multi", "2x3x32", [32 * MiB] * 3, 10)
            if "index2" in only:
                push_index(plain, "bench/index2", "p", [16 * MiB] * 2, 30, platforms=2)
            if "index8" in only:
                push_index(plain, "bench/index8", "p", [16 * MiB] * 2, 40, platforms=8)
            if "rss" in only:
                push_image(plain, "bench/one", "64", [64 * MiB], "amd64", 50)
                push_image(plain, "bench/one", "256", [256 * MiB], "amd64", 51)
            for gib in deep_gib:  # layers of 256 MiB
                push_image(plain, "bench/deep", f"{gib}g", [256 * MiB] * (4 * gib), "amd64", 60 + gib)
            if args.big_mib and "big" in only:
                push_image(plain, "bench/big", "1g", [args.big_mib * MiB], "amd64", 20)
            print(f"pushed in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            tls, proxy, cert_dir, work = env["tls"].host, env["proxy"], env["cert_dir"], root / "work"
            work.mkdir()
            ms = int(args.delay * 1000)
            scenarios = [
                ("direct", "5x64 MiB, TLS", f"{tls}/bench/layers:5x64", False, 320 * MiB, args.runs),
                (
                    "latency",
                    f"5x64 MiB, TLS + {ms} ms",
                    f"{proxy}/bench/layers:5x64",
                    False,
                    320 * MiB,
                    args.runs,
                ),
                (
                    "multi",
                    "2 platforms x 3x32 MiB, TLS",
                    f"{tls}/bench/multi:2x3x32",
                    True,
                    192 * MiB,
                    args.runs,
                ),
                (
                    "index2",
                    "index: 2 platforms x 2x16 MiB, TLS",
                    f"{tls}/bench/index2:p",
                    True,
                    64 * MiB,
                    args.runs,
                ),
                (
                    "index8",
                    "index: 8 platforms x 2x16 MiB, TLS",
                    f"{tls}/bench/index8:p",
                    True,
                    256 * MiB,
                    args.runs,
                ),
                ("rss", "1 layer of 64 MiB, TLS", f"{tls}/bench/one:64", False, 64 * MiB, args.runs),
                ("rss", "1 layer of 256 MiB, TLS", f"{tls}/bench/one:256", False, 256 * MiB, args.runs),
                (
                    "big",
                    f"1 layer of {args.big_mib} MiB, TLS",
                    f"{tls}/bench/big:1g",
                    False,
                    args.big_mib * MiB,
                    args.big_runs,
                ),
            ]
            for key, title, ref, all_platforms, nbytes, runs in scenarios:
                if key not in only or (key == "big" and not args.big_mib):
                    continue
                before = load()
                rows = run_scenario(title, ref, all_platforms, nbytes, runs, clients, cert_dir, work, True)
                by_client = {r.client: r for r in rows}
                for r in rows:
                    table.append((r, by_client, f"{before} / {load()}"))
                print(f"done: {title}", file=sys.stderr)
            if "deep" in only:
                before = load()
                title = "verify --deep, 5x64 MiB, TLS"
                rows = run_deep(
                    title, f"{tls}/bench/layers:5x64", 320 * MiB, args.runs, clients, cert_dir, work
                )
                by_client = {r.client: r for r in rows}
                for r in rows:
                    table.append((r, by_client, f"{before} / {load()}"))
            for gib in deep_gib:
                before = load()
                title = f"verify --deep, {gib} GiB (256 MiB layers), TLS"
                rows = run_deep(
                    title, f"{tls}/bench/deep:{gib}g", gib << 30, args.runs, clients, cert_dir, work
                )
                by_client = {r.client: r for r in rows}
                for r in rows:
                    table.append((r, by_client, f"{before} / {load()}"))
                print(f"done: {title}", file=sys.stderr)
    finally:
        os.chdir(here)
        shutil.rmtree(root, ignore_errors=True)

    day = time.strftime("%Y-%m-%d")
    print(f"\nmedian of {args.runs} runs ({args.big_runs} for the big layer), {os.cpu_count()} CPUs, {day}")
    print(
        "vs skopeo: skopeo's median time / this row's (> 1: faster). vs floor: this row's time / "
        "max(curl's, sha256sum's) in the same round, median [range] (verify --deep: / sha256sum's)\n"
    )
    print(
        "| scenario | client | time | MiB/s | vs skopeo | vs floor | CPU | peak RSS | load (before/after) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for row, by_client, loads in table:
        sk, sums = by_client.get("skopeo copy"), by_client.get("sha256sum")
        curl = by_client.get(FLOOR_ROWS[0])
        vs_skopeo = f"{sk.median / row.median:.2f}x" if sk else "-"
        vs_floor = "-"
        if curl and sums and row.client not in FLOOR_ROWS:
            # max(download, hash) in each round, then the median of this row's ratio to it
            floors = [max(a.secs, b.secs) for a, b in zip(curl.samples, sums.samples, strict=True)]
            per_run = sorted(s.secs / f for s, f in zip(row.samples, floors, strict=True))
            vs_floor = f"{statistics.median(per_run):.2f}x [{per_run[0]:.2f}-{per_run[-1]:.2f}]"
        elif sums and row.client.endswith("verify --deep"):
            per_run = sorted(s.secs / f.secs for s, f in zip(row.samples, sums.samples, strict=True))
            vs_floor = f"{statistics.median(per_run):.2f}x sha256sum [{per_run[0]:.2f}-{per_run[-1]:.2f}]"
        rate = row.nbytes / MiB / row.median
        print(
            f"| {row.scenario} | {row.client} | {row.median:.2f} s | {rate:.0f} | {vs_skopeo} | {vs_floor} "
            f"| {row.cpu:.2f} s | {row.rss_mib:.0f} MiB | {loads} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
