"""Benchmark: `lockman resolve -` against `xargs -P8 skopeo inspect --raw --no-tags`.

Everything runs on this machine and is started here: one docker-registry storage served by
three registry processes (plain HTTP; TLS with a test CA; TLS with Docker token auth and a token
server), a TCP proxy that adds 20 ms to every client-to-server chunk in front of the TLS ones,
and N pushed images. Each scenario runs lockman and skopeo on the same references, alternately,
several times; the table shows the median wall time, the requests per reference counted from the
registry's access log (plus the token server's), lockman's speed-up over skopeo, and the CPU time
(user + system) of the client's processes, steadier than wall time on a shared machine. skopeo's
output (the raw manifest) is hashed and must match lockman's digest for every reference.

    python3 benchmarks/resolve.py [--images 200] [--runs 5] [--delay 0.02] [--rss-images 1000]

Needs docker-registry, skopeo and the test extras (trustme). Run from a checkout: lockman is
run as ``python3 -m lockman`` from this tree.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import shutil
import ssl
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

from tests.support.bulkpush import push_images  # noqa: E402
from tests.support.registry import Registry  # noqa: E402
from tests.support.token_server import TokenServer, registry_auth  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# lockman's own Accept header for manifests, so the floor asks for exactly the same thing.
ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        OCI_MANIFEST,
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def start_proxy(target_port: int, delay: float) -> tuple[int, subprocess.Popen]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "latency_proxy.py"),
            "--target",
            f"127.0.0.1:{target_port}",
            "--delay",
            str(delay),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return port, proc


# -- the two clients ------------------------------------------------------------------------------
LOCKMAN_TREE = TREE  # whose lockman is measured (--tree)


def lockman_env(ca: Path | None, *, http2: bool = True) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(LOCKMAN_TREE), NO_PROXY="127.0.0.1,localhost")
    # As installed: bytecode cached, not every module compiled again on every run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if ca:
        env["SSL_CERT_FILE"] = str(ca)
    env["LOCKMAN_HTTP2"] = "1" if http2 else "0"
    return env


def run_lockman(refs: list[str], env: dict[str, str]) -> dict[str, str]:
    p = subprocess.run(
        [sys.executable, "-m", "lockman", "resolve", "-"],
        cwd=LOCKMAN_TREE,  # `python -m` imports from the working directory first
        input="\n".join(refs) + "\n",
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if p.returncode != 0:
        raise RuntimeError(f"lockman failed ({p.returncode}): {p.stderr.strip()[:500]}")
    digests = {}
    for line in p.stdout.splitlines():
        ref, _, digest = line.partition("@")
        digests[ref] = digest
    return digests


def run_curl_floor(refs: list[str], ca: Path, http2: bool = True) -> dict[str, str]:
    """The floor: curl (C, nghttp2) sends the ``GET /v2/`` ping and one ``HEAD`` per reference,
    with lockman's Accept header, all at once from one process (``--parallel``; over HTTP/2 they
    are multiplexed on one connection, as lockman's are). Returns each reference's digest from
    ``Docker-Content-Digest``, checked against lockman's like skopeo's."""
    hosts = list(dict.fromkeys(r.split("/", 1)[0] for r in refs))
    # Per-transfer options are reset by `next`, so each of the two sets (the GET ping, the HEADs)
    # carries them; --parallel is global.
    per_set = [
        "http2" if http2 else "http1.1",
        f'cacert = "{ca}"',
        'noproxy = "*"',
        f'header = "Accept: {ACCEPT}"',
        'write-out = "%{http_code} %{url} %header{docker-content-digest}\\n"',
    ]
    lines = list(per_set)
    for host in hosts:
        lines += [f'url = "https://{host}/v2/"', 'output = "/dev/null"']
    lines += ["next", *per_set, "head"]
    for r in refs:
        host, _, name = r.partition("/")
        repo, _, tag = name.rpartition(":")
        lines += [f'url = "https://{host}/v2/{repo}/manifests/{tag}"', 'output = "/dev/null"']
    p = subprocess.run(
        ["curl", "--silent", "--show-error", "--parallel", "--parallel-max", "64", "--config", "-"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if p.returncode != 0:
        raise RuntimeError(f"curl failed ({p.returncode}): {p.stderr.strip()[:500]}")
    digests = {}
    for line in p.stdout.splitlines():
        code, url, *digest = line.split()
        if code != "200":
            raise RuntimeError(f"curl: {url} answered {code}")
        if "/manifests/" in url:
            host, _, path = url.removeprefix("https://").partition("/v2/")
            repo, _, tag = path.partition("/manifests/")
            digests[f"{host}/{repo}:{tag}"] = digest[0]
    return digests


def run_skopeo(refs: list[str], cert_dir: Path | None) -> dict[str, str]:
    tls = ["--cert-dir", str(cert_dir)] if cert_dir else ["--tls-verify=false"]
    p = subprocess.run(
        ["xargs", "-P8", "-n1", "skopeo", "inspect", *tls, "--raw", "--no-tags"],
        input="".join(f"docker://{r}\n" for r in refs).encode(),
        capture_output=True,
        check=False,
    )
    if p.returncode != 0:
        raise RuntimeError(f"skopeo failed ({p.returncode}): {p.stderr.decode()[:500]}")
    # --raw prints each manifest as the registry sent it; slice the concatenation byte-exactly.
    out, digests, decoder, pos = p.stdout.decode(), {}, json.JSONDecoder(), 0
    host = refs[0].split("/", 1)[0]
    while True:
        while pos < len(out) and out[pos].isspace():
            pos += 1
        if pos >= len(out):
            break
        obj, end = decoder.raw_decode(out, pos)
        digests[f"{host}/{obj['annotations']['bench.ref']}"] = sha256(out[pos:end].encode())
        pos = end
    return digests


# -- measuring -------------------------------------------------------------------------------------
@dataclass
class Result:
    label: str
    times: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user + system seconds of the client's processes

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def measure(label: str, fn, counters, results: dict[str, Result]) -> dict[str, str]:
    before = sum(c() for c in counters)
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    digests = fn()
    elapsed = time.perf_counter() - t0
    res = results.setdefault(label, Result(label))
    res.times.append(elapsed)
    res.cpu.append(_children_cpu() - cpu0)
    res.requests.append(sum(c() for c in counters) - before)
    return digests


def startup_times(runs: int) -> list[tuple[str, float, float]]:
    """(label, median wall time, median CPU time) per command; CPU time (user + system of the
    child) moves less than wall time when other work shares the machine."""
    env = lockman_env(None)
    cases = [
        ("python3 -c pass", [sys.executable, "-c", "pass"]),
        ("lockman --version", [sys.executable, "-m", "lockman", "--version"]),
        ("lockman --help", [sys.executable, "-m", "lockman", "--help"]),
    ]
    rows = []
    for label, argv in cases:
        times, cpu = [], []
        for _ in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(argv, env=env, capture_output=True, check=True, cwd=LOCKMAN_TREE)
            times.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        rows.append((label, statistics.median(times), statistics.median(cpu)))
    return rows


def peak_rss_kib(refs: list[str], env: dict[str, str]) -> int:
    """Peak RSS of one `lockman resolve -` run, measured by a fresh parent's RUSAGE_CHILDREN."""
    code = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], stdin=sys.stdin, stdout=subprocess.DEVNULL)\n"
        "assert p.returncode == 0\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, sys.executable, "-m", "lockman", "resolve", "-"],
        input="\n".join(refs) + "\n",
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=LOCKMAN_TREE,
    )
    return int(p.stdout.strip())


