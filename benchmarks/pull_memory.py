"""Peak memory of `lockman pull` and `verify --deep` on a large layer (a benchmark, not a test).

Starts a real docker-registry on a loopback port, pushes an image with one incompressible layer
(50 MB by default), then runs lockman in a child process that reports its own peak RSS (VmHWM).
Memory should stay flat as the layer grows: compare ``--size-mb 50`` and ``--size-mb 500``.

    python3 benchmarks/pull_memory.py [--size-mb 50]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.registry import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Registry  # noqa: E402


def push_large_image(reg: Registry, repo: str, size: int) -> str:
    """Push a config and one ``size``-byte layer (uploaded in chunks, never whole in memory)."""
    h = hashlib.sha256()
    chunk = 8 << 20
    with reg.client() as c:
        r = c.post(f"/v2/{repo}/blobs/uploads/")
        loc = r.headers["location"]
        sent = 0
        while sent < size:
            data = os.urandom(min(chunk, size - sent))
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
            loc = r.headers["location"]
            sent += len(data)
        layer_digest = "sha256:" + h.hexdigest()
        sep = "&" if "?" in loc else "?"
        r = c.put(f"{loc}{sep}digest={layer_digest}")
        assert r.status_code == 201, r.text
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    config_digest = reg.push_blob(repo, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": size}],
        }
    ).encode()
    return reg.push_manifest(repo, "big", manifest, OCI_MANIFEST)


_CHILD = """
import sys
from lockman.cli import main
try:
    code = main(sys.argv[2:])
finally:
    hwm = next(ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
    open(sys.argv[1], "w").write(hwm.split()[1])
sys.exit(code)
"""


def run_measured(args: list[str], env: dict[str, str], work: Path) -> tuple[int, float, float]:
    """(exit code, peak RSS in MB, seconds) of lockman ARGS in a fresh interpreter.

    The peak is the child's own VmHWM (high-water mark of its address space since exec);
    wait4()'s ru_maxrss would also count the parent's memory at fork time.
    """
    report = work / "hwm"
    start = time.perf_counter()
    code = subprocess.run(
        [sys.executable, "-c", _CHILD, str(report), *args], env=env, stdout=subprocess.DEVNULL, check=False
    ).returncode
    secs = time.perf_counter() - start
    return code, int(report.read_text()) / 1024, secs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=50)
    size = parser.parse_args().size_mb * 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        reg = Registry(work / "registry").start()
        try:
            push_large_image(reg, "bench/big", size)
            cfg = work / "xcargo.toml"
            cfg.write_text(f'[container]\nimage = "{reg.host}/bench/big:big"\n')
            env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(work / "cache"))
            rows = [
                ("update", ["update", "--config", str(cfg)]),
                ("verify (baseline)", ["verify", "--config", str(cfg)]),
                ("pull --oci-layout", ["pull", "--config", str(cfg), "--oci-layout", str(work / "out")]),
                ("pull again (present)", ["pull", "--config", str(cfg), "--oci-layout", str(work / "out")]),
                ("verify --deep", ["verify", "--deep", "--config", str(cfg)]),
            ]
            print(f"layer: {size / 1e6:.0f} MB")
            print(f"{'command':<24} {'exit':>4} {'peak RSS':>10} {'time':>8}")
            for label, args in rows:
                code, rss, secs = run_measured(args, env, work)
                print(f"{label:<24} {code:>4} {rss:>7.1f} MB {secs:>7.2f}s")
        finally:
            reg.stop()


if __name__ == "__main__":
    main()