@contextlib.contextmanager
def environment(args: argparse.Namespace) -> Iterator[dict]:
    root = Path(tempfile.mkdtemp(prefix="lockman-bench-"))
    procs: list[subprocess.Popen] = []
    registries: list[Registry] = []
    token: TokenServer | None = None
    try:
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        cert_dir = root / "certs"
        cert_dir.mkdir()
        ca_path = cert_dir / "ca.crt"
        ca.cert_pem.write_to_path(str(ca_path))
        cert, key = root / "server.crt", root / "server.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        storage = root / "storage"

        def reg(name: str, **kw) -> Registry:
            r = Registry(root / name, storage=storage, log_level="warn", **kw).start()
            registries.append(r)
            return r

        plain = reg("plain")
        t0 = time.perf_counter()
        names = push_images(f"http://127.0.0.1:{plain.port}", args.images)
        rss_names = names + push_images(
            f"http://127.0.0.1:{plain.port}",
            max(0, args.rss_images - args.images),
            start=args.images,
            tags_per_repo=1,
        )
        print(f"pushed {len(rss_names)} images in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        tls = reg("tls", tls=(str(cert), str(key)))
        token_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_cert(token_ctx)
        token = TokenServer(anonymous_pull=True, ssl_context=token_ctx).start()
        token_proxy, p = start_proxy(token.port, args.delay)
        procs.append(p)
        tok = reg(
            "token",
            tls=(str(cert), str(key)),
            auth=registry_auth(token, root, f"https://127.0.0.1:{token_proxy}/token"),
        )
        tls_proxy, p = start_proxy(tls.port, args.delay)
        procs.append(p)
        tok_proxy, p = start_proxy(tok.port, args.delay)
        procs.append(p)
        many: list[tuple[Registry, int]] = []  # --registries N: N TLS registries, each behind a proxy
        for i in range(args.registries if args.registries > 1 else 0):
            r = reg(f"tls{i}", tls=(str(cert), str(key)))
            port, p = start_proxy(r.port, args.delay)
            procs.append(p)
            many.append((r, port))
        yield {
            "many": many,
            "root": root,
            "ca": ca_path,
            "cert_dir": cert_dir,
            "names": names,
            "rss_names": rss_names,
            "plain": plain,
            "tls": tls,
            "token_registry": tok,
            "token": token,
            "tls_proxy": tls_proxy,
            "tok_proxy": tok_proxy,
        }
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        for r in registries:
            r.stop()
        if token:
            token.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def check_http2(port: int, ca: Path) -> str:
    with httpx.Client(http2=True, verify=str(ca)) as c:
        return c.get(f"https://127.0.0.1:{port}/v2/").http_version


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200, help="references per run (default 200)")
    ap.add_argument("--runs", type=int, default=5, help="runs per client and scenario (median shown)")
    ap.add_argument("--delay", type=float, default=0.02, help="latency proxy delay in seconds")
    ap.add_argument("--rss-images", type=int, default=1000, help="references for the peak-RSS run")
    ap.add_argument("--no-skopeo", action="store_true", help="no skopeo runs (lockman and the curl floor)")
    ap.add_argument(
        "--registries",
        type=int,
        default=1,
        help="also resolve the references spread over this many registries",
    )
    ap.add_argument("--no-loopback", action="store_true", help="skip the plain-HTTP and token scenarios")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--tree", type=Path, help="measure the lockman of this checkout (default: this one)")
    ap.add_argument(
        "--startup-only", action="store_true", help="only the start-up times (no registry, no skopeo)"
    )
    args = ap.parse_args()
    global LOCKMAN_TREE
    LOCKMAN_TREE = args.tree.resolve() if args.tree else TREE
    if args.startup_only:
        for label, t, c in startup_times(max(args.runs * 2, 10)):
            print(f"start-up: {label:<18} {t * 1000:6.0f} ms wall, {c * 1000:6.0f} ms CPU")
        return 0
    if not args.no_skopeo and shutil.which("skopeo") is None:
        sys.exit("benchmarks/resolve.py: skopeo is not installed (or pass --no-skopeo)")
    if shutil.which("docker-registry") is None and shutil.which("registry") is None:
        sys.exit("benchmarks/resolve.py: docker-registry is not installed (apt-get install docker-registry)")

    load_before = os.getloadavg()[0]
    with environment(args) as env:
        ms = int(args.delay * 1000)
        print(f"registry over TLS speaks {check_http2(env['tls'].port, env['ca'])}", file=sys.stderr)
        tok_counters = [env["token_registry"].request_count, lambda: env["token"].requests]
        scenarios = [
            (f"TLS + {ms} ms", f"127.0.0.1:{env['tls_proxy']}", env["ca"], [env["tls"].request_count], True),
        ]
        if env["many"]:
            k = len(env["many"])
            scenarios.append(
                (
                    f"TLS + {ms} ms, {k} registries",
                    [f"127.0.0.1:{port}" for _, port in env["many"]],
                    env["ca"],
                    [r.request_count for r, _ in env["many"]],
                    False,
                )
            )
        scenarios += [
            (f"TLS + {ms} ms, token auth", f"127.0.0.1:{env['tok_proxy']}", env["ca"], tok_counters, False),
            ("HTTP loopback", f"127.0.0.1:{env['plain'].port}", None, [env["plain"].request_count], False),
        ]
        if args.no_loopback:
            scenarios = [s for s in scenarios if s[2] is not None and "token" not in s[0]]
        table: list[tuple[str, Result, Result | None, Result | None, str]] = []
        for title, host, ca, counters, both_http in scenarios:
            hosts = host if isinstance(host, list) else [host]
            refs = [f"{hosts[i % len(hosts)]}/{n}" for i, n in enumerate(env["names"])]
            skopeo = not args.no_skopeo and len(hosts) == 1
            floor = ca is not None and "token" not in title  # curl does no token dance
            load0 = os.getloadavg()[0]
            results: dict[str, Result] = {}
            clients = [("lockman (HTTP/2)" if ca else "lockman", lockman_env(ca, http2=True))]
            if both_http:
                clients.append(("lockman (HTTP/1.1)", lockman_env(ca, http2=False)))
            for _ in range(args.runs):
                for label, lenv in clients:
                    got = measure(
                        label, lambda lenv=lenv, refs=refs: run_lockman(refs, lenv), counters, results
                    )
                    assert len(got) == len(refs), f"{label}: {len(got)} of {len(refs)} resolved"
                if floor:
                    fl = measure(
                        "curl floor (HTTP/2)",
                        lambda ca=ca, refs=refs: run_curl_floor(refs, ca),
                        counters,
                        results,
                    )
                    if fl != got:
                        bad = [r for r in refs if fl.get(r) != got.get(r)]
                        raise SystemExit(f"{title}: curl and lockman disagree on {len(bad)} refs: {bad[:3]}")
                if skopeo:
                    cert_dir = env["cert_dir"] if ca else None
                    sk = measure(
                        "skopeo", lambda cd=cert_dir, refs=refs: run_skopeo(refs, cd), counters, results
                    )
                    if sk != got:
                        bad = [r for r in refs if sk.get(r) != got.get(r)]
                        raise SystemExit(
                            f"{title}: skopeo and lockman disagree on {len(bad)} refs: {bad[:3]}"
                        )
            sk_res = results.pop("skopeo", None)
            fl_res = results.pop("curl floor (HTTP/2)", None)
            loads = f"{load0:.1f} / {os.getloadavg()[0]:.1f}"
            for res in results.values():
                table.append((title, res, sk_res, fl_res, loads))
            for extra in (fl_res, sk_res):
                if extra:
                    table.append((title, extra, None, None, loads))
            print(f"done: {title}", file=sys.stderr)

        rss = peak_rss_kib(
            [f"127.0.0.1:{env['tls_proxy']}/{n}" for n in env["rss_names"]], lockman_env(env["ca"])
        )
        rss_small = peak_rss_kib(
            [f"127.0.0.1:{env['tls_proxy']}/{n}" for n in env["names"][:10]], lockman_env(env["ca"])
        )
    startup = startup_times(max(args.runs * 2, 10))

    n = args.images
    print(
        f"\n{n} references, median of {args.runs} runs, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, "
        f"load {load_before:.1f} before / {os.getloadavg()[0]:.1f} after (1-minute average)\n"
    )
    print(
        "vs skopeo: skopeo's median time / this row's (> 1: faster); vs floor: this row's median "
        "time / curl's (< 1.1 is the aim); per-run ratios in the same interleaved round in brackets\n"
    )
    print(
        f"| {'scenario':<24} | {'client':<19} | {'wall time':>9} | {'requests/ref':>12} | {'vs skopeo':>9} "
        f"| {'vs floor':>8} | {'CPU time':>8} | load (before / after) |"
    )
    print(f"|{'-' * 26}|{'-' * 21}|{'-' * 11}|{'-' * 14}|{'-' * 11}|{'-' * 10}|{'-' * 10}|---|")
    for title, res, sk, fl, loads in table:
        ratio = f"{sk.median / res.median:.1f}x" if sk else "-"
        if res.label == "skopeo":
            ratio = "1.0x"
        vs_floor = "-"
        if fl:
            pairs = sorted(a / b for a, b in zip(res.times, fl.times, strict=True))
            vs_floor = f"{res.median / fl.median:.2f}x [{pairs[0]:.2f}-{pairs[-1]:.2f}]"
        elif res.label.startswith("curl"):
            vs_floor = "1.00x"
        per_ref = statistics.median(res.requests) / n
        print(
            f"| {title:<24} | {res.label:<19} | {res.median:>7.2f} s | {per_ref:>12.3f} | {ratio:>9} "
            f"| {vs_floor:>8} | {res.median_cpu:>6.2f} s | {loads} |"
        )
    print()
    for label, t, c in startup:
        print(f"start-up: {label:<18} {t * 1000:6.0f} ms wall, {c * 1000:6.0f} ms CPU")
    print(
        f"peak RSS: lockman resolve of {len(env['rss_names'])} references: {rss / 1024:.1f} MiB "
        f"(10 references: {rss_small / 1024:.1f} MiB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
